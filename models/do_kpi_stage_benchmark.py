from odoo import api, fields, models
from odoo.tools import SQL

from ..engine import metrics
from .do_deployment_step import DEPLOY_STEPS


class DoKpiStageBenchmark(models.TransientModel):  # pylint: disable=no-wizard-in-models
    """SOP-DEPLOY-001's "Performance Benchmarks" table filled from history: per step,
    the budget against the actual p50 and p95 and the share of runs within budget,
    for all apps (against the SOP's budgets) and per app (against the app's own),
    plus the whole deployment against the SOP's "Total <10min".

    Read from the step durations the pipeline copies onto each deployment
    (``duration_<step>``), so the report reads one row per deployment, not eight
    step rows; the figures are the engine's (:func:`metrics.stage_benchmarks`):
    every deployment of kind deploy counted in the period, any outcome, and
    nearest-rank percentiles (``percentile_disc``).
    """

    _name = "do.kpi.stage.benchmark"
    _description = "Stage Benchmarks"
    _inherit = ["do.kpi.period"]

    app_ids = fields.Many2many(
        "do.app", string="Apps", help="Report these apps only; empty: every app.")
    line_ids = fields.One2many(
        "do.kpi.stage.benchmark.line", "benchmark_id", compute="_compute_line_ids",
        store=True)
    overall_line_ids = fields.One2many(
        "do.kpi.stage.benchmark.line", compute="_compute_split_lines", string="All apps")
    app_line_ids = fields.One2many(
        "do.kpi.stage.benchmark.line", compute="_compute_split_lines", string="Per app")

    @api.depends("app_ids")
    def _compute_line_ids(self):
        return super()._compute_line_ids()

    @api.depends("line_ids")
    def _compute_split_lines(self):
        for report in self:
            report.overall_line_ids = report.line_ids.filtered(lambda line: not line.app_id)
            report.app_line_ids = report.line_ids.filtered("app_id")

    def _line_values(self):
        self.ensure_one()
        start, end = self._period_bounds()
        domain = [("kind", "=", metrics.DEPLOY), ("start_date", "!=", False)]
        if self.app_ids:
            domain.append(("app_id", "in", self.app_ids.ids))
        query = self.env["do.deployment"]._search(domain)
        table = query.table
        at = SQL("COALESCE(%s, %s)", SQL.identifier(table, "end_date"),
                 SQL.identifier(table, "start_date"))
        query.add_where(SQL("%s >= %s AND %s < %s", at, start, at, end))
        query.add_join("JOIN", "bench_app", "do_app",
                       SQL("bench_app.id = %s", SQL.identifier(table, "app_id")))
        columns = [SQL.identifier(table, "app_id"), SQL("GROUPING(%s)", SQL.identifier(
            table, "app_id"))]
        measured = [(code, SQL.identifier(table, f"duration_{code}"),
                     SQL("COALESCE(NULLIF(bench_app.%s, 0), %s)",
                         SQL.identifier(f"budget_step{number}"),
                         metrics.SOP_STEP_BUDGETS[number]),
                     metrics.SOP_STEP_BUDGETS[number])
                    for code, _name, number in DEPLOY_STEPS]
        done_duration = SQL("CASE WHEN %s = %s THEN %s END",
                            SQL.identifier(table, "state"), metrics.SUCCEEDED_STATE,
                            SQL.identifier(table, "duration"))
        measured.append((metrics.TOTAL_STEP, done_duration, SQL("%s", metrics.SOP_TOTAL_BUDGET),
                         metrics.SOP_TOTAL_BUDGET))
        for _code, value, app_budget, sop_budget in measured:
            columns += [
                SQL("count(%s)", value),
                SQL("percentile_disc(0.5) WITHIN GROUP (ORDER BY %s)", value),
                SQL("percentile_disc(0.95) WITHIN GROUP (ORDER BY %s)", value),
                SQL("count(*) FILTER (WHERE %s <= %s)", value, app_budget),
                SQL("count(*) FILTER (WHERE %s <= %s)", value, sop_budget),
            ]
        query.groupby = SQL("GROUPING SETS ((%s), ())", SQL.identifier(table, "app_id"))
        self.env.cr.execute(query.select(*columns))
        rows = self.env.cr.fetchall()
        budgets_of = {}
        apps = self.env["do.app"].browse(row[0] for row in rows if row[0])
        for app in apps:
            budgets_of[app.id] = {code: app._get_step_budget(number)
                                  for code, _name, number in DEPLOY_STEPS}
        if not any(row[1] for row in rows):  # no deployment: the SOP's table, empty
            rows.append((None, 1, *[0, None, None, 0, 0] * len(measured)))
        names = {code: name for code, name, _number in DEPLOY_STEPS}
        names[metrics.TOTAL_STEP] = self.env._("Whole deployment")
        values = []
        for row in sorted(rows, key=lambda row: (not row[1], apps.browse(row[0]).name or "")):
            app_id, overall = row[0], row[1]
            for index, (code, _value, _app_budget, sop_budget) in enumerate(measured):
                count, p50, p95, within_app, within_sop = row[2 + 5 * index:7 + 5 * index]
                budget = (sop_budget if overall or code == metrics.TOTAL_STEP
                          else budgets_of[app_id][code])
                within = within_sop if overall else within_app
                benchmark = metrics.StageBenchmark(code, budget, count, p50, p95, within)
                values.append(self.env["do.kpi.stage.benchmark.line"]._values_from_benchmark(
                    benchmark, False if overall else app_id, index, names[code]))
        return values

    def action_print(self):
        return self.env.ref("do_deploy.action_report_stage_benchmark").report_action(self)
