from datetime import datetime, timedelta

from odoo.tests import Form, HttpCase, tagged

from odoo.addons.do_deploy.engine import metrics

from .insight_common import JANUARY, InsightCommon

FAILED_TWICE = {"checks": [{"ok": False}, {"ok": False}], "consecutive_failures": 2}
FAILED_ONCE = {"checks": [{"ok": False}, {"ok": True}], "consecutive_failures": 0}


@tagged("post_install", "-at_install")
class TestKpiDashboard(InsightCommon):
    """The dashboard and the KPI analysis read the SOP's metrics of a crafted January.

    shop (production): 300, 500 and 700 s done, one failed, one rolled back after two
    failed health checks in a row (restored 120 s after it ended: 520 s of downtime).
    shop-staging: 200 s done after one failed health check (30 s of downtime), 400 s
    done. Outside the figures: a canceled, a running and a February deployment, and
    the rollback run itself.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        day = datetime(2026, 1, 10)
        make, shop, staging = cls.make, cls.shop, cls.shop_staging
        make(shop, "done", day, 300, task=cls.login_task)
        make(shop, "done", day + timedelta(hours=1), 500, task=cls.login_task)
        make(shop, "done", day + timedelta(hours=2), 700, task=cls.checkout_task)
        make(shop, "failed", day + timedelta(hours=3), 100, task=cls.checkout_task)
        ended = day + timedelta(hours=4)
        make(shop, "rolled_back", ended, 400, task=cls.login_task,
             steps={"health_check": (60, "failed", FAILED_TWICE)},
             rollback_ended=ended + timedelta(seconds=120))
        make(staging, "done", day + timedelta(hours=5), 200, task=cls.login_task,
             steps={"health_check": (30, "warning", FAILED_ONCE)})
        make(staging, "done", day + timedelta(hours=6), 400)
        make(shop, "canceled", day + timedelta(hours=7), 50, task=cls.login_task)
        make(staging, "done", datetime(2026, 2, 2), 900, task=cls.login_task)
        running = make(staging, "running", day + timedelta(hours=8), 10)
        running.sudo().end_date = False

    def dashboard(self):
        return self.january_report("do.kpi.dashboard")

    def test_per_app(self):
        dashboard = self.dashboard()
        self.assertLine(
            self.line(dashboard, "app", "shop"), deployments=5, success_rate=60.0,
            failure_rate=40.0, failure_level="critical", rollback_rate=20.0,
            rollback_level="critical", mean_seconds=500.0, time_level="ok", p95_seconds=700.0,
            p95_level="warning", health_check_failures=2, max_consecutive_health_failures=2,
            health_level="critical", zero_downtime_rate=80.0, zero_downtime_met=False,
            downtime_seconds=520.0, success_display="60.0 %", mean_display="8 min 20 s",
            p95_display="11 min 40 s", health_display="2 failed, 2 in a row")
        self.assertLine(
            self.line(dashboard, "app", "shop-staging"), deployments=2, success_rate=100.0,
            failure_level="ok", rollback_rate=0.0, rollback_level="ok", mean_seconds=300.0,
            p95_seconds=400.0, p95_level="ok", health_check_failures=1,
            max_consecutive_health_failures=1, health_level="warning",
            zero_downtime_rate=50.0, downtime_seconds=30.0)
        self.assertEqual(dashboard.app_line_ids.mapped("name"), ["shop", "shop-staging"],
                         "the apps' kanban, busiest first")

    def test_whole_period_environment_project_customer(self):
        dashboard = self.dashboard()
        self.assertLine(
            dashboard.total_line_ids, deployments=7, success_rate=500 / 7,
            failure_level="critical", rollback_rate=100 / 7, mean_seconds=420.0,
            time_level="ok", p95_seconds=700.0, p95_level="warning", health_check_failures=3,
            max_consecutive_health_failures=2, zero_downtime_rate=500 / 7)
        self.assertLine(self.line(dashboard, "environment", "Production"), deployments=5,
                        success_rate=60.0)
        self.assertLine(self.line(dashboard, "environment", "Staging"), deployments=2,
                        success_rate=100.0)
        relaunch = dict(deployments=4, success_rate=75.0, rollback_rate=25.0,
                        mean_seconds=1000 / 3, p95_seconds=500.0, health_check_failures=3,
                        max_consecutive_health_failures=2, zero_downtime_rate=50.0)
        payments = dict(deployments=2, success_rate=50.0, rollback_rate=0.0,
                        mean_seconds=700.0, time_level="warning", p95_seconds=700.0)
        self.assertLine(self.line(dashboard, "project", "Relaunch"), **relaunch)
        self.assertLine(self.line(dashboard, "project", "Payments"), **payments)
        self.assertLine(self.line(dashboard, "project", "No project"), deployments=1,
                        mean_seconds=400.0)
        self.assertLine(self.line(dashboard, "customer", "Acme"), **relaunch)
        self.assertLine(self.line(dashboard, "customer", "Globex"), **payments)

    def test_empty_period(self):
        dashboard = self.env["do.kpi.dashboard"].with_user(self.user).create({
            "date_from": datetime(2025, 6, 1).date(), "date_to": datetime(2025, 6, 30).date()})
        self.assertLine(dashboard.total_line_ids, deployments=0, failure_level=False,
                        success_display="n/a", mean_display="n/a")
        self.assertFalse(dashboard.app_line_ids)

    def test_the_form_computes_while_the_period_changes(self):
        with Form(self.env["do.kpi.dashboard"].with_user(self.user)) as form:
            form.date_from, form.date_to = JANUARY
            self.assertEqual(len(form.app_line_ids), 2)
            form.date_from = datetime(2026, 2, 1).date()
            form.date_to = datetime(2026, 2, 28).date()
            self.assertEqual(len(form.app_line_ids), 1)
        self.assertEqual(form.record.total_line_ids.deployments, 1)

    def test_pivot_reads_the_same_figures(self):
        """The KPI analysis pivot's own call, with the p95 as percentile_disc."""
        dashboard = self.dashboard()
        groups = self.env["do.kpi.report"].with_user(self.user).formatted_read_group(
            dashboard._report_domain(), ["app_id"],
            ["__count", "success_rate:avg", "duration:avg", "duration_p95:max",
             "rollback_rate:avg", "health_check_consecutive:max", "zero_downtime_rate:avg"])
        by_app = {group["app_id"][1]: group for group in groups}
        shop = by_app["shop"]
        self.assertEqual(shop["__count"], 5)
        self.assertAlmostEqual(shop["success_rate:avg"], 60.0)
        self.assertAlmostEqual(shop["duration:avg"], 500.0)
        self.assertEqual(shop["duration_p95:max"], 700.0)
        self.assertAlmostEqual(shop["rollback_rate:avg"], 20.0)
        self.assertEqual(shop["health_check_consecutive:max"], 2)
        self.assertAlmostEqual(shop["zero_downtime_rate:avg"], 80.0)
        self.assertEqual(by_app["shop-staging"]["duration_p95:max"], 400.0)

    def test_engine_agrees(self):
        """The SQL aggregates give the engine's own Kpis of the same records."""
        dashboard = self.dashboard()
        start, end = dashboard._period_bounds()
        deployments = self.env["do.deployment"].search([("app_id", "=", self.shop.id)])
        records = [metrics.Deployment(
            id=d.id, kind=d.kind, state=d.state, started=d.start_date, ended=d.end_date,
            duration=d.duration, rolled_back=bool(d.rollback_id)) for d in deployments]
        expected = metrics.kpis(r for r in records if r.at and start <= r.at < end)
        line = self.line(dashboard, "app", "shop")
        self.assertEqual(line.deployments, expected.deployments)
        self.assertAlmostEqual(line.success_rate, 100 * expected.success_rate)
        self.assertAlmostEqual(line.mean_seconds, expected.mean_seconds)
        self.assertEqual(line.p95_seconds, expected.p95_seconds)

    def test_graph_and_pivot_open_on_the_period(self):
        dashboard = self.dashboard()
        action = dashboard.action_open_pivot()
        self.assertEqual(action["res_model"], "do.kpi.report")
        self.assertEqual(action["views"], [(False, "pivot")])
        self.assertEqual(self.env["do.kpi.report"].search_count(action["domain"]), 7)
        self.assertEqual(dashboard.action_open_graph()["views"], [(False, "graph")])


