from odoo import fields, models


class DoRollbackWizard(models.TransientModel):
    """Ask why before rolling a finished deployment back: the reason goes to the rollback,
    its incident and the chatter."""

    _name = "do.rollback.wizard"
    _description = "Roll back a deployment"

    deployment_id = fields.Many2one("do.deployment", required=True, readonly=True)
    app_id = fields.Many2one(related="deployment_id.app_id")
    environment = fields.Selection(related="deployment_id.environment")
    image_tag = fields.Char(related="deployment_id.image_tag", string="Tag rolled back")
    previous_version = fields.Char(related="deployment_id.previous_version", string="Back to")
    task_id = fields.Many2one(related="deployment_id.task_id")
    reason = fields.Text(required=True)

    def action_confirm(self):
        self.ensure_one()
        return self.deployment_id.action_rollback(reason=self.reason)
