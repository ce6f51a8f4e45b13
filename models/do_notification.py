"""The notification queue: one record per channel per event, delivered by a cron.

A deployment's state transition only *creates* these records, in its own
transaction (``do_deployment_notify.py``); the cron ``_cron_deliver`` sends
them, one bounded attempt at a time (``engine/notify/delivery.py``: at most
``do_deploy.notification_timeout`` seconds, 5 by default), stores each attempt
and retries with exponential backoff. So a receiver that is slow, down or
refuses never holds or fails a deployment.

A channel's test message (``_send_test``) takes the same path, at once and without
retry, so that what a Deployment Manager sees is what a deployment would get.
"""

import json
import logging

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Command

from ..engine.errors import DeployError, redact
from ..engine.notify import delivery, events, pagerduty, slack
from .do_notification_route import EVENT_LABELS

_logger = logging.getLogger(__name__)

TIMEOUT_PARAM = "do_deploy.notification_timeout"
# Notifications taken per cron pass; the rest wait for the next one.
BATCH_SIZE = 50
STATES = [
    ("queued", "Queued"),
    ("retrying", "Retrying"),
    ("sent", "Sent"),
    ("failed", "Failed"),
    ("canceled", "Canceled"),
]
PENDING_STATES = ("queued", "retrying")
MAIL_TEMPLATES = {
    "deployment": "do_deploy.mail_template_deployment_event",
    "alert": "do_deploy.mail_template_kpi_alert",
    events.TEST: "do_deploy.mail_template_test_message",
}
NOTIFICATION_EVENTS = [*EVENT_LABELS, (events.TEST, "Test message")]


