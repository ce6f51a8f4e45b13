from datetime import datetime, timedelta

from odoo.tests import tagged

from .insight_common import InsightCommon

HOUR = 3600
DAY = 86400


@tagged("post_install", "-at_install")
class TestDora(InsightCommon):
    """Production in January 2026 (31 days) on shop, after a change rolled back on
    30 December:

    * 1 Jan 06:00 done, login task (created 1 Jan 00:00): lead 6 h; rework (after
      December's failure);
    * 4 Jan 00:00 done, checkout task (created 3 Jan 00:00): lead 1 day;
    * 10 Jan 12:00 rolled back, login task, restored at 12:05: 300 s to restore;
    * 11 Jan 00:00 done, checkout task: lead 8 days; rework (after the 10th).

    Not counted: a production deployment that failed before changing the app, a
    staging deployment, and one in February.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        make, shop = cls.make, cls.shop
        december = datetime(2025, 12, 30)
        make(shop, "rolled_back", december, 500, task=cls.login_task,
             rollback_ended=december + timedelta(minutes=5))
        make(shop, "done", datetime(2026, 1, 1, 6), 400, task=cls.login_task)
        make(shop, "done", datetime(2026, 1, 4), 400, task=cls.checkout_task)
        failed = datetime(2026, 1, 10, 12)
        make(shop, "rolled_back", failed, 400, task=cls.login_task,
             rollback_ended=failed + timedelta(minutes=5))
        make(shop, "done", datetime(2026, 1, 11), 400, task=cls.checkout_task)
        make(shop, "failed", datetime(2026, 1, 12), 60, task=cls.checkout_task)
        make(cls.shop_staging, "done", datetime(2026, 1, 13), 300, task=cls.login_task)
        make(shop, "done", datetime(2026, 2, 2), 300, task=cls.login_task)

    def report(self):
        return self.january_report("do.dora.report")

    def test_production(self):
        report = self.report()
        self.assertLine(
            report.total_line_ids, deployments=3, per_week=21 / 31, lead_times=3,
            lead_time_median=float(DAY), lead_time_p95=float(8 * DAY), changes=4,
            change_failures=1, change_failure_rate=25.0, restores=1,
            time_to_restore_median=300.0, rework=2, rework_rate=50.0,
            lead_time_display="1 d 0 h (p95 8 d 0 h)", time_to_restore_display="5 min 0 s")

    def test_per_project_app_and_customer(self):
        report = self.report()
        relaunch = dict(deployments=1, lead_time_median=float(6 * HOUR), changes=2,
                        change_failures=1, change_failure_rate=50.0, restores=1,
                        time_to_restore_median=300.0, rework=1, rework_rate=50.0)
        # The 11 January change of the checkout task follows the app's failed change of
        # the 10th, made for the login task: rework is the app's, whatever the project.
        payments = dict(deployments=2, lead_time_median=float(DAY),
                        lead_time_p95=float(8 * DAY), changes=2, change_failures=0,
                        change_failure_rate=0.0, rework=1, rework_rate=50.0,
                        time_to_restore_display="n/a")
        self.assertLine(self.line(report, "project", "Relaunch"), **relaunch)
        self.assertLine(self.line(report, "project", "Payments"), **payments)
        self.assertLine(self.line(report, "customer", "Acme"), **relaunch)
        self.assertLine(self.line(report, "customer", "Globex"), **payments)
        self.assertLine(self.line(report, "app", "shop"), deployments=3, changes=4,
                        rework=2)
        self.assertEqual(report.app_line_ids.mapped("name"), ["shop"],
                         "staging is no production")

    def test_empty_period(self):
        report = self.env["do.dora.report"].with_user(self.user).create({
            "date_from": datetime(2025, 6, 1).date(), "date_to": datetime(2025, 6, 30).date()})
        self.assertLine(report.total_line_ids, deployments=0, changes=0, per_week=0.0,
                        lead_time_display="n/a", time_to_restore_display="n/a")
        self.assertFalse(report.project_line_ids)
