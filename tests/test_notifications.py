import logging
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from odoo.addons.do_deploy.engine.error_catalogue import ERROR_CODES
from odoo.addons.do_deploy.engine.notify import pagerduty
from odoo.addons.do_deploy.engine.tests.receivers import (
    HangingReceiver,
    PagerDutyReceiver,
    SlackReceiver,
)

from .common import DeployCommon

DELIVERY_LOGGER = "odoo.addons.do_deploy.engine.notify.delivery"
ROUTING_KEY = "R0123456789abcdefABCDEF012345678"


class NotificationCommon(DeployCommon):
    """The SOP's channels against local receivers that check the documented formats."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.slack = SlackReceiver().start()
        cls.addClassCleanup(cls.slack.stop)
        cls.pager = PagerDutyReceiver().start()
        cls.addClassCleanup(cls.pager.stop)
        Channel = cls.env["do.notification.channel"]
        cls.deployments_channel = Channel.create({
            "name": "Slack #deployments", "channel_type": "slack",
            "sop_role": "slack_deployments", "webhook_url": cls.slack.webhook_url()})
        cls.incidents_channel = Channel.create({
            "name": "Slack #incidents", "channel_type": "slack",
            "sop_role": "slack_incidents", "webhook_url": cls.slack.webhook_url()})
        cls.email_channel = Channel.create({
            "name": "DevOps e-mail", "channel_type": "email", "sop_role": "email",
            "partner_ids": [(4, cls.manager.partner_id.id)], "email_to": "devops@example.com"})
        cls.pager_channel = Channel.create({
            "name": "PagerDuty on-call", "channel_type": "pagerduty", "sop_role": "pagerduty",
            "routing_key": ROUTING_KEY, "events_url": cls.pager.enqueue_url})
        cls.deliver_cron = cls.env.ref("do_deploy.ir_cron_notification_deliver")
        cls.env["ir.config_parameter"].sudo().set_param("do_deploy.notification_timeout", "1")

    def setUp(self):
        super().setUp()
        for receiver in (self.slack, self.pager):
            receiver.received.clear()
            receiver.errors.clear()

    def deliver(self, failing=False):
        """One run of the delivery cron, through the scheduler; ``failing``: a delivery
        fails, and the engine's warning about it is expected (and returned)."""
        if not failing:
            with self.enter_registry_test_mode():
                self.deliver_cron.method_direct_trigger()
            self.env.invalidate_all()
            return []
        with self.assertLogs(DELIVERY_LOGGER, "WARNING") as logs:
            self.deliver()
        return logs.output

    def make_notifications_due(self):
        self.env["do.notification"].search([("state", "=", "retrying")]).write(
            {"next_attempt_at": fields.Datetime.now()})

    def notifications(self, deployment):
        return self.env["do.notification"].search(
            ["|", ("deployment_id", "=", deployment.id), ("rollback_id", "=", deployment.id)],
            order="id")