class DoNotification(models.Model):
    """One event to one channel, and its delivery: queued, retried, sent or failed.

    ``payload`` is what is posted (a Slack message, a PagerDuty event without its
    routing key, which is added only when sending); e-mails are rendered from a
    mail template when sent. Nothing stored here holds a secret.
    """

    _name = "do.notification"
    _description = "Notification"
    _order = "id desc"
    _check_company_auto = True

    channel_id = fields.Many2one("do.notification.channel", required=True, ondelete="cascade",
                                 index=True)
    channel_type = fields.Selection(related="channel_id.channel_type", store=True)
    company_id = fields.Many2one("res.company", required=True, index=True)
    event = fields.Selection(NOTIFICATION_EVENTS, required=True)
    summary = fields.Char(required=True)
    deployment_id = fields.Many2one(
        "do.deployment", ondelete="cascade", index="btree_not_null",
        help="The deployment the event is about (for a rollback: the one rolled back).")
    rollback_id = fields.Many2one("do.deployment", ondelete="cascade", index="btree_not_null",
                                  string="Rollback run")
    alert_id = fields.Many2one("do.alert", ondelete="cascade", index="btree_not_null")
    payload = fields.Json(copy=False)
    link = fields.Char()
    state = fields.Selection(STATES, required=True, default="queued", index=True)
    attempt_count = fields.Integer(default=0)
    next_attempt_at = fields.Datetime(index=True)
    sent_at = fields.Datetime()
    last_error = fields.Char()
    error_code_id = fields.Many2one("do.error.code", string="Code", readonly=True,
                                    help="The error code of the last attempt, when it failed.")
    mail_id = fields.Many2one("mail.mail", string="E-mail", ondelete="set null")
    attempt_ids = fields.One2many("do.notification.attempt", "notification_id",
                                  string="Attempts")

    _due_idx = models.Index("(next_attempt_at) WHERE state IN ('queued', 'retrying')")

    @api.depends("channel_id", "event", "summary")
    def _compute_display_name(self):
        for notification in self:
            notification.display_name = (
                f"{notification.channel_id.name}: {notification.summary}")

    # ------------------------------------------------------------------
    # Queue
    # ------------------------------------------------------------------

    @api.model
    def _queue(self, vals_list):
        """Queue notifications (sudo: the pipeline's and the alert cron's) and wake the
        delivery cron for after this transaction's commit."""
        if not vals_list:
            return self.browse()
        now = fields.Datetime.now()
        notifications = self.sudo().create([
            {"next_attempt_at": now, "state": "queued", **vals} for vals in vals_list])
        self.env.ref("do_deploy.ir_cron_notification_deliver").sudo()._trigger()
        return notifications

    def action_retry_now(self):
        """Send a failed or retrying notification again at the next pass."""
        if any(n.state not in ("failed", "retrying") for n in self):
            raise UserError(self.env._("Only a failed or retrying notification can be sent "
                                       "again."))
        self.write({"state": "retrying", "next_attempt_at": fields.Datetime.now()})
        self.env.ref("do_deploy.ir_cron_notification_deliver").sudo()._trigger()
        return True

    def action_cancel(self):
        if any(n.state not in PENDING_STATES for n in self):
            raise UserError(self.env._("Only a queued or retrying notification can be "
                                       "canceled."))
        self.write({"state": "canceled", "next_attempt_at": False})
        return True

    # ------------------------------------------------------------------
    # Delivery (cron)
    # ------------------------------------------------------------------

    @api.model
    def _cron_deliver(self, batch_size=BATCH_SIZE):
        """Send the due notifications, one bounded attempt each, committing after each;
        re-arm for the earliest retry."""
        IrCron = self.env["ir.cron"]
        now = fields.Datetime.now()
        due = self.sudo().search([("state", "in", PENDING_STATES),
                                  ("next_attempt_at", "<=", now)],
                                 order="next_attempt_at, id", limit=batch_size)
        IrCron._commit_progress(remaining=len(due))
        for notification in due:
            # One row locked at a time: a commit releases the locks of the whole batch.
            locked = notification.try_lock_for_update()
            locked.invalidate_recordset(["state"])  # as another sender may have left it
            if locked and locked.state in PENDING_STATES:
                locked._deliver_once()
            if not IrCron._commit_progress(1):
                break
        following = self.sudo().search([("state", "in", PENDING_STATES)],
                                       order="next_attempt_at", limit=1)
        if following.next_attempt_at:
            self.env.ref("do_deploy.ir_cron_notification_deliver").sudo()._trigger(
                at=max(following.next_attempt_at, fields.Datetime.now()))

    def _timeout(self):
        value = self.env["ir.config_parameter"].sudo().get_param(TIMEOUT_PARAM)
        try:
            return min(max(float(value), 0.5), delivery.MAX_TIMEOUT) if value else (
                delivery.TIMEOUT)
        except ValueError:
            return delivery.TIMEOUT

    def _deliver_once(self, retry=True):
        """One attempt for this notification; its result stored, never raised. Without
        ``retry``, a failure is final (a test message)."""
        self.ensure_one()
        attempt = self.attempt_count + 1
        if self.channel_type == "email":
            result = self._send_email(attempt)
        else:
            result = self._post(attempt)
        self._record_attempt(result, retry=retry)

    def _post(self, attempt):
        channel = self.channel_id.sudo()
        options = {"attempt": attempt, "timeout": self._timeout()}
        try:
            session = self.env["do.account"]._guarded_session()
        except DeployError as error:
            return delivery.DeliveryResult(delivery.PERMANENT, attempt, "", error=error.message,
                                           code=error.code)
        with session:
            if self.channel_type == "slack":
                return slack.send(channel.webhook_url or "", self.payload, session=session,
                                  **options)
            message = {**self.payload, "routing_key": channel.routing_key or ""}
            return pagerduty.send(message, url=channel.events_url or pagerduty.ENQUEUE_URL,
                                  session=session, **options)

    def _send_email(self, attempt):
        """Hand the e-mail to Odoo's mail queue, which sends and retries it over SMTP."""
        kind = self.event if self.event == events.TEST else (
            "alert" if self.alert_id else "deployment")
        template = self.env.ref(MAIL_TEMPLATES[kind])
        channel = self.channel_id
        addresses = [address.strip() for address in (channel.email_to or "").split(",")
                     if address.strip()]
        if not (channel.partner_ids or addresses):  # its partners were deleted since
            return delivery.DeliveryResult(
                delivery.PERMANENT, attempt, "mail", error="The e-mail channel has no recipient.",
                code=delivery.CHANNEL_INVALID)
        mail_id = template.sudo().send_mail(self.id, force_send=False, email_values={
            "recipient_ids": [Command.link(partner.id) for partner in channel.partner_ids],
            "email_to": ",".join(addresses) or False,
        })
        self.mail_id = mail_id
        return delivery.DeliveryResult(
            delivery.OK, attempt, "mail", answer=f"Queued as e-mail {mail_id} to "
            f"{len(channel.partner_ids) + len(addresses)} recipient(s) in Odoo's outgoing "
            "mail.")

    def _record_attempt(self, result, retry=True):
        """Store the attempt with its error code, and follow it on the notification and on
        its channel (its last success or failure)."""
        secrets = self.channel_id._secret_texts()
        answer = result.answer
        if answer is not None and not isinstance(answer, str):
            answer = json.dumps(answer, ensure_ascii=False)
        error = redact(result.error, secrets) if result.error else False
        code = self.env["do.error.code"].sudo()._get_by_code(result.code) if result.code else (
            self.env["do.error.code"])
        retry_at = result.retry_at if retry else None
        attempt = self.env["do.notification.attempt"].sudo().create({
            "notification_id": self.id,
            "number": result.attempt,
            "outcome": result.outcome,
            "host": result.host,
            "http_status": result.status or 0,
            "error": error,
            "error_code_id": code.id,
            "answer": redact(answer, secrets) if answer else False,
            "elapsed_ms": result.elapsed_ms,
            "retry_at": retry_at or False,
        })
        values = {"attempt_count": result.attempt, "last_error": error, "error_code_id": code.id}
        now = fields.Datetime.now()
        if result.ok:
            values.update(state="sent", sent_at=now, next_attempt_at=False)
            self.channel_id.sudo().write({"last_sent_at": now, "is_failing": False})
        else:
            if retry_at:
                values.update(state="retrying", next_attempt_at=retry_at)
            else:
                values.update(state="failed", next_attempt_at=False)
            self.channel_id.sudo().write({"last_failure_id": attempt.id, "is_failing": True})
        self.write(values)

    # ------------------------------------------------------------------
    # Test message (a channel's button)
    # ------------------------------------------------------------------

    @api.model
    def _send_test(self, channel):
        """Send ``channel`` a test message now, through the delivery path, once.

        Only the notification and its attempt are kept (the log); a PagerDuty test alert
        that was accepted is resolved by a resolve event queued right after it.
        """
        channel = channel.sudo()
        now = fields.Datetime.now()
        link = f"{channel.get_base_url()}/odoo/do.notification.channel/{channel.id}"
        requested_by = self.env.user.name
        message = slack.test_message(channel.name, requested_by=requested_by, link=link,
                                     occurred_at=now)
        values = {"channel_id": channel.id, "company_id": channel.company_id.id,
                  "event": events.TEST, "summary": message["text"], "link": link}
        if channel.channel_type == "slack":
            values["payload"] = message
        elif channel.channel_type == "pagerduty":
            page = pagerduty.test_event(
                "", channel.name, requested_by=requested_by, link=link, occurred_at=now,
                instance=self.env["ir.config_parameter"].sudo().get_param("database.uuid"))
            page.pop("routing_key")
            values["payload"] = page
        notification = self.sudo().create(values)
        notification._deliver_once(retry=False)
        if notification.state == "sent" and channel.channel_type == "pagerduty":
            resolve = pagerduty.resolve("", dedup_key=values["payload"]["dedup_key"])
            resolve.pop("routing_key")
            self._queue([{**values, "payload": resolve,
                          "summary": self.env._("%(summary)s (resolve)",
                                                summary=message["text"])}])
        return notification

    def _test_result_action(self):
        """The toast that says how the test message went: delivered, or the code, its
        sentence and what to do."""
        self.ensure_one()
        attempt = self.attempt_ids[:1]
        channel = self.channel_id
        if self.state == "sent":
            said = attempt.answer if not attempt.http_status else self.env._(
                "%(host)s answered HTTP %(status)s in %(ms)s ms.", host=attempt.host,
                status=attempt.http_status, ms=attempt.elapsed_ms)
            if channel.channel_type == "pagerduty":
                said += " " + self.env._("The test alert is resolved by the event that follows.")
            params = {"type": "success",
                      "title": self.env._("Test message sent to %(channel)s", channel=channel.name),
                      "message": said}
        else:
            code = attempt.error_code_id
            params = {"type": "danger", "sticky": True,
                      "title": self.env._("Test message not delivered: %(code)s",
                                          code=code.code),
                      "message": self.env._("%(what)s %(error)s What to do: %(mitigation)s",
                                            what=code.name, error=attempt.error,
                                            mitigation=code.mitigation)}
        params["next"] = {"type": "ir.actions.client", "tag": "soft_reload"}
        return {"type": "ir.actions.client", "tag": "display_notification", "params": params}

