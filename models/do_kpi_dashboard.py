from odoo import fields, models

from ..engine import metrics

# The dashboard's groupings: (line dimension, do.kpi.report field), the whole period first.
DASHBOARD_GROUPINGS = (
    ("all", None), ("app", "app_id"), ("environment", "environment"),
    ("project", "project_id"), ("customer", "partner_id"),
)


class DoKpiDashboard(models.TransientModel):  # pylint: disable=no-wizard-in-models
    """The SOP's success metrics for a chosen period: overall and per app,
    environment, project and customer, each judged against the SOP's warning and
    critical thresholds (engine/metrics.py). One query over ``do.kpi.report``."""

    _name = "do.kpi.dashboard"
    _description = "Deployment KPIs"
    _inherit = ["do.kpi.period"]
    _line_dimensions = tuple(dimension for dimension, _field in DASHBOARD_GROUPINGS)

    line_ids = fields.One2many(
        "do.kpi.dashboard.line", "dashboard_id", compute="_compute_line_ids", store=True)
    total_line_ids = fields.One2many(
        "do.kpi.dashboard.line", compute="_compute_dimension_lines", string="Whole period")
    app_line_ids = fields.One2many(
        "do.kpi.dashboard.line", compute="_compute_dimension_lines", string="Apps")
    environment_line_ids = fields.One2many(
        "do.kpi.dashboard.line", compute="_compute_dimension_lines", string="Environments")
    project_line_ids = fields.One2many(
        "do.kpi.dashboard.line", compute="_compute_dimension_lines", string="Projects")
    customer_line_ids = fields.One2many(
        "do.kpi.dashboard.line", compute="_compute_dimension_lines", string="Customers")

    def _report_domain(self):
        start, end = self._period_bounds()
        return [("date", ">=", start), ("date", "<", end)]

    def _line_values(self):
        """The values of every line: the whole period, then each grouping's groups
        busiest first."""
        self.ensure_one()
        groupings = [[field] if field else [] for _dimension, field in DASHBOARD_GROUPINGS]
        figures = self.env["do.kpi.report"]._kpis_by(self._report_domain(), groupings)
        values = []
        for (dimension, field), grouping in zip(DASHBOARD_GROUPINGS, groupings, strict=True):
            groups = figures[tuple(grouping)]
            if not field:
                groups = groups or {(): metrics.Kpis()}
            ordered = sorted(groups.items(), key=lambda item: -item[1].deployments)
            for sequence, (key, kpis) in enumerate(ordered):
                values.append(self.env["do.kpi.dashboard.line"]._values_from_kpis(
                    dimension, field, key[0] if key else None, kpis, sequence))
        return values

    def _open_report(self, view_type):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("do_deploy.do_kpi_report_action")
        # The period is the domain, so not the action's default date filter as well.
        action.update(domain=self._report_domain(), context={}, view_mode=view_type,
                      views=[(False, view_type)],
                      name=self.env._("Deployment KPIs %(start)s - %(end)s",
                                      start=self.date_from, end=self.date_to))
        return action

    def action_open_graph(self):
        return self._open_report("graph")

    def action_open_pivot(self):
        return self._open_report("pivot")
