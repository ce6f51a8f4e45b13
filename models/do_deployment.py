from markupsafe import escape

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..engine import appspec
from ..engine.errors import DeployError
from .do_deployment_step import DEPLOY_STEPS, ROLLBACK_STEPS

# The environment variable that carries the deployed version: step 1 sets it on the
# retagged components, and a deployed Odoo's /api/v1/health reports it.
VERSION_ENV = appspec.VERSION_ENV
IN_FLIGHT_STATES = ("running", "rolling_back")
FINAL_STATES = ("done", "failed", "rolled_back", "canceled")
KANBAN_STATE_ORDER = (
    "waiting", "queued", "running", "rolling_back", "failed", "rolled_back", "done", "canceled",
    "draft")
# Each deploy step's duration, copied onto its deployment (see duration_update_spec).
STEP_DURATION_FIELDS = {code: f"duration_{code}" for code, _name, _number in DEPLOY_STEPS}
# What a user gives when creating a deployment (``name`` only as "/", ``kind`` only as
# "deploy", ``requested_by_id`` only as themselves unless a Deployment Manager). Every
# other field is the pipeline's, written through sudo.
USER_CREATE_FIELDS = frozenset({
    "task_id", "app_id", "image_tag", "components", "force_rebuild", "note",
    "idempotency_key", "retry_of_id", "requested_by_id", "name", "kind", "commit_sha",
})
# What a user may change on an existing deployment, by its state: what the form lets
# them edit. A draft is still theirs; later only the note is.
USER_WRITE_FIELDS = {
    "draft": frozenset({"task_id", "app_id", "image_tag", "components", "force_rebuild",
                        "note", "commit_sha"}),
    # Waiting on its gates it has not started: a change re-evaluates them (and voids the
    # approvals given for what it was before).
    "waiting": frozenset({"task_id", "image_tag", "components", "force_rebuild", "note",
                          "commit_sha"}),
}
USER_WRITE_ANY_STATE = frozenset({"note"})


