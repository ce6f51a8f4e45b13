from odoo import api, fields, models


class DoNotificationAttempt(models.Model):
    """One attempt to deliver a notification, as the engine reported it (no secret).

    A failed attempt carries its error code (``engine/notify/delivery.py`` classifies
    it), so that the attempt, its notification and its channel show what happened and
    what to do.
    """

    _name = "do.notification.attempt"
    _description = "Notification Attempt"
    _order = "id desc"

    notification_id = fields.Many2one("do.notification", required=True, ondelete="cascade",
                                      index=True)
    deployment_id = fields.Many2one(related="notification_id.deployment_id", store=True,
                                    index="btree_not_null")
    channel_id = fields.Many2one(related="notification_id.channel_id")
    company_id = fields.Many2one(related="notification_id.company_id", store=True)
    number = fields.Integer("Attempt", required=True)
    outcome = fields.Selection([("ok", "Delivered"), ("retryable", "Failed, will retry"),
                                ("permanent", "Refused")], required=True)
    host = fields.Char("Receiver")
    http_status = fields.Integer("HTTP status")
    error = fields.Char()
    error_code_id = fields.Many2one("do.error.code", string="Code", ondelete="restrict",
                                    index="btree_not_null")
    error_description = fields.Char(related="error_code_id.name", string="What happened")
    mitigation = fields.Text(related="error_code_id.mitigation")
    answer = fields.Text()
    elapsed_ms = fields.Integer("Time (ms)")
    retry_at = fields.Datetime("Next attempt")
    create_date = fields.Datetime("At", readonly=True)

    @api.depends("notification_id", "number")
    def _compute_display_name(self):
        for attempt in self:
            attempt.display_name = self.env._(
                "%(notification)s, attempt %(number)s",
                notification=attempt.notification_id.display_name, number=attempt.number)
