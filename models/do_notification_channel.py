from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

from ..engine.notify import events, pagerduty

CHANNEL_TYPES = [("slack", "Slack"), ("email", "E-mail"), ("pagerduty", "PagerDuty")]
SOP_ROLES = [
    (events.SLACK_DEPLOYMENTS, "Slack #deployments: every deployment"),
    (events.SLACK_INCIDENTS, "Slack #incidents: failures and KPI alerts"),
    (events.EMAIL, "E-mail: critical failures and alerts"),
    (events.PAGERDUTY, "PagerDuty: production rollbacks"),
]
# The channel type each SOP role is played by.
ROLE_TYPES = {events.SLACK_DEPLOYMENTS: "slack", events.SLACK_INCIDENTS: "slack",
              events.EMAIL: "email", events.PAGERDUTY: "pagerduty"}
MANAGERS = "do_deploy.group_do_deploy_manager"


class DoNotificationChannel(models.Model):
    """Where deployment events and KPI alerts are sent: a Slack incoming webhook, a list of
    e-mail recipients, or a PagerDuty integration.

    The webhook URL and the routing key are secrets, kept like the DigitalOcean token:
    readable by Deployment Managers only (field groups), read with sudo by the delivery
    cron alone, never logged (the engine names the receiver's host only) and never in a
    chatter (the model has none).
    """

    _name = "do.notification.channel"
    _description = "Notification Channel"
    _order = "sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True)
    channel_type = fields.Selection(CHANNEL_TYPES, string="Type", required=True, default="slack")
    sop_role = fields.Selection(
        SOP_ROLES, string="SOP role",
        help="What SOP-DEPLOY-001 sends here by default. Without a role the channel gets "
             "only what its rules send it.")
    webhook_url = fields.Char(
        "Webhook URL", groups=MANAGERS,
        help="The Slack incoming webhook (https://hooks.slack.com/services/...). A secret: "
             "only Deployment Managers can read it.")
    routing_key = fields.Char(
        groups=MANAGERS,
        help="The 32-character integration key of a PagerDuty service (Events API v2). A "
             "secret: only Deployment Managers can read it.")
    events_url = fields.Char(
        "Events API URL", default=pagerduty.ENQUEUE_URL, groups=MANAGERS,
        help="Where PagerDuty events are posted; the EU service region uses "
             "https://events.eu.pagerduty.com/v2/enqueue.")
    partner_ids = fields.Many2many("res.partner", string="Recipients")
    email_to = fields.Char(
        "Other addresses", help="E-mail addresses separated by commas, e.g. devops@example.com.")
    is_configured = fields.Boolean(
        compute="_compute_is_configured",
        help="The channel has what it needs to send (its secret, or recipients).")
    route_ids = fields.One2many("do.notification.route", "channel_id", string="Rules")
    notification_ids = fields.One2many("do.notification", "channel_id")
    # Set by each delivery attempt (do.notification._record_attempt).
    last_sent_at = fields.Datetime("Last delivered", readonly=True, copy=False)
    last_failure_id = fields.Many2one("do.notification.attempt", string="Last failure",
                                      readonly=True, copy=False, ondelete="set null")
    is_failing = fields.Boolean(
        "Failing", readonly=True, copy=False,
        help="The last attempt to deliver to this channel failed.")
    last_failure_code_id = fields.Many2one(related="last_failure_id.error_code_id",
                                           string="Last failure code")
    last_failure_description = fields.Char(related="last_failure_id.error_description",
                                           string="Last failure: what happened")
    last_failure_error = fields.Char(related="last_failure_id.error",
                                     string="Last failure: error")
    last_failure_mitigation = fields.Text(related="last_failure_id.mitigation",
                                          string="Last failure: what to do")
    last_failure_at = fields.Datetime(related="last_failure_id.create_date",
                                      string="Last failure at")

    @api.depends("channel_type", "partner_ids", "email_to")
    @api.depends_context("uid")
    def _compute_is_configured(self):
        for channel in self:
            secrets = channel.sudo()
            channel.is_configured = {
                "slack": bool(secrets.webhook_url),
                "pagerduty": bool(secrets.routing_key),
                "email": bool(channel.partner_ids or channel.email_to),
            }[channel.channel_type]

    @api.constrains("channel_type", "sop_role", "webhook_url", "routing_key", "events_url",
                    "partner_ids", "email_to")
    def _check_settings(self):
        for channel in self.sudo():
            if channel.sop_role and ROLE_TYPES[channel.sop_role] != channel.channel_type:
                raise ValidationError(self.env._(
                    "NOTIFICATION_CHANNEL_INVALID: the role %(role)s is played by a %(type)s "
                    "channel. Choose that type, or another role.",
                    role=dict(SOP_ROLES)[channel.sop_role],
                    type=dict(CHANNEL_TYPES)[ROLE_TYPES[channel.sop_role]]))
            if channel.channel_type == "slack" and not (channel.webhook_url or "").startswith(
                    ("https://", "http://")):
                raise ValidationError(self.env._(
                    "NOTIFICATION_CHANNEL_INVALID: %(name)s needs the incoming webhook URL "
                    "Slack gave (https://hooks.slack.com/services/...).", name=channel.name))
            if channel.channel_type == "pagerduty" and (
                    not pagerduty.valid_routing_key(channel.routing_key)
                    or not (channel.events_url or "").startswith(("https://", "http://"))):
                raise ValidationError(self.env._(
                    "NOTIFICATION_CHANNEL_INVALID: %(name)s needs the 32-character integration "
                    "key of a PagerDuty service (Events API v2) and the Events API URL.",
                    name=channel.name))
            if channel.channel_type == "email" and not (channel.partner_ids or channel.email_to):
                raise ValidationError(self.env._(
                    "NOTIFICATION_CHANNEL_INVALID: %(name)s needs at least one recipient or "
                    "address.", name=channel.name))

    def action_send_test_message(self):
        """Send a test message now and say how it went (a toast; the attempt is logged).

        It uses the channel's secret, so it is a Deployment Manager's button, as the
        secret is; plain users can read the channel, hence the check here too.
        """
        self.ensure_one()
        if not self.env.su and not self.env.user.has_group(MANAGERS):
            raise AccessError(self.env._(
                "Only a Deployment Manager can send a test message to a notification channel."))
        return self.env["do.notification"]._send_test(self)._test_result_action()

    def _secret_texts(self):
        """The texts to hide from anything shown: the webhook URL and the routing key."""
        return [text for channel in self.sudo()
                for text in (channel.webhook_url, channel.routing_key) if text]