@tagged("post_install", "-at_install")
class TestNotifications(NotificationCommon):
    def test_slack_messages_of_a_deployment_are_accepted(self):
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        queued = self.notifications(deployment)
        # SOP: #deployments for every deploy; nothing else for a success.
        self.assertEqual([(n.channel_id, n.event, n.state) for n in queued], [
            (self.deployments_channel, "started", "queued"),
            (self.deployments_channel, "done", "queued")])
        self.assertEqual(self.slack.received, [], "nothing is sent by the deployment itself")
        self.deliver()
        self.assertEqual(queued.mapped("state"), ["sent", "sent"])
        self.assertEqual(self.slack.errors, [])
        self.assertEqual(len(self.slack.received), 2)
        done = self.slack.received[1]["json"]
        self.assertIn(f"Deployed: odoo-staging (staging) v1.1.0 ({deployment.name})",
                      done["text"])
        fields_text = str(done["blocks"][1]["fields"])
        for expected in ("v1.1.0", "New login page", "Max Manager", "Duration"):
            self.assertIn(expected, fields_text)
        button = done["blocks"][-2]["elements"][0]
        self.assertTrue(button["url"].endswith(f"/odoo/do.deployment/{deployment.id}"))
        attempt = queued[1].attempt_ids
        self.assertEqual((attempt.number, attempt.outcome, attempt.http_status),
                         (1, "ok", 200))
        self.assertEqual(deployment.notification_count, 2)

    def test_production_rollback_pages_then_resolves_with_one_dedup_key(self):
        deployment = self.deploy("v1.4.0--health-fail-always", app=self.production)
        self.run_cron()
        self.assertEqual(deployment.state, "running")
        deployment.sudo().start_date = fields.Datetime.now() - timedelta(seconds=125)
        self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")
        events = [(n.channel_id.name, n.event) for n in self.notifications(deployment)]
        self.assertEqual(events, [
            ("Slack #deployments", "started"),
            # HEALTH_CHECK_FAIL is critical: the SOP's e-mail for critical failures too.
            ("Slack #deployments", "failed"), ("Slack #incidents", "failed"),
            ("DevOps e-mail", "failed"),
            ("PagerDuty on-call", "rollback_started"),
            ("Slack #deployments", "rolled_back"), ("Slack #incidents", "rolled_back"),
            ("PagerDuty on-call", "rolled_back"),
        ])
        # The failure that hands over to the rollback says how long the deployment ran
        # (it has no duration of its own yet).
        failed = self.notifications(deployment).filtered(lambda n: n.event == "failed")[0]
        texts = [field["text"] for field in failed.payload["blocks"][1]["fields"]]
        self.assertIn("*Duration*\n2 min", "\n".join(texts))
        self.deliver()
        self.assertEqual(self.pager.errors, [])
        self.assertEqual(self.slack.errors, [])
        pages = [r["json"] for r in self.pager.received]
        self.assertEqual([p["event_action"] for p in pages], ["trigger", "resolve"])
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        key = pagerduty.dedup_key(uuid, deployment.name)
        self.assertEqual({p["dedup_key"] for p in pages}, {key})
        self.assertEqual(pages[0]["routing_key"], ROUTING_KEY)
        self.assertEqual(pages[0]["payload"]["severity"], "critical")  # HEALTH_CHECK_FAIL
        self.assertIn("HEALTH_CHECK_FAIL", pages[0]["payload"]["summary"])
        self.assertEqual(set(self.notifications(deployment).mapped("state")), {"sent"})
        # The routing key is added when sending only: the stored event has none.
        self.assertNotIn("routing_key", self.notifications(deployment)[4].payload)

    def test_failed_rollback_mails_the_critical_failure(self):
        self.sim.set_scenario("health-fail-always", tag="v1.0.0")
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        self.assertEqual(deployment.rollback_id.state, "failed")
        mails = self.notifications(deployment).filtered(lambda n: n.channel_type == "email")
        # Both are critical: the health check that failed twice, and the failed rollback.
        self.assertEqual(mails.mapped("event"), ["failed", "rollback_failed"])
        self.deliver()
        self.assertEqual(mails.mapped("state"), ["sent", "sent"])
        mail = mails[1].mail_id
        self.assertIn("Rollback failed: odoo-staging (staging)", mail.subject)
        # Odoo's mail turns the addresses into partners of their own.
        recipients = {*mail.recipient_ids.mapped("email"), *(mail.email_to or "").split(",")}
        self.assertLessEqual({"devops@example.com", self.manager.partner_id.email}, recipients)
        self.assertIn("HEALTH_CHECK_FAIL", mail.body_html)
        self.assertIn(f"/odoo/do.deployment/{deployment.id}", mail.body_html)

    def test_rules_route_per_app_environment_and_event(self):
        Route = self.env["do.notification.route"]
        # Staging successes are muted on #deployments; staging gets an e-mail when done.
        Route.create({"channel_id": self.deployments_channel.id, "environment": "staging",
                      "event": "done", "send": False})
        Route.create({"channel_id": self.email_channel.id, "app_id": self.staging.id,
                      "event": "done"})
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual([(n.channel_id, n.event) for n in self.notifications(deployment)], [
            (self.deployments_channel, "started"), (self.email_channel, "done")])

    def test_a_hanging_receiver_delays_no_deployment(self):
        with HangingReceiver(hang_seconds=30) as hanging:
            self.deployments_channel.webhook_url = hanging.url + "/services/T1/B1/hang"
            deployment = self.deploy("v1.1.0")
            self.run_until_idle()
            # The deployment is done while its notifications wait for the cron.
            self.assertEqual(deployment.state, "done")
            queued = self.notifications(deployment)
            self.assertEqual(queued.mapped("state"), ["queued", "queued"])
            self.assertEqual(queued.mapped("attempt_count"), [0, 0])
            self.deliver(failing=True)
            self.assertEqual(len(hanging.received), 2)
        self.assertEqual(queued.mapped("state"), ["retrying", "retrying"])
        attempt = queued[0].attempt_ids
        self.assertEqual(attempt.outcome, "retryable")
        self.assertEqual(attempt.error, "No answer within 1 s.")
        self.assertEqual(queued[0].next_attempt_at, attempt.retry_at)

    def test_retries_back_off_and_are_visible(self):
        self.slack.fail_next(500, "server_error", times=2)
        deployment = self.deploy("v1.1.0", start=False)
        deployment.action_start()
        self.run_cron()  # started
        notification = self.notifications(deployment).filtered(lambda n: n.event == "started")
        self.assertEqual(len(notification), 1)
        (self.notifications(deployment) - notification).action_cancel()
        gaps = []
        for _attempt in range(3):
            self.make_notifications_due()
            self.deliver(failing=_attempt < 2)
            attempt = notification.attempt_ids[:1]
            if attempt.retry_at:
                gaps.append((attempt.retry_at - attempt.create_date).total_seconds())
        self.assertEqual(notification.state, "sent")
        self.assertEqual(notification.attempt_ids.sorted("number").mapped("outcome"),
                         ["retryable", "retryable", "ok"])
        self.assertEqual(notification.attempt_ids.sorted("number").mapped("http_status"),
                         [500, 500, 200])
        # Exponential backoff with equal jitter: 15-30 s after the first, 30-60 s after
        # the second.
        self.assertEqual(len(gaps), 2)
        self.assertTrue(14 <= gaps[0] <= 31 and 29 <= gaps[1] <= 61, gaps)
        # Throttled: Retry-After is respected.
        second = self.deploy("v1.2.0")
        self.run_until_idle()
        self.slack.throttle_next(retry_after=600)
        self.deliver(failing=True)
        throttled = self.notifications(second).filtered(lambda n: n.state == "retrying")
        self.assertEqual(throttled.attempt_ids.http_status, 429)
        self.assertGreaterEqual(
            (throttled.next_attempt_at - throttled.attempt_ids.create_date).total_seconds(), 599)

    def test_a_permanent_refusal_is_not_retried(self):
        self.deployments_channel.webhook_url = self.slack.webhook_url("revokedToken")
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.deliver(failing=True)
        notifications = self.notifications(deployment)
        self.assertEqual(notifications.mapped("state"), ["failed", "failed"])
        self.assertEqual(notifications[0].attempt_ids.http_status, 403)
        self.assertFalse(notifications[0].next_attempt_at)

    def test_a_notification_fault_never_fails_a_deployment(self):
        def broken(self, event_name):
            raise RuntimeError("routing broke")

        with self.patch_step("_queue_event", side_effect=broken), \
                self.assertLogs("odoo.addons.do_deploy.models.do_deployment_notify",
                                "ERROR") as logs:
            deployment = self.deploy("v1.1.0")
            self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        self.assertFalse(self.notifications(deployment))
        self.assertIn("could not be queued", logs.output[0])

    def test_secrets_reach_no_log_message_or_plain_user(self):
        token = "sEcReTtOkEn0123456789abc"
        self.deployments_channel.webhook_url = self.slack.webhook_url(token)  # refused: 403
        self.incidents_channel.webhook_url = self.slack.webhook_url()
        with self.assertLogs("odoo.addons.do_deploy", logging.DEBUG) as logs:
            logging.getLogger("odoo.addons.do_deploy").debug("capture starts")
            deployment = self.deploy("v1.4.0--health-fail-always", app=self.production)
            self.run_until_idle()
            self.deliver()
            self.make_notifications_due()
            self.deliver()
        secrets = (token, self.slack.token, ROUTING_KEY)
        texts = [*logs.output]
        notifications = self.notifications(deployment)
        texts += [str(n.payload) for n in notifications]
        texts += notifications.mapped("last_error") + notifications.attempt_ids.mapped("error")
        texts += notifications.attempt_ids.mapped("answer")
        messages = self.env["mail.message"].search([
            ("model", "=", "do.deployment"),
            ("res_id", "in", (deployment | deployment.rollback_id).ids)])
        texts += messages.mapped("body")
        self.assertTrue(any("not delivered" in line for line in logs.output))
        for secret in secrets:
            self.assertFalse([t for t in texts if t and secret in str(t)], secret)
        # Managers only.
        channel = self.deployments_channel.with_user(self.user)
        self.assertEqual(channel.name, "Slack #deployments")
        with self.assertRaises(AccessError):
            channel.webhook_url  # noqa: B018
        with self.assertRaises(AccessError):
            self.pager_channel.with_user(self.user).routing_key  # noqa: B018
        self.assertTrue(self.pager_channel.with_user(self.user).is_configured)

    def test_invalid_channels_are_refused(self):
        Channel = self.env["do.notification.channel"]
        for values in (
                {"channel_type": "slack", "webhook_url": "hooks.slack.com/x"},
                {"channel_type": "pagerduty", "routing_key": "short"},
                {"channel_type": "email"},
                {"channel_type": "slack", "sop_role": "email",
                 "webhook_url": self.slack.webhook_url()}):
            with self.subTest(values=values), self.assertRaisesRegex(
                    Exception, "NOTIFICATION_CHANNEL_INVALID"):
                with self.env.cr.savepoint():
                    Channel.create({"name": "bad", **values})

    def test_waiting_for_approval_is_announced(self):
        deployment = self.deploy("v1.1.0", start=False)
        deployment._queue_event("waiting_approval")
        self.deliver()
        self.assertEqual(self.slack.errors, [])
        self.assertIn("Waiting for approval: odoo-staging (staging) v1.1.0",
                      self.slack.received[0]["json"]["text"])
        # The quality gates' ``waiting`` state, once it exists, announces it.
        if "waiting" in dict(deployment._fields["state"].selection):
            deployment.sudo().write({"state": "waiting"})
            self.assertEqual(self.notifications(deployment).mapped("event"),
                             ["waiting_approval", "waiting_approval"])

    def test_a_retry_waits_for_its_time(self):
        """A retrying notification is not sent before its time."""
        self.slack.fail_next(503, "unavailable")
        deployment = self.deploy("v1.1.0", start=False)
        deployment.action_start()
        self.run_cron()
        self.deliver(failing=True)
        notification = self.notifications(deployment)[:1]
        self.assertEqual(notification.state, "retrying")
        self.deliver()
        self.assertEqual(notification.attempt_count, 1)
        self.assertGreater(notification.next_attempt_at,
                           fields.Datetime.now() - timedelta(seconds=1))