class DoDeployment(models.Model):
    """One deployment of an image tag to a DigitalOcean app (or one rollback).

    A cron job walks the steps of SOP-DEPLOY-001 one short action at a time
    (``_cron_advance``), so no transaction or HTTP worker waits for DigitalOcean;
    everything needed to resume after a crash lives in the records.

    This file holds the record: fields, guards and the actions behind buttons
    and the API. The rest of the model, by concern:

    * ``do_deployment_runner.py``: the cron runner (locks, leases, re-arm,
      promotion of queued deployments) and the step driver;
    * ``do_deployment_steps.py``: steps 1-8, ``_step_<code>`` each;
    * ``do_deployment_rollback.py``: rollback steps (``_step_rb_<code>``),
      the end of a rollback and incidents.
    """

    _name = "do.deployment"
    _description = "Deployment"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(required=True, copy=False, readonly=True, default="/", index="trigram")
    task_id = fields.Many2one(
        "project.task", ondelete="set null", index=True, tracking=True, check_company=True
    )
    project_id = fields.Many2one(related="task_id.project_id", store=True)
    app_id = fields.Many2one(
        "do.app", required=True, ondelete="restrict", index=True,
        check_company=True, tracking=True,
    )
    company_id = fields.Many2one(related="app_id.company_id", store=True, index=True)
    environment = fields.Selection(related="app_id.environment", store=True)
    image_tag = fields.Char(tracking=True)
    components = fields.Char(help="Comma-separated components that get the tag; empty: all.")
    force_rebuild = fields.Boolean(
        help="Refresh every component's image, also when its tag did not change."
    )
    note = fields.Text()
    kind = fields.Selection(
        [("deploy", "Deploy"), ("rollback", "Rollback")], required=True, default="deploy"
    )
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("queued", "Queued"),
            ("running", "Running"),
            ("rolling_back", "Rolling Back"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("rolled_back", "Rolled Back"),
            ("canceled", "Canceled"),
        ],
        required=True,
        default="draft",
        copy=False,
        index=True,
        tracking=True,
        group_expand="_group_expand_states",
    )
    progress = fields.Float(copy=False, aggregator="avg")
    requested_by_id = fields.Many2one(
        "res.users", default=lambda self: self.env.user, copy=False
    )
    queued_at = fields.Datetime(copy=False)
    start_date = fields.Datetime(copy=False)
    end_date = fields.Datetime(copy=False)
    duration = fields.Float(copy=False, help="Seconds from start to end.", aggregator="avg")
    # Seconds each deploy step took (done, warning or failed), copied from the steps so the
    # pivot of durations by app, environment and step reads one row per deployment instead
    # of joining eight step rows (issue 4: under 300 ms on 100,000 deployments).
    duration_update_spec = fields.Float(
        "Update app spec", copy=False, aggregator="avg", help="Seconds of step 1.")
    duration_apply_spec = fields.Float(
        "Apply app spec", copy=False, aggregator="avg", help="Seconds of step 2.")
    duration_create_deployment = fields.Float(
        "Create deployment", copy=False, aggregator="avg", help="Seconds of step 3.")
    duration_monitor = fields.Float(
        "Monitor deployment", copy=False, aggregator="avg", help="Seconds of step 4.")
    duration_health_check = fields.Float(
        "Health check", copy=False, aggregator="avg", help="Seconds of step 5.")
    duration_traffic_switch = fields.Float(
        "Traffic switch", copy=False, aggregator="avg", help="Seconds of step 6.")
    duration_validate = fields.Float(
        "Post-deployment validation", copy=False, aggregator="avg", help="Seconds of step 7.")
    duration_update_task = fields.Float(
        "Update task", copy=False, aggregator="avg", help="Seconds of step 8.")
    do_deployment_id = fields.Char(string="DigitalOcean Deployment", copy=False, index=True)
    previous_do_deployment_id = fields.Char(
        string="Previous DigitalOcean Deployment", copy=False,
        help="The deployment that served traffic before; a rollback returns to it.",
    )
    previous_version = fields.Char(copy=False, help="Version that served traffic before.")
    rollback_of_id = fields.Many2one(
        "do.deployment", copy=False, index="btree_not_null",
        ondelete="set null",
    )
    rollback_id = fields.Many2one(
        "do.deployment", copy=False, ondelete="set null"
    )
    rollback_reason = fields.Char(copy=False)
    is_live = fields.Boolean(
        compute="_compute_is_live",
        help="This deployment's version is what the app serves (it is the app's latest "
             "change) and nothing is rolling it back yet: the only deployment a manual "
             "rollback may undo.")
    rollback_of_tag = fields.Char(related="rollback_of_id.image_tag", string="Tag rolled back")
    rolled_back_because = fields.Char(
        related="rollback_id.rollback_reason", string="Rolled back because")
    retry_of_id = fields.Many2one(
        "do.deployment", string="Retry of", copy=False, index="btree_not_null",
        ondelete="set null",
        help="The failed, canceled or rolled back deployment this one retries.")
    error_code_id = fields.Many2one("do.error.code", copy=False)
    error_message = fields.Text(copy=False)
    mitigation = fields.Text(related="error_code_id.mitigation")
    incident_task_id = fields.Many2one("project.task", string="Incident", copy=False)
    rollback_criteria = fields.Json(
        copy=False, help="The SOP's rollback success criteria, as checked by this rollback.")
    step_ids = fields.One2many("do.deployment.step", "deployment_id", string="Steps", copy=False)
    step_count = fields.Integer(compute="_compute_step_count")
    current_step_id = fields.Many2one("do.deployment.step", copy=False)
    next_poll_at = fields.Datetime(copy=False)
    target_spec = fields.Json(copy=False, groups="do_deploy.group_do_deploy_manager")
    idempotency_key = fields.Char(
        copy=False, help="Set by callers (CI) to make a retried request create one deployment."
    )

    _one_running_per_app = models.UniqueIndex(
        "(app_id) WHERE state = 'running'",
        "Another deployment of this app is already running.",
    )
    _idempotency_key_uniq = models.UniqueIndex(
        "(company_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
        "A deployment with this idempotency key already exists.",
    )
    _due_idx = models.Index("(next_poll_at) WHERE state = 'running'")

    @api.depends("kind", "state", "do_deployment_id", "rollback_id.state")
    def _compute_is_live(self):
        for deployment in self:
            deployment.is_live = not deployment._not_live_reason()

    def _not_live_reason(self):
        """Why this is not the app's live deployment, in a sentence; None when it is.

        Odoo's records say which deployment is live: a finished deploy that changed
        the app (it has a DigitalOcean deployment), with no later deployment of the
        app that changed it since, a failed rollback of it aside (reverted, it serves
        this version again). :meth:`action_rollback` asks DigitalOcean as well.
        """
        self.ensure_one()
        if self.kind != "deploy" or self.state not in ("done", "failed"):
            return self.env._("it is %(state)s.", state=self.state)
        if not self.do_deployment_id:
            return self.env._("it never changed the app.")
        if self.rollback_id.state in ("queued", "running"):
            return self.env._("%(rollback)s is already rolling it back.",
                              rollback=self.rollback_id.name)
        if not isinstance(self.id, int):
            return self.env._("it is not saved.")
        newer = self.sudo().search([
            ("app_id", "=", self.app_id.id), ("id", ">", self.id),
            ("do_deployment_id", "!=", False),
            "!", "&", ("rollback_of_id", "=", self.id), ("state", "=", "failed"),
        ], order="id desc", limit=1)
        if newer:
            return self.env._("%(newer)s changed the app since.", newer=newer.name)
        return None

    def _serving_do_deployment_ids(self):
        """The DigitalOcean deployments that serve this deployment's version: its own, and
        the deployments that reverted failed rollbacks of it."""
        self.ensure_one()
        failed_rollbacks = self.sudo().search([
            ("rollback_of_id", "=", self.id), ("kind", "=", "rollback"),
            ("state", "=", "failed")])
        reverts = [(step.data or {}).get("revert_deployment_id")
                   for step in failed_rollbacks.step_ids if step.code == "rb_revert"]
        return {self.do_deployment_id, *filter(None, reverts)}

    @api.model
    def _group_expand_states(self, states, domain):
        """Kanban columns by state: only states that have deployments, in flight first,
        then what went wrong, then the rest (a phone shows the first column)."""
        return [state for state in KANBAN_STATE_ORDER if state in states]

    @api.depends("step_ids")
    def _compute_step_count(self):
        counts = dict(self.env["do.deployment.step"]._read_group(
            [("deployment_id", "in", self.ids)], ["deployment_id"], ["__count"]))
        for deployment in self:
            deployment.step_count = counts.get(deployment, 0)

    # ------------------------------------------------------------------
    # Creation, validation and rights
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not self.env.su:
                self._check_create_rights(vals)
            app = self._check_deploy_values(vals)
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("do.deployment") or "/"
            if not vals.get("components") and app.component_names:
                vals["components"] = app.component_names
        deployments = super().create(vals_list)
        deployments._create_steps()
        return deployments

    def write(self, vals):
        if not self.env.su:
            self._check_write_rights(vals)
        if not self.env.su and {"app_id", "image_tag", "task_id"} & set(vals):
            for deployment in self:
                self._check_deploy_values({
                    "app_id": vals.get("app_id", deployment.app_id.id),
                    "image_tag": vals.get("image_tag", deployment.image_tag),
                    "kind": deployment.kind,
                })
        result = super().write(vals)
        if vals.get("state") == "rolled_back":
            # The pipeline marks a deployment rolled back once its rollback is done.
            self._after_rolled_back()
        return result

    @api.model
    def _mixin_fields(self):
        """Fields of the chatter and activity mixins, which mail writes for its own needs."""
        return (set(self.env["mail.thread"]._fields) | set(
            self.env["mail.activity.mixin"]._fields)) - set(models.MAGIC_COLUMNS) - {
            "display_name"}

    @api.model
    def _check_create_rights(self, vals):
        """A user creates a deployment from what the deploy wizard and the API ask for;
        the pipeline's fields, rollbacks and someone else's name are refused."""
        is_manager = self.env.user.has_group("do_deploy.group_do_deploy_manager")
        refused = set(vals) - USER_CREATE_FIELDS - self._mixin_fields()
        if vals.get("name", "/") != "/":
            refused.add("name")
        if vals.get("kind", "deploy") != "deploy":
            raise AccessError(self.env._(
                "DEPLOYMENT_FIELD_LOCKED: a rollback is created by the pipeline, not by hand. "
                "Use the Rollback button of the deployment that is live."))
        if vals.get("requested_by_id") not in (None, False, self.env.uid) and not is_manager:
            refused.add("requested_by_id")
        if refused:
            raise AccessError(self.env._(
                "DEPLOYMENT_FIELD_LOCKED: %(fields)s of a new deployment cannot be chosen: "
                "the pipeline sets them, and the requester is whoever creates it. Create the "
                "deployment with the Deploy button or the API, giving only the task, app, "
                "tag, components, force rebuild, note and idempotency key.",
                fields=", ".join(sorted(refused))))

    def _check_write_rights(self, vals):
        """The allow-list of what a user may change: per state, the fields the form lets
        them edit; production deployments only for Deployment Managers. The pipeline
        writes everything else through sudo."""
        fields_written = set(vals) - self._mixin_fields()
        if not fields_written:
            return
        # Fields no state lets a user edit are refused whatever the records (none included).
        user_fields = USER_WRITE_ANY_STATE.union(*USER_WRITE_FIELDS.values())
        if never := fields_written - user_fields:
            raise AccessError(self.env._(
                "DEPLOYMENT_FIELD_LOCKED: %(fields)s of a deployment cannot be changed by hand: "
                "the pipeline sets them. Use the deployment's buttons (Start, Cancel, Retry, "
                "Rollback), or, for a change of what is deployed, a new deployment.",
                fields=", ".join(sorted(never))))
        is_manager = self.env.user.has_group("do_deploy.group_do_deploy_manager")
        for deployment in self:
            if deployment.environment == "production" and not is_manager:
                raise AccessError(self.env._(
                    "DEPLOYMENT_FIELD_LOCKED: %(name)s deploys to production, and only a "
                    "Deployment Manager can change a production deployment. Ask one to make "
                    "the change.", name=deployment.name))
            allowed = USER_WRITE_FIELDS.get(deployment.state, frozenset()) | USER_WRITE_ANY_STATE
            if refused := fields_written - allowed:
                raise AccessError(self.env._(
                    "DEPLOYMENT_FIELD_LOCKED: %(fields)s of %(name)s cannot be changed while it "
                    "is %(state)s: the pipeline sets them. Use the deployment's buttons "
                    "(Start, Cancel, Retry, Rollback), or, for a change of what is deployed, "
                    "a new deployment.",
                    fields=", ".join(sorted(refused)), name=deployment.name,
                    state=deployment.state))

    def _after_rolled_back(self):
        """A deployment just marked rolled back: give it the duration from its start to its
        end (one rolled back automatically has none of its own, which skewed the averages)
        and take its version off its task."""
        for deployment in self.filtered(lambda d: d.kind == "deploy"):
            if not deployment.duration and deployment.start_date and deployment.end_date:
                deployment.sudo().duration = (
                    deployment.end_date - deployment.start_date).total_seconds()
            if deployment.task_id:
                deployment.task_id.sudo()._restore_after_rollback(deployment)

    @api.model
    def _check_deploy_values(self, vals):
        """Refuse bad input before anything is written; return the app."""
        app = self.env["do.app"].browse(vals.get("app_id")).exists() if vals.get(
            "app_id") else self.env["do.app"]
        if not app:
            raise ValidationError(self.env._(
                "APP_NOT_FOUND: the app %(app)s does not exist.", app=vals.get("app_id") or "''"))
        if vals.get("kind", "deploy") == "deploy" and (
                problem := self._image_tag_problem(vals.get("image_tag"))):
            raise ValidationError(self.env._(
                "%(code)s: %(message)s", code=problem["code"], message=problem["message"]))
        if vals.get("task_id") and not self.env["project.task"].browse(
                vals["task_id"]).exists():
            raise ValidationError(self.env._(
                "TASK_NOT_FOUND: the task %(task)s does not exist.", task=vals["task_id"]))
        self._check_environment_right(app)
        return app

    @api.model
    def _image_tag_problem(self, tag, path="image_tag"):
        """Why ``tag`` cannot be deployed, as ``{"code", "message"}``; None if it can.

        Controllers and wizards ask this before anything is created, so they
        refuse a bad tag with the code and sentence a deployment would give.
        """
        try:
            appspec.validate_tag(tag, path)
        except DeployError as error:
            return {"code": error.code, "message": error.message}
        return None

    @api.model
    def _check_environment_right(self, app):
        """Staging is open to Deployment Users, production to Deployment Managers."""
        if self.env.su:
            return
        if not self.env.user.has_group("do_deploy.group_do_deploy_user"):
            raise AccessError(self.env._("Only Deployment Users can deploy."))
        if app.environment == "production" and not self.env.user.has_group(
                "do_deploy.group_do_deploy_manager"):
            raise AccessError(self.env._(
                "Only a Deployment Manager can deploy to production (app %(app)s).",
                app=app.name))

    def _check_manager(self, message):
        if not self.env.su and not self.env.user.has_group("do_deploy.group_do_deploy_manager"):
            raise AccessError(message)

    def _create_steps(self):
        """All steps of the run up front, with their budgets."""
        step_vals = []
        for deployment in self:
            plan = ROLLBACK_STEPS if deployment.kind == "rollback" else DEPLOY_STEPS
            step_vals += [
                {
                    "deployment_id": deployment.id,
                    "sequence": index,
                    "code": code,
                    "name": name,
                    "budget": deployment.app_id._get_step_budget(number),
                }
                for index, (code, name, number) in enumerate(plan, start=1)
            ]
        self.env["do.deployment.step"].sudo().create(step_vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_only_finished(self):
        """A deployment in flight owns its app's slot and DigitalOcean state."""
        if any(deployment.state in ("queued", *IN_FLIGHT_STATES) for deployment in self):
            raise UserError(self.env._(
                "A queued or running deployment cannot be deleted; cancel it first."))

    # ------------------------------------------------------------------
    # Actions (buttons, external API)
    # ------------------------------------------------------------------

    def action_start(self):
        """Queue draft deployments; the runner starts each one when its app is free."""
        for deployment in self:
            if deployment.state != "draft":
                raise UserError(self.env._(
                    "%(name)s is %(state)s; only a draft deployment can be started.",
                    name=deployment.name, state=deployment.state))
            self._check_environment_right(deployment.app_id)
        self._queue()
        return True

    def _queue(self):
        """Hand deployments to the runner's queue (from draft, or once their gates
        passed: do_deployment_gates.py)."""
        now = fields.Datetime.now()
        self.sudo().write({"state": "queued", "queued_at": now})
        for deployment in self:
            # The task is fixed from now on: step 8 tells a task deleted since (a
            # failure) from no task at all (nothing to update).
            update_task = deployment.sudo()._step_by_code("update_task")
            if update_task and deployment.task_id:
                update_task._update_data(task_id=deployment.task_id.id)
            # Only the names are read (not every column of every deployment ahead), and the
            # note is logged without notification machinery, as tracking messages are.
            busy = self.sudo().search_fetch([
                ("app_id", "=", deployment.app_id.id), ("id", "<", deployment.id),
                ("state", "in", ("queued", *IN_FLIGHT_STATES))], ["name"])
            if busy:
                deployment._message_log(body=escape(self.env._(
                    "Queued behind %(running)s, which is deploying to %(app)s.",
                    running=", ".join(busy.mapped("name")), app=deployment.app_id.name)))
        self._wake_runner()

    def action_cancel(self):
        """Cancel before the app changed; afterwards only a rollback undoes a deployment."""
        for deployment in self:
            if deployment.environment == "production":
                deployment._check_manager(self.env._(
                    "Only a Deployment Manager can cancel a production deployment."))
            if deployment.kind == "rollback":
                deployment._check_manager(self.env._(
                    "ROLLBACK_CANCEL_DENIED: %(name)s is a rollback, and only a Deployment "
                    "Manager can start or call off a rollback. Ask one to cancel it.",
                    name=deployment.name))
            if deployment.state in ("draft", "waiting", "queued"):
                continue
            if deployment.kind == "rollback":
                raise UserError(self.env._(
                    "%(name)s is rolling an app back; it must finish.", name=deployment.name))
            if deployment.state != "running" or deployment._app_changed() or any(
                    step.data and step.data.get("intent_at") for step in deployment.step_ids):
                raise UserError(self.env._(
                    "%(name)s has already changed the app; roll it back instead of canceling.",
                    name=deployment.name))
        for deployment in self.sudo():
            deployment.step_ids.filtered(lambda s: s.state in ("pending", "running")).write(
                {"state": "skipped"})
            deployment._finish("canceled")
            deployment.message_post(body=self.env._("Canceled by %(user)s.",
                                                    user=self.env.user.name))
        self._wake_runner()
        return True

    def action_retry(self):
        """A new deployment of the same tag to the same app, started at once."""
        self.ensure_one()
        if self.kind != "deploy" or self.state not in ("failed", "canceled", "rolled_back"):
            raise UserError(self.env._("Only a failed, canceled or rolled back deployment "
                                       "can be retried."))
        retry = self.create({
            "task_id": self.task_id.id,
            "app_id": self.app_id.id,
            "image_tag": self.image_tag,
            "components": self.components,
            "force_rebuild": self.force_rebuild,
            "note": self.note,
            "retry_of_id": self.id,
        })
        retry.action_start()
        return retry._get_form_action()

    def action_rollback(self, reason=None):
        """Roll the app's live deployment back to the deployment that was active before it.

        Only the deployment that is live: an older one would return the app past
        the newer ones, and one that never changed the app has nothing to undo.
        Odoo's records decide first, then DigitalOcean, which may serve something
        else (a deployment made in its console).
        """
        self.ensure_one()
        self._check_manager(self.env._("Only a Deployment Manager can roll back."))
        if why := self._not_live_reason():
            raise UserError(self.env._(
                "Only the deployment that is live can be rolled back, and %(name)s is not: "
                "%(why)s", name=self.name, why=why))
        if not self.previous_do_deployment_id:
            raise UserError(self.env._(
                "%(name)s has no previous deployment to roll back to.", name=self.name))
        self._check_live_on_digitalocean()
        rollback = self.sudo()._create_rollback(
            reason or self.env._("Manual rollback by %(user)s", user=self.env.user.name),
            state="queued", requested_by=self.env.user)
        rollback.message_post(body=self.env._("Queued by %(user)s.", user=self.env.user.name))
        self._wake_runner()
        return rollback.with_env(self.env)._get_form_action()

    def _check_live_on_digitalocean(self):
        """Refuse unless DigitalOcean's active deployment serves this deployment's version."""
        account = self.app_id.account_id
        try:
            app = self.sudo()._client().get_app(self.app_id.do_app_id)
        except DeployError as error:
            raise UserError(account._redact(
                f"{error.code}: {error.message} {error.entry.mitigation}")) from None
        active = (app.get("active_deployment") or {}).get("id")
        if active not in self._serving_do_deployment_ids():
            raise UserError(self.env._(
                "DigitalOcean serves deployment %(active)s on %(app)s, not %(name)s's "
                "(%(ours)s): only the deployment that is live can be rolled back. Check the "
                "app's deployments in the DigitalOcean console.",
                active=active or "none", app=self.app_id.name, name=self.name,
                ours=self.do_deployment_id))

    def action_view_task(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "project.task",
            "res_id": self.task_id.id,
            "view_mode": "form",
        }

    @api.model
    def _get_history_action(self, field, record):
        """The deployment history (every view and filter of the menu's action) of one
        app or task: ``field`` is ``app_id`` or ``task_id``."""
        action = self.env["ir.actions.act_window"]._for_xml_id("do_deploy.do_deployment_action")
        action["domain"] = [(field, "=", record.id)]
        action["context"] = {f"default_{field}": record.id}
        return action

    def _get_form_action(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "do.deployment",
            "res_id": self.id,
            "view_mode": "form",
            "target": "current",
        }
