from odoo import fields, models


class DoRollbackWizard(models.TransientModel):
    """Ask why before rolling a finished deployment back: the reason goes to the chatter."""

    _name = "do.rollback.wizard"
    _description = "Roll back a deployment"

    deployment_id = fields.Many2one("do.deployment", required=True, readonly=True)
    app_id = fields.Many2one(related="deployment_id.app_id")
    image_tag = fields.Char(related="deployment_id.image_tag", string="Tag rolled back")
    reason = fields.Text(required=True)

    def action_confirm(self):
        self.ensure_one()
        result = self.deployment_id.action_rollback(reason=self.reason)
        if isinstance(result, dict):
            return result
        return {
            "type": "ir.actions.act_window",
            "res_model": "do.deployment",
            "res_id": (result or self.deployment_id).id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
        }
