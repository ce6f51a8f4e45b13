from odoo import fields, models
from odoo.tools import SQL

from ..engine import metrics

# The report's groupings: (line dimension, engine dimension, line field), the whole first.
DORA_GROUPINGS = (
    ("all", None, None), ("project", "project", "project_id"), ("app", "app", "app_id"),
    ("customer", "customer", "partner_id"),
)


class DoDoraReport(models.TransientModel):  # pylint: disable=no-wizard-in-models
    """DORA's four keys and rework rate of production for a chosen period, overall and
    per project, app and customer (the task's partner), computed by the engine
    (:func:`metrics.dora`) from the production deployments that changed what an app
    serves (done, or rolled back) and each app's last change before the period (a
    change right after a failed one is rework), every grouping in one pass
    (:func:`metrics.dora_grouped`).

    Lead time runs from the task's creation to the deployment's end: deployments
    record no commit time yet, which the engine would prefer when known.
    """

    _name = "do.dora.report"
    _description = "DORA Metrics"
    _inherit = ["do.kpi.period"]
    _line_dimensions = tuple(dimension for dimension, _key, _field in DORA_GROUPINGS)

    line_ids = fields.One2many(
        "do.dora.report.line", "report_id", compute="_compute_line_ids", store=True)
    total_line_ids = fields.One2many(
        "do.dora.report.line", compute="_compute_dimension_lines", string="Production")
    project_line_ids = fields.One2many(
        "do.dora.report.line", compute="_compute_dimension_lines", string="Projects")
    app_line_ids = fields.One2many(
        "do.dora.report.line", compute="_compute_dimension_lines", string="Apps")
    customer_line_ids = fields.One2many(
        "do.dora.report.line", compute="_compute_dimension_lines", string="Customers")

    def _changes(self, start, end):
        """The production changes counted in [start, end) and each app's last change
        before ``start``, as engine Deployments."""
        Deployment = self.env["do.deployment"]
        domain = [("kind", "=", metrics.DEPLOY), ("environment", "=", metrics.PRODUCTION),
                  ("start_date", "!=", False),
                  "|", ("state", "in", (metrics.SUCCEEDED_STATE, metrics.ROLLED_BACK_STATE)),
                  ("rollback_id", "!=", False)]
        records = []
        for period in ("in", "before"):
            query = Deployment._search(domain)
            table = query.table
            at = SQL("COALESCE(%s, %s)", SQL.identifier(table, "end_date"),
                     SQL.identifier(table, "start_date"))
            query.add_join("LEFT JOIN", "dora_task", "project_task",
                           SQL("dora_task.id = %s", SQL.identifier(table, "task_id")))
            query.add_join("LEFT JOIN", "dora_restore", "do_deployment", SQL(
                "dora_restore.id = %s AND dora_restore.state = %s",
                SQL.identifier(table, "rollback_id"), metrics.SUCCEEDED_STATE))
            columns = [SQL.identifier(table, name) for name in (
                "id", "app_id", "project_id", "state", "start_date", "end_date", "duration")]
            columns += [SQL("dora_task.partner_id"), SQL("dora_task.create_date"),
                        SQL("%s IS NOT NULL", SQL.identifier(table, "rollback_id")),
                        SQL("dora_restore.end_date AS restored_at"), SQL("%s AS at", at)]
            if period == "in":
                query.add_where(SQL("%s >= %s AND %s < %s", at, start, at, end))
                sql = query.select(*columns)
            else:  # each app's last change before the period, one index probe per app
                query.add_where(SQL("%s < %s AND %s = dora_app.id", at, start,
                                    SQL.identifier(table, "app_id")))
                query.order = SQL("%s DESC, %s DESC", at, SQL.identifier(table, "id"))
                query.limit = 1
                sql = SQL("SELECT last.* FROM do_app dora_app CROSS JOIN LATERAL (%s) last "
                          "WHERE dora_app.environment = %s",
                          query.select(*columns), metrics.PRODUCTION)
            self.env.cr.execute(sql)
            records += [metrics.Deployment(
                id=row[0], app=row[1], project=row[2], state=row[3], started=row[4],
                ended=row[5], duration=row[6], customer=row[7], task_created=row[8],
                rolled_back=row[9], restored_at=row[10], environment=metrics.PRODUCTION,
            ) for row in self.env.cr.fetchall()]
        return records

    def _line_values(self):
        self.ensure_one()
        start, end = self._period_bounds()
        changes = _with_rework(self._changes(start, end))
        Line = self.env["do.dora.report.line"]
        dimensions = [key for _dimension, key, _field in DORA_GROUPINGS[1:]]
        total, by_dimension = metrics.dora_grouped(changes, dimensions, start=start, end=end)
        values = [Line._values_from_dora("all", None, None, total, 0)]
        models_of = {"project_id": "project.project", "app_id": "do.app",
                     "partner_id": "res.partner"}
        for dimension, key, field in DORA_GROUPINGS[1:]:
            groups = [(group, figures) for group, figures in by_dimension[key].items()
                      if figures.changes]
            groups.sort(key=lambda item: -item[1].changes)
            for sequence, (group, figures) in enumerate(groups):
                record = self.env[models_of[field]].browse(group) if group else None
                values.append(Line._values_from_dora(dimension, field, record, figures,
                                                     sequence))
        return values


def _with_rework(changes):
    """Flag each change made right after its app's previous change failed, before the
    changes are grouped: a fix is rework whatever project or customer it is for
    (grouped first, the engine would only see the previous change of the group)."""
    failed_last = {}
    for change in sorted(changes, key=lambda change: (change.at, change.id)):
        change.rework = failed_last.get(change.app, False)
        failed_last[change.app] = change.was_rolled_back
    return changes
