from functools import partial

from odoo import api, models

from ..engine import metrics


class ReportStageBenchmark(models.AbstractModel):
    """The printable stage benchmark report: the lines of the chosen reports, with
    durations written as the engine writes them ("8 min 12 s")."""

    _name = "report.do_deploy.report_stage_benchmark"
    _description = "Stage Benchmark Report (PDF)"

    @api.model
    def _get_report_values(self, docids, data=None):
        return {
            "doc_ids": docids, "doc_model": "do.kpi.stage.benchmark",
            "docs": self.env["do.kpi.stage.benchmark"].browse(docids),
            "format_seconds": partial(metrics.format_value, "seconds"),
            "format_ratio": partial(metrics.format_value, "ratio"),
        }