@tagged("post_install", "-at_install")
class TestNotificationErrorCodes(NotificationCommon):
    """Each failed attempt stores its error code, shown with its sentence and mitigation on
    the attempt, its notification and its channel."""

    def started_notification(self):
        """The #deployments notification of a deployment that started (the others canceled)."""
        deployment = self.deploy("v1.1.0", start=False)
        deployment.action_start()
        self.run_cron()
        notification = self.notifications(deployment).filtered(lambda n: n.event == "started")
        (self.notifications(deployment) - notification).action_cancel()
        self.assertEqual(notification.channel_id, self.deployments_channel)
        return notification

    def assertFailure(self, notification, code, error, state):
        """The last attempt of ``notification`` failed with ``code`` and ``error``, shown on
        the notification and as its channel's last failure."""
        attempt = notification.attempt_ids[:1]
        self.assertEqual((attempt.error_code_id.code, attempt.error, notification.state),
                         (code, error, state))
        self.assertEqual(attempt.error_description, ERROR_CODES[code].description)
        self.assertEqual(attempt.mitigation, ERROR_CODES[code].mitigation)
        self.assertEqual(notification.error_code_id, attempt.error_code_id)
        self.assertEqual(notification.last_error, error)
        channel = notification.channel_id
        self.assertEqual(channel.last_failure_id, attempt)
        self.assertTrue(channel.is_failing)
        self.assertEqual((channel.last_failure_code_id.code, channel.last_failure_error,
                          channel.last_failure_mitigation),
                         (code, error, ERROR_CODES[code].mitigation))
        return attempt

    def test_a_refusal_is_rejected_with_the_receivers_reason(self):
        self.deployments_channel.webhook_url = self.slack.webhook_url("revokedToken")
        notification = self.started_notification()
        self.deliver(failing=True)
        attempt = self.assertFailure(
            notification, "NOTIFICATION_REJECTED",
            "The receiver refused the notification with HTTP 403: invalid_token.", "failed")
        self.assertEqual((attempt.http_status, attempt.outcome, attempt.retry_at),
                         (403, "permanent", False))
        self.assertFalse(notification.next_attempt_at)
        # Slack refusing the payload: its reason is quoted too.
        self.deployments_channel.webhook_url = self.slack.webhook_url()
        self.slack.fail_next(400, "invalid_payload")
        notification.action_retry_now()
        self.deliver(failing=True)
        self.assertFailure(
            notification, "NOTIFICATION_REJECTED",
            "The receiver refused the notification with HTTP 400: invalid_payload.", "failed")
        self.assertEqual(notification.attempt_count, 2)

    def test_a_rate_limit_waits_the_time_the_receiver_asks(self):
        notification = self.started_notification()
        self.slack.throttle_next(retry_after=600)
        self.deliver(failing=True)
        attempt = self.assertFailure(
            notification, "NOTIFICATION_RATE_LIMITED",
            "The receiver is rate-limiting notifications (HTTP 429); it asked to wait 600 s.",
            "retrying")
        self.assertEqual(attempt.http_status, 429)
        self.assertGreaterEqual(
            (notification.next_attempt_at - attempt.create_date).total_seconds(), 599)
        # Sent at its time: the channel is no longer failing, its last failure stays.
        self.make_notifications_due()
        self.deliver()
        self.assertEqual(notification.state, "sent")
        self.assertFalse(notification.error_code_id)
        channel = self.deployments_channel
        self.assertEqual((channel.is_failing, channel.last_failure_id), (False, attempt))
        self.assertTrue(channel.last_sent_at)

    def test_an_unavailable_receiver_is_retried(self):
        notification = self.started_notification()
        self.slack.fail_next(500, "server_error")
        self.deliver(failing=True)
        self.assertFailure(notification, "NOTIFICATION_RECEIVER_UNAVAILABLE",
                           "The receiver answered HTTP 500; it may accept it later.", "retrying")
        with HangingReceiver(hang_seconds=30) as hanging:
            self.deployments_channel.webhook_url = hanging.url + "/services/T1/B1/hang"
            self.make_notifications_due()
            self.deliver(failing=True)
        attempt = notification.attempt_ids[:1]
        self.assertIn(attempt.error, ("No answer within 1 s.", "No complete answer within 1 s."))
        self.assertFailure(notification, "NOTIFICATION_RECEIVER_UNAVAILABLE", attempt.error,
                           "retrying")
        self.assertEqual(notification.attempt_count, 2)

    def test_a_channel_that_cannot_send_is_invalid(self):
        # A URL that passes the form's check (it starts with http://) but has no host.
        self.deployments_channel.webhook_url = "http://"
        notification = self.started_notification()
        self.deliver(failing=True)
        self.assertFailure(notification, "NOTIFICATION_CHANNEL_INVALID",
                           "The receiver's URL is not a valid http or https URL.", "failed")
        # An e-mail channel whose only recipient was deleted since it was saved.
        partner = self.env["res.partner"].create({"name": "On-call", "email": "oncall@example.com"})
        mails = self.email_channel
        mails.write({"partner_ids": [(6, 0, [partner.id])], "email_to": False})
        partner.unlink()
        self.assertFalse(mails.partner_ids)
        queued = self.env["do.notification"]._queue([{
            "channel_id": mails.id, "company_id": mails.company_id.id, "event": "failed",
            "summary": "Deployment failed"}])
        self.deliver()
        self.assertFailure(queued, "NOTIFICATION_CHANNEL_INVALID",
                           "The e-mail channel has no recipient.", "failed")
        self.assertFalse(queued.mail_id)


