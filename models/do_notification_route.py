from odoo import api, fields, models

from ..engine.notify import events, routing

EVENT_LABELS = [
    (events.STARTED, "Started"),
    (events.WAITING_APPROVAL, "Waiting for approval"),
    (events.DONE, "Done"),
    (events.FAILED, "Failed"),
    (events.ROLLBACK_STARTED, "Rollback started"),
    (events.ROLLED_BACK, "Rolled back"),
    (events.ROLLBACK_FAILED, "Rollback failed"),
    (routing.ALERT, "KPI alert"),
]
ENVIRONMENTS = [("staging", "Staging"), ("production", "Production")]


class DoNotificationRoute(models.Model):
    """A rule that sends, or stops, one channel's notifications for an app, an environment
    and an event (empty: any); the most specific rule decides, a mute wins a tie
    (``engine/notify/routing.py``). Without a rule the SOP's routing applies."""

    _name = "do.notification.route"
    _description = "Notification Rule"
    _order = "channel_id, id"
    _check_company_auto = True

    channel_id = fields.Many2one(
        "do.notification.channel", required=True, ondelete="cascade", index=True,
        check_company=True)
    company_id = fields.Many2one(related="channel_id.company_id", store=True)
    app_id = fields.Many2one("do.app", ondelete="cascade", check_company=True,
                             help="Empty: every app.")
    environment = fields.Selection(ENVIRONMENTS, help="Empty: every environment.")
    event = fields.Selection(EVENT_LABELS, help="Empty: every event.")
    send = fields.Boolean(default=True, help="Send these notifications; unticked: don't.")

    def _as_rules(self):
        return [routing.Rule(route.channel_id.id, route.send, app=route.app_id.id or None,
                             environment=route.environment or None, event=route.event or None)
                for route in self]

    @api.model
    def _route(self, *, company, app, environment, event, default_roles):
        """The active channels of ``company`` that get ``event``, in their order."""
        channels = self.env["do.notification.channel"].sudo().search(
            [("company_id", "=", company.id)])
        rules = self.sudo().search([("channel_id", "in", channels.ids)])._as_rules()
        chosen = routing.route(
            [routing.Channel(channel.id, channel.sop_role or None) for channel in channels],
            rules, default_roles=default_roles, app=app.id or None,
            environment=environment or None, event=event)
        return self.env["do.notification.channel"].sudo().browse(chosen)
