import re

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import html2plaintext

# A task "names" a tag when its title or description says ``tag: <tag>`` or ``image tag
# <tag>``, or carries a version such as v1.4.2; the title is read first.
_TASK_TAG_RES = (
    re.compile(r"\btag\s*[:=]\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)", re.IGNORECASE),
    re.compile(r"\bimage\s+tag\s+([A-Za-z0-9_][A-Za-z0-9_.-]*)", re.IGNORECASE),
    re.compile(r"\b(v\d+(?:\.\d+){1,3}(?:[-_][A-Za-z0-9_.-]+)?)\b"),
)


class DoDeployWizard(models.TransientModel):
    """Deploy a task: choose the app and the tag, then start a deployment and open it.

    Also opened by Retry on a failed, canceled or rolled back deployment, with that
    deployment's app, tag and options filled in.
    """

    _name = "do.deploy.wizard"
    _description = "Deploy a task to DigitalOcean"

    task_id = fields.Many2one("project.task", readonly=True)
    retry_of_id = fields.Many2one("do.deployment", string="Retry of", readonly=True)
    allowed_app_ids = fields.Many2many("do.app", compute="_compute_allowed_app_ids")
    app_id = fields.Many2one(
        "do.app", default=lambda self: self._default_app(),
        domain="[('id', 'in', allowed_app_ids)]",
        help="Deployment Users deploy to staging apps; Deployment Managers to every app.")
    environment = fields.Selection(related="app_id.environment", string="Environment")
    live_version = fields.Char(related="app_id.live_version", string="Live version")
    image_tag = fields.Char(
        compute="_compute_image_tag", store=True, readonly=False,
        help="The Docker image tag to deploy. It defaults to the tag the task names "
             "(\"image tag v1.4.2\", \"tag: ...\" or a version like v1.4.2 in its title or "
             "description), else to the tag last deployed for the app.")
    tag_source = fields.Char(compute="_compute_image_tag", store=True)
    # The tag proposed from tag_source: the form says where the tag comes from only while
    # the user has not typed another one.
    proposed_tag = fields.Char(compute="_compute_image_tag", store=True)
    components = fields.Char(
        compute="_compute_components", store=True, readonly=False,
        help="Comma-separated names of the image components that get the new tag; "
             "empty means every image component of the app.")
    force_rebuild = fields.Boolean(help="Ask DigitalOcean to rebuild even when nothing changed.")
    note = fields.Text()
    problems = fields.Text(
        compute="_compute_problems",
        help="What would stop this deployment, found as you type.")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        retry_of = self.env["do.deployment"].browse(values.get("retry_of_id")).exists()
        if retry_of:
            values.setdefault("task_id", retry_of.task_id.id)
            values["app_id"] = retry_of.app_id.id
            values["force_rebuild"] = retry_of.force_rebuild
            values.setdefault("note", retry_of.note)
        return values

    @api.model
    def _default_app(self):
        """The app this task was last deployed to, else the only app the user may deploy
        to (a retry's app is set in default_get)."""
        task = self.env["project.task"].browse(self.env.context.get("default_task_id"))
        if task and task.last_deployment_id:
            return task.last_deployment_id.app_id
        apps = self.env["do.app"].search(self._allowed_app_domain(), limit=2)
        return apps if len(apps) == 1 else False

    @api.model
    def _allowed_app_domain(self):
        """Deployment Managers deploy to every app, Deployment Users to staging apps and
        request production deployments that wait for approval."""
        if self.env.user.has_group("do_deploy.group_do_deploy_manager"):
            return [("environment", "in", ["staging", "production"])]
        return ["|", ("environment", "=", "staging"), ("approval_required", "=", True)]

    @api.depends_context("uid")
    def _compute_allowed_app_ids(self):
        apps = self.env["do.app"].search(self._allowed_app_domain())
        for wizard in self:
            wizard.allowed_app_ids = apps

    def _task_tag(self):
        """The tag the task names in its title, else in its description."""
        task = self.task_id
        for text in (task.name or "", html2plaintext(task.description or "")):
            for pattern in _TASK_TAG_RES:
                if match := pattern.search(text):
                    return match.group(1).rstrip(".-")
        return False

    @api.depends("app_id", "task_id", "retry_of_id")
    def _compute_image_tag(self):
        for wizard in self:
            tag, source = False, False
            if wizard.retry_of_id and wizard.retry_of_id.app_id == wizard.app_id:
                tag = wizard.retry_of_id.image_tag
                source = self.env._("the deployment retried")
            if not tag and (tag := wizard._task_tag()):
                source = self.env._("the task")
            if not tag and wizard.app_id:
                last = self.env["do.deployment"].search(
                    [("app_id", "=", wizard.app_id.id), ("kind", "=", "deploy"),
                     ("state", "=", "done")],
                    order="end_date desc, id desc", limit=1)
                tag = last.image_tag
                source = last and self.env._("the app's last deployment")
            wizard.image_tag = wizard.proposed_tag = tag or False
            wizard.tag_source = source or False

    @api.depends("app_id", "retry_of_id")
    def _compute_components(self):
        for wizard in self:
            if wizard.retry_of_id and wizard.retry_of_id.app_id == wizard.app_id:
                wizard.components = wizard.retry_of_id.components or False
            else:
                wizard.components = wizard.app_id.component_names or False

    @api.depends("app_id", "image_tag")
    def _compute_problems(self):
        for wizard in self:
            # What is only missing is marked on its field (required) until Deploy is clicked.
            wizard.problems = "\n".join(
                message for kind, message in wizard._local_problems() if kind != "missing"
            ) or False

    def _local_problems(self):
        """What is wrong without asking DigitalOcean, as ``(kind, message)`` pairs; kind is
        ``right`` for what the user may not do, ``missing`` for what is not given yet,
        ``input`` for what to correct."""
        self.ensure_one()
        problems = []
        if not self.app_id:
            problems.append(("missing", self.env._("Choose the app to deploy to.")))
        tag = (self.image_tag or "").strip()
        if not tag:
            problems.append(("missing", self.env._(
                "IMAGE_TAG_MISSING: give the image tag to deploy, e.g. v1.2.0.")))
        elif self.env["do.deployment"]._image_tag_problem(tag):
            problems.append(("input", self.env._(
                "IMAGE_TAG_MISSING: DigitalOcean would refuse the image tag '%(tag)s': a "
                "Docker tag has at most 128 letters, digits, '_', '.' or '-' and does not "
                "start with '.' or '-'.", tag=tag)))
        if self.app_id._requires_manager_to_deploy() and not self.env.user.has_group(
                "do_deploy.group_do_deploy_manager"):
            problems.append(("right", self.env._(
                "Only a Deployment Manager can deploy to the production app %(app)s; "
                "choose a staging app or ask a Deployment Manager.",
                app=self.app_id.display_name)))
        return problems

    def _check_deployable(self):
        """Refuse, in one message listing every problem, what the deployment would refuse
        later anyway: input and rights first, then what DigitalOcean says of the token, the
        app and the tag."""
        self.ensure_one()
        problems = self._local_problems()
        if not any(kind in ("input", "missing") for kind, _message in problems):
            try:
                self.app_id._check_image_available(self.image_tag.strip())
            except UserError as error:
                problems.append(("input", str(error.args[0])))
        if not problems:
            return
        message = "\n".join(message for _kind, message in problems)
        if any(kind == "right" for kind, _message in problems):
            raise AccessError(message)
        raise UserError(message)

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
            "retry_of_id": self.retry_of_id.id,
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
