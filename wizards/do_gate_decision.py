from odoo import api, fields, models

DECISION_KINDS = [
    ("approve", "Approve"),
    ("reject", "Reject"),
    ("confirm", "Confirm or decline"),
    ("override", "Emergency override"),
]


class DoGateDecision(models.TransientModel):
    """A decision on a waiting deployment, with its comment: approve or reject it, confirm
    or decline one of its confirmation items, or (a manager) override a freeze."""

    _name = "do.gate.decision"
    _description = "Deployment Gate Decision"

    deployment_id = fields.Many2one("do.deployment", required=True, readonly=True)
    kind = fields.Selection(DECISION_KINDS, required=True, readonly=True)
    confirmation_id = fields.Many2one("do.deployment.confirmation", readonly=True)
    item = fields.Char(related="confirmation_id.item")
    gate_summary = fields.Char(related="deployment_id.gate_summary")
    comment = fields.Text()
    comment_required = fields.Boolean(compute="_compute_comment_required")

    @api.depends("kind")
    def _compute_comment_required(self):
        for decision in self:
            decision.comment_required = decision.kind in ("reject", "override")

    def action_confirm(self):
        self.ensure_one()
        deployment = self.deployment_id
        if self.kind in ("approve", "reject"):
            deployment._record_approval(self.kind == "approve", self.comment)
        elif self.kind == "confirm":
            # One form, two buttons: Decline passes ``decline`` (and needs a comment).
            deployment._record_confirmation(self.confirmation_id,
                                            not self.env.context.get("decline"), self.comment)
        else:
            return deployment._override_freeze(self.comment)
        return {"type": "ir.actions.act_window_close"}
