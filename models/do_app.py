import secrets

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..engine.deployment import spec_version
from ..engine.errors import DeployError
from ..engine.metrics import SOP_STEP_BUDGETS
from .do_app_endpoint_check import DEFAULT_ENDPOINT_CHECKS

SOP_DEPLOY_TIMEOUT = 600
USER_GROUP = "do_deploy.group_do_deploy_user"
MANAGER_GROUP = "do_deploy.group_do_deploy_manager"
# Groups a trigger user must not have: it acts for whoever holds the webhook secret.
ADMIN_GROUPS = ("base.group_system", "base.group_erp_manager")


class DoApp(models.Model):
    """A DigitalOcean App Platform app that tasks deploy to.

    Holds what the procedure needs per app: which components get the new image
    tag, where to check health, the endpoint checks, the time budget of each step
    (overriding the SOP's table) and where the results go in Odoo.
    """

    _name = "do.app"
    _description = "DigitalOcean App"
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True)
    account_id = fields.Many2one(
        "do.account", required=True, ondelete="restrict", check_company=True, index=True
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    do_app_id = fields.Char(string="DigitalOcean App ID", required=True, index=True)
    environment = fields.Selection(
        [("staging", "Staging"), ("production", "Production")], required=True, default="staging"
    )
    component_names = fields.Char(
        string="Components",
        help="Comma-separated names of the components that get the new image tag; "
        "empty means every image component.",
    )
    registry_repository = fields.Char(
        help="Registry repository of the image; when set, step 1 checks that the tag exists."
    )
    ingress_url = fields.Char(
        string="Ingress URL", help="Base URL of the app; filled from DigitalOcean's live URL."
    )
    health_path = fields.Char(default="/api/v1/health", required=True)
    endpoint_check_ids = fields.One2many(
        "do.app.endpoint.check", "app_id", string="Endpoint Checks"
    )
    budget_step1 = fields.Integer(string="Update Spec (s)", default=SOP_STEP_BUDGETS[1])
    budget_step2 = fields.Integer(string="Apply Spec (s)", default=SOP_STEP_BUDGETS[2])
    budget_step3 = fields.Integer(string="Create Deployment (s)", default=SOP_STEP_BUDGETS[3])
    budget_step4 = fields.Integer(string="Build and Deploy (s)", default=SOP_STEP_BUDGETS[4])
    budget_step5 = fields.Integer(string="Health Check (s)", default=SOP_STEP_BUDGETS[5])
    budget_step6 = fields.Integer(string="Traffic Switch (s)", default=SOP_STEP_BUDGETS[6])
    budget_step7 = fields.Integer(string="Post-Validation (s)", default=SOP_STEP_BUDGETS[7])
    budget_step8 = fields.Integer(string="Update Task (s)", default=SOP_STEP_BUDGETS[8])
    deploy_timeout = fields.Integer(
        string="Deploy Timeout (s)",
        default=SOP_DEPLOY_TIMEOUT,
        help="Longest wait for DigitalOcean to reach ACTIVE before DEPLOY_TIMEOUT.",
    )
    deployed_stage_id = fields.Many2one(
        "project.task.type", help="Task stage set after a success."
    )
    incident_project_id = fields.Many2one(
        "project.project", help="Receives rollback incidents."
    )
    webhook_secret = fields.Char(groups="do_deploy.group_do_deploy_manager", copy=False)
    trigger_user_id = fields.Many2one(
        "res.users", copy=False, ondelete="restrict",
        domain="[('share', '=', False), ('company_ids', 'in', company_id)]",
        help="The user requests signed with the webhook secret run as: a Deployment User "
        "of the app's company (a Deployment Manager for a production app) and no "
        "administrator. Without one, signed requests are refused.",
    )
    live_version = fields.Char(readonly=True, copy=False)
    deployment_ids = fields.One2many("do.deployment", "app_id", string="Deployments")
    deployment_count = fields.Integer(compute="_compute_deployment_stats")
    last_deployment_id = fields.Many2one("do.deployment", compute="_compute_deployment_stats")
    in_flight_deployment_id = fields.Many2one(
        "do.deployment", string="Running now", compute="_compute_in_flight_deployment",
        help="The deployment or rollback that is changing the app now.")
    queued_count = fields.Integer(compute="_compute_in_flight_deployment",
                                  string="Queued deployments")
    color = fields.Integer()
    active = fields.Boolean(default=True)

    _do_app_id_uniq = models.Constraint(
        "UNIQUE(account_id, do_app_id)", "This DigitalOcean app is already configured."
    )

    @api.depends("deployment_ids")
    def _compute_deployment_stats(self):
        Deployment = self.env["do.deployment"]
        stats = {
            app.id: (count, last_id)
            for app, count, last_id in Deployment._read_group(
                [("app_id", "in", self.ids)], ["app_id"], ["__count", "id:max"]
            )
        }
        for app in self:
            count, last_id = stats.get(app.id, (0, False))
            app.deployment_count = count
            app.last_deployment_id = Deployment.browse(last_id)

    @api.constrains("trigger_user_id", "environment", "company_id", "approval_required")
    def _check_trigger_user(self):
        for app in self.filtered("trigger_user_id"):
            problem = app._trigger_user_problem()
            if problem:
                raise ValidationError(problem)

    def _trigger_user_problem(self):
        """Why signed requests cannot run as this app's trigger user (one sentence with
        what to do), or None when they can.

        Checked when the user is set and again on every signed request, since the
        user's groups, companies or status may have changed since.
        """
        self.ensure_one()
        user = self.sudo().trigger_user_id
        fix = self.env._("A Deployment Manager sets one on the app's Odoo tab (Create "
                         "Trigger User makes a dedicated one).")
        if not user:
            return self.env._(
                "The app %(app)s has no trigger user, the user signed requests run as. %(fix)s",
                app=self.name, fix=fix)
        needed = MANAGER_GROUP if self._requires_manager_to_deploy() else USER_GROUP
        if not user.active or user.share:
            reason = self.env._("is archived or not an internal user")
        elif self.company_id not in user.company_ids:
            reason = self.env._("is not a user of the company %(company)s",
                                company=self.company_id.name)
        elif not user.has_group(needed):
            reason = (self.env._("is not a Deployment Manager, which production needs")
                      if needed == MANAGER_GROUP else
                      self.env._("is not a Deployment User"))
        elif any(user.has_group(group) for group in ADMIN_GROUPS):
            reason = self.env._("is an administrator, which a trigger user must not be")
        else:
            return None
        return self.env._("%(user)s, the trigger user of the app %(app)s, %(reason)s. %(fix)s",
                          user=user.name, app=self.name, reason=reason, fix=fix)

    def action_create_trigger_user(self):
        """Make a dedicated trigger user for this app and set it.

        Deployment User of the app's company only (Deployment Manager for a
        production app, which the pipeline requires to deploy there), internal,
        with no password and no API key: nobody logs in as it, and what it can do
        is bounded by those groups and that company.
        """
        self.ensure_one()
        if not self.env.su and not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(self.env._("Only a Deployment Manager can create a trigger user."))
        group = self.env.ref(MANAGER_GROUP if self.environment == "production" else USER_GROUP)
        user = self.env["res.users"].sudo().with_context(no_reset_password=True).create({
            "name": self.env._("Deployment trigger: %(app)s", app=self.name),
            "login": f"do_deploy_trigger_{self.id}_{secrets.token_hex(4)}",
            "company_id": self.company_id.id,
            "company_ids": [Command.set(self.company_id.ids)],
            "group_ids": [Command.set((self.env.ref("base.group_user") | group).ids)],
        })
        self.trigger_user_id = user
        return True

    def _task_problem(self, task):
        """Why a deployment of this app cannot update ``task`` (a sentence), or None.

        Step 8 writes on the task as the pipeline; a task of another company
        than the app's is refused here, before the deployment exists.
        """
        self.ensure_one()
        company = task.sudo().company_id
        if not task or not company or company == self.company_id:
            return None
        return self.env._(
            "Task %(task)s is not a task of %(company)s, the company of the app %(app)s: "
            "give a task of that company in 'task_id', or leave it out.",
            task=task.id, company=self.company_id.name, app=self.name)

    def _get_step_budget(self, number):
        """Seconds allowed for SOP step ``number`` (1-8) on this app."""
        self.ensure_one()
        return self[f"budget_step{number}"] or SOP_STEP_BUDGETS[number]

    def _get_endpoint_checks(self):
        self.ensure_one()
        if self.endpoint_check_ids:
            return [check._to_check() for check in self.endpoint_check_ids]
        return [dict(check) for check in DEFAULT_ENDPOINT_CHECKS]

    def _check_image_available(self, image_tag):
        """Ask DigitalOcean before a deployment exists: does it know this app with this
        account's token, and does the registry hold the tag?

        A wrong token, an unknown app or a missing image is then refused with its SOP
        code and mitigation instead of leaving a deployment that fails at step 1.
        Step 1 checks again: the registry may change in between.
        """
        self.ensure_one()
        account = self.account_id
        try:
            client = account._get_backend()
            if self.registry_repository:
                self._check_tag_in_registry(client, image_tag)
            else:
                client.get_app(self.do_app_id)
        except DeployError as error:
            raise UserError(account._redact(
                f"{error.code}: {error.message} {error.entry.mitigation}")) from None

    def _check_tag_in_registry(self, client, image_tag):
        """Raise IMAGE_TAG_MISSING unless the app's registry repository holds ``image_tag``.

        The account's registry name is looked up through ``client`` once and remembered.
        """
        self.ensure_one()
        account = self.account_id
        registry = account.registry_name or client.registry_name()
        account._remember_registry_name(registry)
        if not client.tag_exists(self.registry_repository, image_tag, registry=registry):
            raise DeployError("IMAGE_TAG_MISSING", (
                f"The tag {image_tag} is not in the registry repository "
                f"{self.registry_repository}."))

    def action_view_deployments(self):
        self.ensure_one()
        return self.env["do.deployment"]._get_history_action("app_id", self)

    def _compute_in_flight_deployment(self):
        Deployment = self.env["do.deployment"]
        running = {
            app.id: last_id for app, last_id in Deployment._read_group(
                [("app_id", "in", self.ids), ("state", "in", ("running", "rolling_back"))],
                ["app_id"], ["id:max"])
        }
        queued = dict(Deployment._read_group(
            [("app_id", "in", self.ids), ("state", "=", "queued")], ["app_id"], ["__count"]))
        for app in self:
            # While a deployment is rolling back, its rollback is what runs.
            deployment = Deployment.browse(running.get(app.id))
            app.in_flight_deployment_id = deployment.rollback_id if (
                deployment.state == "rolling_back" and deployment.rollback_id) else deployment
            app.queued_count = queued.get(app, 0)

    def _sync_from_digitalocean(self):
        """Read each app from DigitalOcean: the version its active deployment serves, and
        its ingress URL when none is set. Returns ``{app: DeployError}`` for the apps that
        could not be read."""
        errors = {}
        for app in self:
            try:
                data = app.account_id._get_backend().get_app(app.do_app_id)
            except DeployError as error:
                errors[app] = error
                continue
            active = data.get("active_deployment") or {}
            vals = {}
            version = spec_version(active.get("spec") or data.get("spec"))
            if version and version != app.live_version:
                vals["live_version"] = version
            ingress = data.get("live_url") or data.get("default_ingress")
            if ingress and not app.ingress_url:
                vals["ingress_url"] = ingress
            if vals:
                app.sudo().write(vals)
        return errors

    def action_sync_from_digitalocean(self):
        """Refresh button: the live version (and ingress) as DigitalOcean reports them."""
        errors = self._sync_from_digitalocean()
        if errors:
            app, error = next(iter(errors.items()))
            raise UserError(app.account_id._redact(
                f"{error.code}: {app.name}: {error.message} {error.entry.mitigation}"))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": "; ".join(self.env._(
                    "%(app)s serves %(version)s", app=app.name,
                    version=app.live_version or self.env._("no known version"))
                    for app in self),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }


class DoAccount(models.Model):
    """Test Connection also reads the live version of the account's apps."""

    _inherit = "do.account"

    def action_test_connection(self):
        action = super().action_test_connection()
        apps = self.app_ids
        errors = apps._sync_from_digitalocean()
        if isinstance(action, dict) and action.get("tag") == "display_notification" and apps:
            params = action.setdefault("params", {})
            synced = apps.filtered(lambda app: app not in errors)
            notes = [self.env._("Live version read for %(apps)s.",
                                apps=", ".join(synced.mapped("name")))] if synced else []
            notes += [self._redact(f"{app.name}: {error.code}: {error.message} "
                                   f"{error.entry.mitigation}") for app, error in errors.items()]
            params["message"] = " ".join([params.get("message") or "", *notes]).strip()
            if errors:
                params["type"] = "warning"
            params["next"] = {"type": "ir.actions.client", "tag": "soft_reload"}
        return action
