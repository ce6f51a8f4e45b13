import re

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

# A task "names" a tag when its title says ``tag: <tag>`` or carries a version such as v1.4.2.
_TASK_TAG_RES = (
    re.compile(r"\btag\s*[:=]\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)", re.IGNORECASE),
    re.compile(r"\b(v\d+(?:\.\d+){1,3}(?:[-_][A-Za-z0-9_.-]+)?)\b"),
)


class DoDeployWizard(models.TransientModel):
    """Deploy a task: choose the app and the tag, then start a deployment and open it."""

    _name = "do.deploy.wizard"
    _description = "Deploy a task to DigitalOcean"

    task_id = fields.Many2one("project.task", readonly=True)
    app_id = fields.Many2one("do.app", default=lambda self: self._default_app())
    environment = fields.Selection(related="app_id.environment", string="Environment")
    live_version = fields.Char(related="app_id.live_version", string="Live version")
    image_tag = fields.Char(
        compute="_compute_image_tag", store=True, readonly=False,
        help="The Docker image tag to deploy. It defaults to the tag the task names "
             "(\"tag: ...\" or a version like v1.4.2 in its title), else to the tag last "
             "deployed for the app.")
    components = fields.Char(
        compute="_compute_components", store=True, readonly=False,
        help="Comma-separated names of the image components that get the new tag; "
             "empty means every image component of the app.")
    force_rebuild = fields.Boolean(help="Ask DigitalOcean to rebuild even when nothing changed.")
    note = fields.Text()

    @api.model
    def _default_app(self):
        """The app this task was last deployed to, else the only app there is."""
        task = self.env["project.task"].browse(self.env.context.get("default_task_id"))
        if task and task.last_deployment_id:
            return task.last_deployment_id.app_id
        apps = self.env["do.app"].search([], limit=2)
        return apps if len(apps) == 1 else False

    def _task_tag(self):
        for pattern in _TASK_TAG_RES:
            if match := pattern.search(self.task_id.name or ""):
                return match.group(1)
        return False

    @api.depends("app_id", "task_id")
    def _compute_image_tag(self):
        for wizard in self:
            tag = wizard._task_tag()
            if not tag and wizard.app_id:
                last = self.env["do.deployment"].search(
                    [("app_id", "=", wizard.app_id.id), ("kind", "=", "deploy"),
                     ("state", "=", "done")],
                    order="end_date desc, id desc", limit=1)
                tag = last.image_tag
            wizard.image_tag = tag or False

    @api.depends("app_id")
    def _compute_components(self):
        for wizard in self:
            wizard.components = wizard.app_id.component_names or False

    def _check_deployable(self):
        """Refuse, in one plain sentence, what the deployment would refuse later anyway."""
        self.ensure_one()
        if not self.app_id:
            raise UserError(self.env._("Choose the app to deploy to."))
        problem = self.env["do.deployment"]._image_tag_problem(
            (self.image_tag or "").strip(), "tag")
        if problem:
            raise UserError(self.env._(
                "DigitalOcean would refuse the image tag. %(reason)s",
                reason=problem["message"]))
        if self.app_id.environment == "production" and not self.env.user.has_group(
                "do_deploy.group_do_deploy_manager"):
            raise AccessError(self.env._(
                "Only a Deployment Manager can deploy to the production app %(app)s.",
                app=self.app_id.display_name))
        self.app_id._check_image_available(self.image_tag.strip())

    def action_confirm(self):
        self._check_deployable()
        deployment = self.env["do.deployment"].create({
            "task_id": self.task_id.id,
            "app_id": self.app_id.id,
            "image_tag": self.image_tag.strip(),
            "components": self.components or False,
            "force_rebuild": self.force_rebuild,
            "note": self.note,
            "requested_by_id": self.env.uid,
        })
        deployment.action_start()
        return {
            "type": "ir.actions.act_window",
            "res_model": "do.deployment",
            "res_id": deployment.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
        }
