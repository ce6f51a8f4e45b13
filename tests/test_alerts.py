from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .test_notifications import NotificationCommon


@tagged("post_install", "-at_install")
class TestAlerts(NotificationCommon):
    """The SOP's alert thresholds over a rolling window: notify once on crossing, once
    on escalation, once on clearing, never while the metric stays crossed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Crafted histories announce their deployments on no Slack channel of their own.
        cls.deployments_channel.active = False
        cls.pager_channel.active = False
        cls.alert_cron = cls.env.ref("do_deploy.ir_cron_alert_evaluate")
        cls.Alert = cls.env["do.alert"]

    def history(self, *states, app=None, minutes_ago=60, duration=300.0):
        """Finished deployments of ``app`` (staging), ended ``minutes_ago``."""
        end = fields.Datetime.now() - timedelta(minutes=minutes_ago)
        return self.env["do.deployment"].sudo().create([{
            "app_id": (app or self.staging).id, "image_tag": "v1.1.0", "state": state,
            "start_date": end - timedelta(seconds=duration), "end_date": end,
            "duration": duration} for state in states])

    def evaluate(self):
        with self.enter_registry_test_mode():
            self.alert_cron.method_direct_trigger()
        self.env.invalidate_all()

    def alert_notifications(self):
        return self.env["do.notification"].search([("alert_id", "!=", False)], order="id")

    def test_crossing_escalation_and_clearing_each_notify_once(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "do_deploy.alert_window_deployments", "20")
        self.history(*["done"] * 19)
        self.evaluate()
        self.assertFalse(self.Alert.search([]))
        # 1 failure in the last 20: 5 % > 2 %: a warning, for the app and for all apps.
        self.history("failed", minutes_ago=50)
        self.evaluate()
        alerts = self.Alert.search([("metric", "=", "failure_rate")])
        self.assertEqual(len(alerts), 2)
        self.assertEqual(set(alerts.mapped("level")), {"warning"})
        self.assertEqual(set(alerts.mapped("value_display")), {"5.0 %"})
        self.assertEqual(set(alerts.mapped("window")), {"last 20 deployments"})
        self.assertEqual(alerts.app_id, self.staging)
        notified = self.alert_notifications()
        # SOP: #incidents, once per alert; a warning is no critical e-mail.
        self.assertEqual(notified.channel_id, self.incidents_channel)
        self.assertEqual(len(notified), 2)
        # Still 5 %: nothing new.
        self.evaluate()
        self.evaluate()
        self.assertEqual(self.alert_notifications(), notified)
        self.assertEqual(self.Alert.search_count([]), 2)
        # 2 failures in the last 20: 10 % > 5 %: critical, notified once more, by e-mail too.
        self.history("failed", minutes_ago=40)
        self.evaluate()
        self.evaluate()
        escalated = self.alert_notifications() - notified
        self.assertEqual(sorted(n.channel_id.name for n in escalated),
                         ["DevOps e-mail", "DevOps e-mail", "Slack #incidents",
                          "Slack #incidents"])
        self.assertEqual(set(alerts.mapped("level")), {"critical"})
        self.assertEqual(self.Alert.search_count([]), 2)
        # 20 successes push the failures out of the window: cleared, notified once.
        self.history(*["done"] * 20, minutes_ago=30)
        self.evaluate()
        self.evaluate()
        cleared = self.alert_notifications() - notified - escalated
        self.assertEqual(len(cleared), 4)  # #incidents and e-mail: it was critical
        self.assertEqual(set(alerts.mapped("state")), {"cleared"})
        self.assertTrue(all(alerts.mapped("cleared_at")))
        # Every alert message was accepted as Block Kit.
        self.deliver()
        self.assertEqual(self.slack.errors, [])
        texts = [r["json"]["text"] for r in self.slack.received
                 if "Deployment failure rate" in r["json"]["text"]]
        self.assertEqual(len(texts), 6)
        self.assertIn("Warning: Deployment failure rate 5.0 % for app odoo-staging", texts)
        self.assertIn("Now critical: Deployment failure rate 10.0 % for app odoo-staging",
                      texts)
        self.assertIn("Back to normal: Deployment failure rate 0.0 % for app odoo-staging",
                      texts)
        self.assertEqual(set((notified | escalated | cleared).mapped("state")), {"sent"})

    def test_window_of_days(self):
        self.env["ir.config_parameter"].sudo().set_param("do_deploy.alert_window_days", "7")
        # Slow deployments (16 min > 15 min: critical), but 8 days ago: outside the window.
        self.history("done", "done", minutes_ago=8 * 24 * 60, duration=960.0)
        self.history("done", duration=300.0)
        self.evaluate()
        self.assertFalse(self.Alert.search([]))
        self.history("done", "done", "done", duration=960.0)
        self.evaluate()
        alert = self.Alert.search([("metric", "=", "deployment_time"), ("app_id", "!=", False)])
        # Mean of (300 + 3 x 960) / 4 = 795 s: over 10 min, a warning.
        self.assertEqual((alert.level, alert.value_display, alert.window, alert.deployment_count),
                         ("warning", "13 min 15 s", "last 7 days", 4))
        self.assertEqual(alert.threshold_display, "warning > 10 min 0 s, critical > 15 min 0 s")