@tagged("post_install", "-at_install")
class TestNotificationTestMessage(NotificationCommon):
    """A Deployment Manager's "Send test message": the real delivery path, at once, once."""

    def send_test(self, channel, user=None):
        return channel.with_user(user or self.manager).action_send_test_message()

    def channel_tests(self, channel):
        return self.env["do.notification"].search(
            [("channel_id", "=", channel.id), ("event", "=", "test")], order="id")

    def test_a_manager_sends_a_test_message_to_each_channel(self):
        action = self.send_test(self.deployments_channel)
        params = action["params"]
        self.assertEqual((action["tag"], params["type"]), ("display_notification", "success"))
        self.assertEqual(params["title"], "Test message sent to Slack #deployments")
        self.assertRegex(params["message"], r"^127\.0\.0\.1 answered HTTP 200 in \d+ ms\.$")
        self.assertEqual(self.slack.errors, [])
        message = self.slack.received[0]["json"]
        self.assertEqual(message["text"],
                         "Test message from do_deploy: Slack #deployments (no deployment)")
        self.assertIn("Max Manager checked that deployment notifications reach this channel",
                      str(message["blocks"]))
        sent = self.channel_tests(self.deployments_channel)
        self.assertEqual((sent.state, sent.attempt_ids.outcome, sent.attempt_ids.http_status),
                         ("sent", "ok", 200))
        self.assertTrue(self.deployments_channel.last_sent_at)
        self.assertFalse(self.deployments_channel.is_failing)
        # PagerDuty: an info alert marked [TEST] at once, resolved by the event that follows.
        params = self.send_test(self.pager_channel)["params"]
        self.assertEqual(params["type"], "success")
        self.assertIn("The test alert is resolved by the event that follows.", params["message"])
        trigger = self.pager.received[0]["json"]
        self.assertEqual((trigger["event_action"], trigger["routing_key"],
                          trigger["payload"]["severity"]), ("trigger", ROUTING_KEY, "info"))
        self.assertTrue(trigger["payload"]["summary"].startswith(
            "[TEST] do_deploy test message for PagerDuty on-call, sent by Max Manager"))
        self.deliver()
        self.assertEqual(self.pager.errors, [])
        resolve = self.pager.received[1]["json"]
        self.assertEqual((resolve["event_action"], resolve["dedup_key"]),
                         ("resolve", trigger["dedup_key"]))
        self.assertEqual(self.channel_tests(self.pager_channel).mapped("state"), ["sent", "sent"])
        # E-mail: handed to Odoo's outgoing mail, from its own template.
        params = self.send_test(self.email_channel)["params"]
        self.assertEqual(params["type"], "success")
        self.assertRegex(params["message"], r"^Queued as e-mail \d+ to 2 recipient\(s\)")
        mail = self.channel_tests(self.email_channel).mail_id
        self.assertEqual(mail.subject,
                         "Test message from do_deploy: DevOps e-mail (no deployment)")
        self.assertIn("Max Manager checked that deployment notifications reach the channel",
                      mail.body_html)

    def test_a_failed_test_message_shows_the_code(self):
        self.pager.fail_next(400, {"status": "invalid event",
                                   "message": f"Event object is invalid: key {ROUTING_KEY}"})
        with self.assertLogs(DELIVERY_LOGGER, "WARNING"):
            action = self.send_test(self.pager_channel)
        params = action["params"]
        entry = ERROR_CODES["NOTIFICATION_REJECTED"]
        error = ("The receiver refused the notification with HTTP 400: Event object is invalid: "
                 "key ***.")
        self.assertEqual((params["type"], params["sticky"], params["title"]),
                         ("danger", True, "Test message not delivered: NOTIFICATION_REJECTED"))
        self.assertEqual(params["message"],
                         f"{entry.description} {error} What to do: {entry.mitigation}")
        self.assertNotIn(ROUTING_KEY, str(action))
        # Only the log is kept: the failed test and its attempt, nothing to resolve or retry.
        failed = self.channel_tests(self.pager_channel)
        self.assertEqual((len(failed), failed.state, failed.next_attempt_at), (1, "failed", False))
        attempt = failed.attempt_ids
        self.assertEqual((attempt.error_code_id.code, attempt.error, attempt.retry_at),
                         ("NOTIFICATION_REJECTED", error, False))
        self.assertEqual((self.pager_channel.is_failing, self.pager_channel.last_failure_id),
                         (True, attempt))
        self.assertEqual(len(self.pager.received), 1)
        # A receiver that is down: said at once, and not retried either.
        self.slack.fail_next(503, "unavailable")
        with self.assertLogs(DELIVERY_LOGGER, "WARNING"):
            params = self.send_test(self.incidents_channel)["params"]
        self.assertEqual(params["title"],
                         "Test message not delivered: NOTIFICATION_RECEIVER_UNAVAILABLE")
        down = self.channel_tests(self.incidents_channel)
        self.assertEqual((down.state, down.next_attempt_at, down.attempt_ids.retry_at),
                         ("failed", False, False))
        # An e-mail channel left without recipients: no e-mail is created.
        partner = self.env["res.partner"].create({"name": "On-call", "email": "oncall@example.com"})
        self.email_channel.write({"partner_ids": [(6, 0, [partner.id])], "email_to": False})
        partner.unlink()
        mails_before = self.env["mail.mail"].search_count([])
        params = self.send_test(self.email_channel)["params"]
        self.assertEqual(params["title"],
                         "Test message not delivered: NOTIFICATION_CHANNEL_INVALID")
        self.assertIn("The e-mail channel has no recipient.", params["message"])
        self.assertEqual(self.env["mail.mail"].search_count([]), mails_before)

    def test_only_a_deployment_manager_sees_and_sends_a_test_message(self):
        for user in (self.user, self.plain):
            with self.subTest(user=user.name), self.assertRaises(AccessError):
                self.send_test(self.deployments_channel, user=user)
        self.assertEqual(self.slack.received, [])
        self.assertFalse(self.channel_tests(self.deployments_channel))
        Channel = self.env["do.notification.channel"]
        self.assertNotIn("action_send_test_message",
                         Channel.with_user(self.user).get_view(view_type="form")["arch"])
        self.assertIn("action_send_test_message",
                      Channel.with_user(self.manager).get_view(view_type="form")["arch"])
