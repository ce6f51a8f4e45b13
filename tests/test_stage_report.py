from datetime import datetime, timedelta

from odoo.tests import HttpCase, tagged

from odoo.addons.do_deploy.engine import metrics
from odoo.addons.do_deploy.models.do_deployment_step import DEPLOY_STEPS

from .insight_common import JANUARY, InsightCommon


def steps(update_spec, monitor):
    return {"update_spec": (update_spec, "done", None), "monitor": (monitor, "done", None)}


class StageHistory(InsightCommon):
    """shop (its own update-spec budget: 5 s): update spec 2, 4, 6 and 8 s, monitor
    100, 200, 300 and 500 s, ending done (400 s), done (500 s), failed (100 s) and
    done (700 s). shop-staging: update spec 3 and 12 s, monitor 600 s once, ending done
    (300 s) and rolled back (800 s). A February deployment is outside the period."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shop.budget_step1 = 5
        day = datetime(2026, 1, 20)
        for hour, (update, monitor, state, seconds) in enumerate((
                (2, 100, "done", 400), (4, 200, "done", 500), (6, 300, "failed", 100),
                (8, 500, "done", 700))):
            cls.make(cls.shop, state, day + timedelta(hours=hour), seconds,
                     steps=steps(update, monitor))
        cls.make(cls.shop_staging, "done", day, 300, steps=steps(3, None))
        cls.make(cls.shop_staging, "rolled_back", day + timedelta(hours=1), 800,
                 steps=steps(12, 600))
        cls.make(cls.shop, "done", datetime(2026, 2, 3), 50, steps=steps(1, 1))

    def report(self, **values):
        return self.january_report("do.kpi.stage.benchmark", **values)

    @staticmethod
    def row(lines, step, app=None):
        return lines.filtered(lambda line: line.step == step and line.app_id == (
            app or line.app_id.browse()))


@tagged("post_install", "-at_install")
class TestStageReport(StageHistory):
    def assertRow(self, line, expected, share):
        """``expected``: (budget, runs, p50, p95, runs within budget)."""
        self.assertEqual((line.budget, line.count, line.p50, line.p95, line.within_budget),
                         expected, line.name)
        self.assertAlmostEqual(line.within_budget_share, share, places=6)

    def test_all_apps_against_the_sop(self):
        report = self.report()
        overall = report.overall_line_ids
        self.assertEqual(overall.mapped("step"),
                         [code for code, _name, _number in DEPLOY_STEPS] + ["total"])
        # update spec: 2 3 4 6 8 12 -> p50 rank 3, p95 rank 6; 5 of 6 within the SOP's 10 s
        self.assertRow(self.row(overall, "update_spec"), (10, 6, 4.0, 12.0, 5), 500 / 6)
        # monitor: 100 200 300 500 600 -> p50 rank 3, p95 rank 5; 3 of 5 within 480 s
        self.assertRow(self.row(overall, "monitor"), (480, 5, 300.0, 600.0, 3), 60.0)
        self.assertTrue(self.row(overall, "monitor").p95_over_budget)
        self.assertRow(self.row(overall, "apply_spec"), (30, 0, 0.0, 0.0, 0), 0.0)
        # whole deployment, done ones only: 300 400 500 700 against 600 s
        self.assertRow(self.row(overall, "total"), (600, 4, 400.0, 700.0, 3), 75.0)

    def test_each_app_against_its_own_budgets(self):
        report = self.report()
        per_app = report.app_line_ids
        shop, staging = self.shop, self.shop_staging
        self.assertRow(self.row(per_app, "update_spec", shop), (5, 4, 4.0, 8.0, 2), 50.0)
        self.assertRow(self.row(per_app, "update_spec", staging), (10, 2, 3.0, 12.0, 1), 50.0)
        self.assertRow(self.row(per_app, "monitor", staging), (480, 1, 600.0, 600.0, 0), 0.0)
        self.assertRow(self.row(per_app, "total", shop), (600, 3, 500.0, 700.0, 2), 200 / 3)

    def test_one_app_only(self):
        report = self.report(app_ids=[(6, 0, self.shop_staging.ids)])
        self.assertEqual(report.app_line_ids.app_id, self.shop_staging)
        self.assertRow(self.row(report.overall_line_ids, "update_spec"), (10, 2, 3.0, 12.0, 1),
                       50.0)

    def test_changing_the_apps_recomputes_the_lines(self):
        report = self.report(app_ids=[(6, 0, self.shop_staging.ids)])
        self.assertEqual(report.app_line_ids.app_id, self.shop_staging)
        report.app_ids = False
        self.assertEqual(report.app_line_ids.app_id, self.shop | self.shop_staging)
        self.assertRow(self.row(report.overall_line_ids, "update_spec"), (10, 6, 4.0, 12.0, 5),
                       500 / 6)

    def test_engine_agrees(self):
        """The SQL figures are the engine's stage_benchmarks of the same records."""
        start, end = self.report()._period_bounds()
        records = []
        for deployment in self.env["do.deployment"].search([("kind", "=", "deploy")]):
            record = metrics.Deployment(
                kind=deployment.kind, state=deployment.state, started=deployment.start_date,
                ended=deployment.end_date, duration=deployment.duration,
                steps={code: deployment[f"duration_{code}"]
                       for code, _name, _number in DEPLOY_STEPS
                       if deployment[f"duration_{code}"]})
            if start <= record.at < end:
                records.append(record)
        budgets = {code: metrics.SOP_STEP_BUDGETS[number] for code, _n, number in DEPLOY_STEPS}
        expected = metrics.stage_benchmarks(records, budgets,
                                            total_budget=metrics.SOP_TOTAL_BUDGET)
        for benchmark in expected:
            line = self.row(self.report().overall_line_ids, benchmark.step)
            self.assertEqual((line.count, line.p50 or None, line.p95 or None,
                              line.within_budget),
                             (benchmark.count, benchmark.p50, benchmark.p95,
                              benchmark.within_budget), benchmark.step)

    def test_printed_report_html(self):
        report = self.report()
        html, _type = self.env["ir.actions.report"].with_user(self.user)._render_qweb_html(
            "do_deploy.action_report_stage_benchmark", report.ids)
        html = html.decode()
        for text in ("Stage Benchmarks", "All apps", "shop-staging", "Whole deployment",
                     "83.3 %", "10 min 0 s", "11 min 40 s"):
            self.assertIn(text, html)


@tagged("post_install", "-at_install")
class TestStageReportPdf(HttpCase, StageHistory):
    """The PDF itself, through wkhtmltopdf, with a live server for its assets."""

    def test_pdf(self):
        Report = self.env["ir.actions.report"]
        if Report.get_wkhtmltopdf_state() != "ok":
            self.skipTest("wkhtmltopdf is not installed (tools/setup.sh installs it)")
        report = self.env["do.kpi.stage.benchmark"].create(
            {"date_from": JANUARY[0], "date_to": JANUARY[1]})
        pdf, kind = Report.with_context(force_report_rendering=True)._render_qweb_pdf(
            "do_deploy.action_report_stage_benchmark", report.ids)
        self.assertEqual(kind, "pdf")
        self.assertTrue(pdf.startswith(b"%PDF"))
        self.assertGreater(len(pdf), 5000)
