from odoo import api, fields, models


class DoKpiStageBenchmarkLine(models.TransientModel):  # pylint: disable=no-wizard-in-models
    """One step of the stage benchmark report, for all apps or one app."""

    _name = "do.kpi.stage.benchmark.line"
    _description = "Stage Benchmark Line"
    _order = "benchmark_id, app_id nulls first, sequence, id"

    benchmark_id = fields.Many2one("do.kpi.stage.benchmark", required=True, ondelete="cascade")
    app_id = fields.Many2one("do.app", help="Empty: every app.")
    sequence = fields.Integer()
    step = fields.Char(
        "Step code", required=True, help="The step's code; 'total' for the whole deployment.")
    name = fields.Char("Step", required=True)
    budget = fields.Float("Budget (s)")
    count = fields.Integer("Runs")
    p50 = fields.Float("p50 (s)")
    p95 = fields.Float("p95 (s)")
    within_budget = fields.Integer("Runs within budget")
    within_budget_share = fields.Float("Within budget (%)")
    p50_over_budget = fields.Boolean()
    p95_over_budget = fields.Boolean()

    @api.model
    def _values_from_benchmark(self, benchmark, app_id, sequence, name):
        """The values of a line from the engine's :class:`StageBenchmark`."""
        share = benchmark.within_budget_share
        return {
            "app_id": app_id, "sequence": sequence, "step": benchmark.step, "name": name,
            "budget": benchmark.budget, "count": benchmark.count,
            "p50": benchmark.p50 or 0.0, "p95": benchmark.p95 or 0.0,
            "within_budget": benchmark.within_budget,
            "within_budget_share": 100.0 * share if share is not None else 0.0,
            "p50_over_budget": (benchmark.p50 or 0) > benchmark.budget,
            "p95_over_budget": (benchmark.p95 or 0) > benchmark.budget,
        }
