from odoo import fields, models

from ..engine import gates


class DoDeploymentConfirmation(models.Model):
    """A confirmation item of the app on one deployment, ticked (or declined) by a named
    person; bound to the app, tag and spec it was given for, as approvals are."""

    _name = "do.deployment.confirmation"
    _description = "Deployment Confirmation"
    _order = "deployment_id, sequence, id"

    deployment_id = fields.Many2one("do.deployment", required=True, ondelete="cascade",
                                    index=True)
    company_id = fields.Many2one(related="deployment_id.company_id", store=True)
    sequence = fields.Integer()
    item = fields.Char(required=True)
    state = fields.Selection(
        [("pending", "To confirm"), ("confirmed", "Confirmed"), ("declined", "Declined")],
        required=True, default="pending")
    user_id = fields.Many2one("res.users", string="By")
    decided_at = fields.Datetime(string="At")
    comment = fields.Text()
    binding = fields.Json(help="The app, tag and spec hash it was given for.")

    def _to_engine(self):
        self.ensure_one()
        return gates.Confirmation(
            item=self.item, by=str(self.user_id.id), at=self.decided_at,
            confirmed=self.state == "confirmed", comment=self.comment or "",
            binding=gates.Binding.from_dict(self.binding) if self.binding else None,
            name=self.user_id.name)

    def action_decide(self):
        """Open the decision form for this item (confirm or decline, with a comment)."""
        self.ensure_one()
        return self.deployment_id._open_decision("confirm", confirmation=self)
