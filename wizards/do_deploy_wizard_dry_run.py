from odoo import api, fields, models
from odoo.exceptions import UserError


class DoDeployWizard(models.TransientModel):
    """Dry run before Deploy: the wizard shows what the deployment would change, whether
    DigitalOcean accepts it and the monthly cost before and after, and hands that dry
    run to the deployment it creates (approvers see it there)."""

    _inherit = "do.deploy.wizard"

    dry_run_data = fields.Json(
        compute="_compute_dry_run_data", store=True, readonly=True,
        help="The last dry run of this app, tag and components; a change of them clears it.")
    dry_run_report = fields.Html(compute="_compute_dry_run_report", sanitize=False)

    @api.depends("app_id", "image_tag", "components")
    def _compute_dry_run_data(self):
        for wizard in self:
            wizard.dry_run_data = False

    @api.depends("dry_run_data")
    def _compute_dry_run_report(self):
        Deployment = self.env["do.deployment"]
        for wizard in self:
            wizard.dry_run_report = Deployment._dry_run_html(wizard.dry_run_data)

    def action_dry_run(self):
        """Run the dry run and show it in the wizard, above Deploy."""
        self.ensure_one()
        problems = [(kind, message) for kind, message in self._local_problems()
                    if kind in ("missing", "input")]
        if problems:
            raise UserError("\n".join(message for _kind, message in problems))
        data = self.env["do.deployment"]._dry_run_of(
            self.app_id, self.image_tag, self.components)
        self.dry_run_data = data
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Deploy"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": self.env.context,
        }

    def action_confirm(self):
        data = self.dry_run_data
        action = super().action_confirm()
        deployment = self.env["do.deployment"].browse(action.get("res_id"))
        if data and deployment._matches_dry_run(data):
            deployment._store_dry_run(data)
        return action