@tagged("post_install", "-at_install")
class TestKpiDashboardTour(InsightCommon, HttpCase):
    """The dashboard in the browser, as a Deployment User: no save affordance, a new
    period applies at once, and looking at it writes nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        day = datetime(2026, 1, 10)
        cls.make(cls.shop, "done", day, 300)
        cls.make(cls.shop, "failed", day + timedelta(hours=1), 100)
        cls.make(cls.shop_staging, "done", day + timedelta(hours=2), 200)

    def test_dashboard_has_nothing_to_save(self):
        self.start_tour("/odoo/action-do_deploy.do_kpi_dashboard_action",
                        "do_deploy_kpi_dashboard", login=self.user.login)
        self.assertFalse(self.env["do.kpi.dashboard"].search([("create_uid", "=", self.user.id)]),
                         "leaving the dashboard saved its period")


@tagged("post_install", "-at_install")
class TestKpiDashboardPhone(InsightCommon, HttpCase):
    """The dashboard's cards on a phone (390 px wide)."""

    browser_size = "390x844"
    touch_enabled = True

    def test_a_period_without_deployments_colours_nothing(self):
        self.start_tour("/odoo/action-do_deploy.do_kpi_dashboard_action",
                        "do_deploy_kpi_dashboard_phone", login=self.user.login)
