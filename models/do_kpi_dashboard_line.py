from odoo import api, fields, models

from ..engine import metrics

LEVEL_SELECTION = [(metrics.OK, "OK"), (metrics.WARNING, "Warning"),
                   (metrics.CRITICAL, "Critical")]
DIMENSION_SELECTION = [("all", "Whole period"), ("app", "App"), ("environment", "Environment"),
                       ("project", "Project"), ("customer", "Customer")]


class DoKpiDashboardLine(models.TransientModel):  # pylint: disable=no-wizard-in-models
    """One group of the KPI dashboard (an app, an environment, a project, a customer,
    or the whole period) with the SOP's metrics and their levels."""

    _name = "do.kpi.dashboard.line"
    _description = "Deployment KPI Dashboard Line"
    _inherit = ["do.kpi.group.line"]
    _order = "dashboard_id, dimension, sequence, id"

    dashboard_id = fields.Many2one("do.kpi.dashboard", required=True, ondelete="cascade")
    dimension = fields.Selection(DIMENSION_SELECTION, required=True)
    environment = fields.Selection([("staging", "Staging"), ("production", "Production")])
    deployments = fields.Integer(help="Finished deployments: done, failed or rolled back.")
    success_rate = fields.Float("Success rate (%)")
    failure_rate = fields.Float("Failure rate (%)")
    rollback_rate = fields.Float("Rollback rate (%)")
    mean_seconds = fields.Float("Mean time (s)")
    p95_seconds = fields.Float("p95 time (s)")
    health_check_failures = fields.Integer("Failed health checks")
    max_consecutive_health_failures = fields.Integer("Most consecutive health check failures")
    zero_downtime_rate = fields.Float("Zero downtime (%)")
    downtime_seconds = fields.Float("Downtime (s)")
    failure_level = fields.Selection(LEVEL_SELECTION, help="Failure rate against the SOP.")
    time_level = fields.Selection(LEVEL_SELECTION, help="Mean deployment time against the SOP.")
    p95_level = fields.Selection(LEVEL_SELECTION, help="p95 deployment time against the SOP.")
    rollback_level = fields.Selection(LEVEL_SELECTION, help="Rollback rate against the SOP.")
    health_level = fields.Selection(
        LEVEL_SELECTION, help="Consecutive health check failures against the SOP.")
    zero_downtime_met = fields.Boolean(help="The SOP's zero-downtime target is met.")
    success_display = fields.Char("Success", compute="_compute_displays")
    mean_display = fields.Char("Mean time", compute="_compute_displays")
    p95_display = fields.Char("p95 time", compute="_compute_displays")
    rollback_display = fields.Char("Rollbacks", compute="_compute_displays")
    health_display = fields.Char("Health checks", compute="_compute_displays")
    zero_downtime_display = fields.Char("Zero downtime", compute="_compute_displays")

    @api.depends("deployments", "success_rate", "mean_seconds", "p95_seconds", "rollback_rate",
                 "time_level",
                 "health_check_failures", "max_consecutive_health_failures",
                 "zero_downtime_rate")
    def _compute_displays(self):
        for line in self:
            has = bool(line.deployments)
            timed = bool(line.time_level)  # none when no deployment of the group succeeded

            def show(unit, value, shown=True):
                return metrics.format_value(unit, value if shown else None)

            line.success_display = show("ratio", line.success_rate / 100, has)
            line.mean_display = show("seconds", line.mean_seconds, timed)
            line.p95_display = show("seconds", line.p95_seconds, timed)
            line.rollback_display = show("ratio", line.rollback_rate / 100, has)
            line.health_display = (self.env._(
                "%(failed)s failed, %(run)s in a row", failed=line.health_check_failures,
                run=line.max_consecutive_health_failures) if has else show("count", None))
            line.zero_downtime_display = show("ratio", line.zero_downtime_rate / 100, has)

    @api.model
    def _values_from_kpis(self, dimension, field, key, kpis, sequence):
        """The values of a line from the engine's :class:`Kpis` of its group."""
        levels = kpis.levels()

        def percent(ratio):
            return 100.0 * ratio if ratio is not None else 0.0

        return {
            **self._group_values(dimension, field, key, sequence),
            "deployments": kpis.deployments,
            "success_rate": percent(kpis.success_rate),
            "failure_rate": percent(kpis.failure_rate),
            "rollback_rate": percent(kpis.rollback_rate),
            "mean_seconds": kpis.mean_seconds or 0.0,
            "p95_seconds": kpis.p95_seconds or 0.0,
            "health_check_failures": kpis.health_check_failures,
            "max_consecutive_health_failures": kpis.max_consecutive_health_failures or 0,
            "zero_downtime_rate": percent(kpis.zero_downtime_share),
            "downtime_seconds": kpis.downtime_seconds,
            "failure_level": levels["failure_rate"] or False,
            "time_level": levels["deployment_time"] or False,
            "p95_level": metrics.classify("deployment_time", kpis.p95_seconds) or False,
            "rollback_level": levels["rollback_rate"] or False,
            "health_level": levels["health_check_failures"] or False,
            "zero_downtime_met": bool(kpis.targets()["zero_downtime_share"]),
        }

    @api.model
    def _group_name(self, dimension, field, key):
        if dimension == "all":
            return self.env._("All deployments")
        if key and field == "environment":
            return dict(self.env["do.app"]._fields["environment"]._description_selection(
                self.env))[key]
        return super()._group_name(dimension, field, key)
