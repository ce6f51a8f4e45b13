from odoo import api, fields, models

from ..engine import metrics

DIMENSION_SELECTION = [("all", "Production"), ("project", "Project"), ("app", "App"),
                       ("customer", "Customer")]


class DoDoraReportLine(models.TransientModel):  # pylint: disable=no-wizard-in-models
    """DORA metrics of one group (a project, an app, a customer, or all production)."""

    _name = "do.dora.report.line"
    _description = "DORA Metrics Line"
    _inherit = ["do.kpi.group.line"]
    _order = "report_id, dimension, sequence, id"

    report_id = fields.Many2one("do.dora.report", required=True, ondelete="cascade")
    dimension = fields.Selection(DIMENSION_SELECTION, required=True)
    deployments = fields.Integer(help="Successful production deployments in the period.")
    per_week = fields.Float("Deployments a week")
    lead_times = fields.Integer(help="Deployments with a known lead time.")
    lead_time_median = fields.Float("Lead time, median (s)")
    lead_time_p95 = fields.Float("Lead time, p95 (s)")
    changes = fields.Integer(help="Production deployments that changed what the app serves.")
    change_failures = fields.Integer(help="Changes that had to be rolled back.")
    change_failure_rate = fields.Float("Change failure rate (%)")
    restores = fields.Integer(help="Change failures whose rollback restored service.")
    time_to_restore_median = fields.Float("Time to restore, median (s)")
    rework = fields.Integer(help="Changes made to fix a failed change.")
    rework_rate = fields.Float("Rework rate (%)")
    lead_time_display = fields.Char("Lead time", compute="_compute_displays")
    time_to_restore_display = fields.Char("Time to restore", compute="_compute_displays")

    @api.depends("lead_times", "lead_time_median", "lead_time_p95", "restores",
                 "time_to_restore_median")
    def _compute_displays(self):
        for line in self:
            line.lead_time_display = (self.env._(
                "%(median)s (p95 %(p95)s)",
                median=_duration(line.lead_time_median), p95=_duration(line.lead_time_p95))
                if line.lead_times else "n/a")
            line.time_to_restore_display = (
                metrics.format_value("seconds", line.time_to_restore_median)
                if line.restores else "n/a")

    @api.model
    def _values_from_dora(self, dimension, field, record, figures, sequence):
        """The values of a line from the engine's :class:`Dora` of its group."""
        return {
            **self._group_values(dimension, field, record, sequence),
            "deployments": figures.deployments, "per_week": figures.per_week or 0.0,
            "lead_times": figures.lead_times,
            "lead_time_median": figures.lead_time_median or 0.0,
            "lead_time_p95": figures.lead_time_p95 or 0.0,
            "changes": figures.changes, "change_failures": figures.change_failures,
            "change_failure_rate": 100.0 * (figures.change_failure_rate or 0.0),
            "restores": figures.restores,
            "time_to_restore_median": figures.time_to_restore_median or 0.0,
            "rework": figures.rework, "rework_rate": 100.0 * (figures.rework_rate or 0.0),
        }

    @api.model
    def _group_name(self, dimension, field, key):
        if dimension == "all":
            return self.env._("All production")
        return super()._group_name(dimension, field, key)


def _duration(seconds):
    """Lead times run to days: "2 d 3 h", "5 h 20 min", else the engine's format."""
    if seconds >= 86400:
        days, rest = divmod(round(seconds), 86400)
        return f"{days} d {rest // 3600} h"
    if seconds >= 3600:
        hours, rest = divmod(round(seconds), 3600)
        return f"{hours} h {rest // 60} min"
    return metrics.format_value("seconds", seconds)
