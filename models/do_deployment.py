import hashlib
import json
import logging
import statistics
import time
import traceback
from datetime import timedelta
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..engine import appspec, checks
from ..engine.deployment import (
    FAILED_PHASES,
    SOP_EXPECTED_SECONDS,
    deployment_seconds,
    expected_seconds,
    failure_error,
    poll_interval,
    spec_version,
    timeout_error,
)
from ..engine.errors import DeployError
from .do_deployment_step import (
    DEPLOY_STEPS,
    FINISHED_STEP_STATES,
    ROLLBACK_STEPS,
)

_logger = logging.getLogger(__name__)

IN_FLIGHT_STATES = ("running", "rolling_back")
FINAL_STATES = ("done", "failed", "rolled_back", "canceled")
# Each deploy step's duration, copied onto its deployment (see duration_update_spec).
STEP_DURATION_FIELDS = {code: f"duration_{code}" for code, _name, _number in DEPLOY_STEPS}
# Fields only the pipeline (sudo) may write; users change them through the actions.
PIPELINE_FIELDS = frozenset({
    "state", "progress", "start_date", "end_date", "duration", "do_deployment_id",
    "previous_do_deployment_id", "previous_version", "rollback_of_id", "rollback_id",
    "error_code_id", "error_message", "incident_task_id", "current_step_id", "next_poll_at",
    "target_spec", "requested_by_id", "queued_at", "rollback_reason",
    *STEP_DURATION_FIELDS.values(),
})

# Cron run: how long one run may keep polling its in-flight deployments.
CRON_RUN_SECONDS = 50.0
HEALTH_RETRY = 10.0
RETRY_DELAY = 10.0
# A step that committed an intent owns its deployment this long (crash recovery delay).
INTENT_LEASE = 30.0


class _LockLost(Exception):
    """Another worker took the deployment while an intent was being committed."""


class DoDeployment(models.Model):
    """One deployment of an image tag to a DigitalOcean app (or one rollback).

    A cron job walks the steps of SOP-DEPLOY-001 one short action at a time
    (``_cron_advance``), so no transaction or HTTP worker waits for DigitalOcean;
    everything needed to resume after a crash lives in the records.
    """

    _name = "do.deployment"
    _description = "Deployment"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(required=True, copy=False, readonly=True, default="/", index="trigram")
    task_id = fields.Many2one(
        "project.task", ondelete="set null", index=True, tracking=True
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
            app = self._check_deploy_values(vals)
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("do.deployment") or "/"
            if not vals.get("components") and app.component_names:
                vals["components"] = app.component_names
        if not self.env.su and any(
            set(vals) & PIPELINE_FIELDS - {"requested_by_id"} or vals.get("kind") == "rollback"
            for vals in vals_list
        ):
            raise AccessError(self.env._(
                "The state of a deployment is set by the pipeline; rollbacks are started with "
                "the Rollback button."))
        deployments = super().create(vals_list)
        deployments._create_steps()
        return deployments

    def write(self, vals):
        if not self.env.su and set(vals) & PIPELINE_FIELDS:
            raise AccessError(self.env._(
                "The state of a deployment is set by the pipeline; use its buttons."))
        if not self.env.su and {"app_id", "image_tag", "task_id"} & set(vals):
            if any(deployment.state != "draft" for deployment in self):
                raise UserError(self.env._("Only a draft deployment can be changed."))
            for deployment in self:
                self._check_deploy_values({
                    "app_id": vals.get("app_id", deployment.app_id.id),
                    "image_tag": vals.get("image_tag", deployment.image_tag),
                    "kind": deployment.kind,
                })
        return super().write(vals)

    @api.model
    def _check_deploy_values(self, vals):
        """Refuse bad input before anything is written; return the app."""
        app = self.env["do.app"].browse(vals.get("app_id")).exists() if vals.get(
            "app_id") else self.env["do.app"]
        if not app:
            raise ValidationError(self.env._(
                "APP_NOT_FOUND: the app %(app)s does not exist.", app=vals.get("app_id") or "''"))
        if vals.get("kind", "deploy") == "deploy":
            try:
                appspec.validate_tag(vals.get("image_tag"), "image_tag")
            except DeployError as error:
                raise ValidationError(self.env._(
                    "%(code)s: %(message)s", code=error.code, message=error.message)) from None
        if vals.get("task_id") and not self.env["project.task"].browse(
                vals["task_id"]).exists():
            raise ValidationError(self.env._(
                "TASK_NOT_FOUND: the task %(task)s does not exist.", task=vals["task_id"]))
        self._check_environment_right(app)
        return app

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
        now = fields.Datetime.now()
        self.sudo().write({"state": "queued", "queued_at": now})
        for deployment in self:
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
        return True

    def action_cancel(self):
        """Cancel before the app changed; afterwards only a rollback undoes a deployment."""
        for deployment in self:
            if deployment.environment == "production":
                deployment._check_manager(self.env._(
                    "Only a Deployment Manager can cancel a production deployment."))
            if deployment.state in ("draft", "queued"):
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
        })
        retry.action_start()
        return retry._get_form_action()

    def action_rollback(self, reason=None):
        """Roll a finished deployment back to the deployment that was active before it."""
        self.ensure_one()
        self._check_manager(self.env._("Only a Deployment Manager can roll back."))
        if self.kind != "deploy" or self.state not in ("done", "failed"):
            raise UserError(self.env._(
                "Only a finished deployment can be rolled back (%(name)s is %(state)s).",
                name=self.name, state=self.state))
        if not self.previous_do_deployment_id:
            raise UserError(self.env._(
                "%(name)s has no previous deployment to roll back to.", name=self.name))
        if self.rollback_id and self.rollback_id.state not in ("failed", "canceled"):
            raise UserError(self.env._("%(name)s is already rolled back by %(rollback)s.",
                                       name=self.name, rollback=self.rollback_id.name))
        rollback = self.sudo()._create_rollback(
            reason or self.env._("Manual rollback by %(user)s", user=self.env.user.name),
            state="queued", requested_by=self.env.user)
        rollback.message_post(body=self.env._("Queued by %(user)s.", user=self.env.user.name))
        self._wake_runner()
        return rollback.with_env(self.env)._get_form_action()

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

    def _create_rollback(self, reason, *, state, requested_by):
        """The kind=rollback deployment that returns the app to the previous deployment."""
        self.ensure_one()
        rollback = self.create({
            "kind": "rollback",
            "task_id": self.task_id.id,
            "app_id": self.app_id.id,
            "image_tag": self.previous_version,
            "rollback_of_id": self.id,
            "previous_do_deployment_id": self.previous_do_deployment_id,
            "previous_version": self.previous_version,
            "rollback_reason": reason,
            "requested_by_id": requested_by.id,
            "state": state,
            "queued_at": fields.Datetime.now(),
        })
        self.rollback_id = rollback
        return rollback

    # ------------------------------------------------------------------
    # The runner (cron)
    # ------------------------------------------------------------------

    def _wake_runner(self):
        """Ask a cron thread to run now (NOTIFY after commit: about a second)."""
        self.env.ref("do_deploy.ir_cron_deployment_advance").sudo()._trigger()

    @api.model
    def _cron_advance(self):
        """Advance every due deployment by one step action, committing after each.

        Odoo's cron threads only look at future triggers about once a minute, so
        a run keeps polling its in-flight deployments for up to
        ``do_deploy.cron_run_seconds`` (50 s), sleeping between polls with no
        transaction open, and then re-arms itself: now if a poll falls due
        within a run's length, else shortly before the next one.
        """
        runner = self.sudo()
        run_seconds = runner._get_cron_run_seconds()
        deadline = time.monotonic() + run_seconds
        while True:
            runner._promote_queued()
            processed = runner._advance_due()
            next_due = runner._next_due_at()
            if next_due is None:
                break
            gap = max((next_due - fields.Datetime.now()).total_seconds(), 0.0)
            if not gap and processed:
                continue
            # Due but locked by another worker: give it a moment.
            wait = gap or 1.0
            if time.monotonic() + wait > deadline:
                break
            runner._cron_wait(wait)
        runner._rearm(run_seconds)

    @api.model
    def _get_cron_run_seconds(self):
        value = self.env["ir.config_parameter"].sudo().get_param(
            "do_deploy.cron_run_seconds", CRON_RUN_SECONDS)
        try:
            return max(float(value), 0.0)
        except ValueError:
            return CRON_RUN_SECONDS

    @api.model
    def _cron_wait(self, seconds):
        """Sleep up to ``seconds`` between polls, waking early when new work appears.

        The transaction is committed first, so nothing is held while waiting.
        """
        self.env["ir.cron"]._commit_progress()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))
            if self._has_new_work():
                return

    @api.model
    def _has_new_work(self):
        """A queued deployment whose app is free (one cheap query, then commit)."""
        self.env.cr.execute("""
            SELECT 1 FROM do_deployment q
             WHERE q.state = 'queued'
               AND NOT EXISTS (SELECT 1 FROM do_deployment r
                                WHERE r.app_id = q.app_id
                                  AND r.state IN ('running', 'rolling_back'))
             LIMIT 1
        """)
        found = bool(self.env.cr.fetchone())
        self.env["ir.cron"]._commit_progress()
        return found

    @api.model
    def _next_due_at(self):
        deployment = self.search(
            [("state", "=", "running"), ("next_poll_at", "!=", False)],
            order="next_poll_at", limit=1)
        return deployment.next_poll_at or None

    @api.model
    def _rearm(self, run_seconds):
        next_due = self._next_due_at()
        if next_due is None:
            return
        cron = self.env.ref("do_deploy.ir_cron_deployment_advance")
        gap = (next_due - fields.Datetime.now()).total_seconds()
        if gap <= run_seconds:
            cron._trigger()
        else:
            cron._trigger(at=next_due - timedelta(seconds=run_seconds))

    @api.model
    def _promote_queued(self):
        """Start the oldest queued deployment of every app that has none in flight.

        The unique index on running deployments makes this safe between workers:
        a second promotion for the same app fails and is skipped.
        """
        queued = self.search([("state", "=", "queued")], order="id")
        if not queued:
            return
        busy = set(self.search([
            ("state", "in", IN_FLIGHT_STATES), ("app_id", "in", queued.app_id.ids),
        ]).app_id.ids)
        now = fields.Datetime.now()
        started = self.browse()
        for deployment in queued:
            if deployment.app_id.id in busy:
                continue
            busy.add(deployment.app_id.id)
            # Serialize promotions per app between workers; the index stays the guarantee.
            locked = deployment.app_id.try_lock_for_update(allow_referencing=True) and \
                deployment.try_lock_for_update(allow_referencing=True)
            if not locked or self.search_count([
                    ("app_id", "=", deployment.app_id.id), ("state", "in", IN_FLIGHT_STATES)]):
                continue
            deployment.invalidate_recordset(["state"])
            if deployment.state != "queued":
                continue
            try:
                with self.env.cr.savepoint():
                    deployment.write({"state": "running", "start_date": now, "next_poll_at": now})
                    deployment.flush_recordset()
            except pg_errors.UniqueViolation:
                deployment.invalidate_recordset()
                continue
            started |= deployment
        started._notify_clients()
        self.env["ir.cron"]._commit_progress(len(started))

    @api.model
    def _advance_due(self, limit=200):
        """One step action for each due deployment, each under its own row lock."""
        now = fields.Datetime.now()
        due = self.search(
            [("state", "=", "running"), ("next_poll_at", "<=", now)],
            order="next_poll_at, id", limit=limit)
        processed = 0
        IrCron = self.env["ir.cron"]
        for deployment in due:
            if not deployment.try_lock_for_update(allow_referencing=True):
                continue
            deployment.invalidate_recordset()
            if deployment.state != "running" or (deployment.next_poll_at or now) > now:
                continue
            deployment._advance_safely()
            processed += 1
            IrCron._commit_progress(1)
        return processed

    def _advance_safely(self):
        """``_advance``, but an unexpected error never stops the other deployments.

        The transaction is rolled back (as if the process had died there) and the
        deployment is retried later from what was committed; past its step's
        deadline the watchdog fails it with DEPLOY_TIMEOUT.
        """
        try:
            self._advance()
        except _LockLost:
            self.env.cr.rollback()
        except Exception as exc:
            self.env.cr.rollback()
            self.env.invalidate_all()
            # The traceback goes through the account's redaction like every step log.
            _logger.error("Deployment %s: unexpected error\n%s", self.name,
                          self.app_id.account_id._redact(traceback.format_exc()))
            if not self.try_lock_for_update(allow_referencing=True) or self.state != "running":
                return
            step = self._current_step()
            message = f"Unexpected error: {type(exc).__name__}: {exc}"
            if step and step.state == "pending":
                # Its start was rolled back too: keep it, so the deadline runs.
                self._start_step(step)
            if step and self._past_deadline(step):
                self._fail_step(step, DeployError(
                    "DEPLOY_TIMEOUT",
                    f"{step.name} made no progress within its time limit. {message}"))
            else:
                if step:
                    step._append_log(message + " (retrying)")
                self._schedule(INTENT_LEASE)
        self._notify_clients()

    # ------------------------------------------------------------------
    # The step driver
    # ------------------------------------------------------------------

    def _current_step(self):
        self.ensure_one()
        return self.step_ids.filtered(
            lambda s: s.state not in FINISHED_STEP_STATES).sorted("sequence")[:1]

    def _schedule(self, delay):
        self.next_poll_at = fields.Datetime.now() + timedelta(seconds=delay)

    def _step_limit(self, step):
        """Seconds after which a step that made no progress is timed out."""
        if step.code in ("monitor", "rb_monitor"):
            return self.app_id.deploy_timeout + 60
        return max(step.budget * 2, step.budget + 60)

    def _past_deadline(self, step):
        if not step.start_date:
            return False
        elapsed = (fields.Datetime.now() - step.start_date).total_seconds()
        return elapsed > self._step_limit(step)

    def _advance(self):
        """Run one short action of the current step and record its outcome."""
        self.ensure_one()
        step = self._current_step()
        if not step:
            if self.kind == "rollback":
                self._finish_rollback()
            else:
                self._finish("done")
            return
        if step.state == "pending":
            self._start_step(step)
        step.attempt += 1
        try:
            delay = getattr(self, f"_step_{step.code}")(step)
        except DeployError as error:
            if error.retryable and not self._past_deadline(step):
                step._append_log(f"{error.code}: {error.message} Retrying.")
                self._schedule(self._retry_delay(error))
                return
            if error.retryable:
                error = DeployError(error.code, f"{error.message} Still failing after "
                                    f"{self._step_limit(step)} s of retries.")
            self._fail_step(step, error)
            return
        if delay is not None:
            if self._past_deadline(step):
                self._fail_step(step, DeployError(
                    "DEPLOY_TIMEOUT",
                    f"{step.name} did not finish within {self._step_limit(step)} s."))
            else:
                self._schedule(delay)
            return
        self._complete_step(step)
        if next_step := self._current_step():
            self.current_step_id = next_step
            self._schedule(0)
        elif self.kind == "rollback":
            self._finish_rollback()
        else:
            self._finish("done")

    def _start_step(self, step):
        step.write({"state": "running", "start_date": fields.Datetime.now()})
        self.current_step_id = step

    @staticmethod
    def _retry_delay(error):
        """Seconds before retrying a retryable error: DigitalOcean's retry-after or
        rate-limit reset when it gives one, else RETRY_DELAY."""
        details = error.details or {}
        delay = details.get("retry_after")
        if delay is None and details.get("reset"):
            delay = min(details["reset"] - time.time(), 300.0)
        try:
            return max(RETRY_DELAY, float(delay or 0.0))
        except (TypeError, ValueError):
            return RETRY_DELAY

    def _complete_step(self, step):
        now = fields.Datetime.now()
        duration = (now - step.start_date).total_seconds()
        warned = bool((step.data or {}).get("warning"))
        step.write({
            "state": "warning" if warned else "done",
            "end_date": now,
            "duration": duration,
            "over_budget": duration > step.budget,
        })
        self._record_step_duration(step, duration)
        if duration > step.budget:
            step._append_log(f"Took {duration:.1f} s, over its budget of {step.budget} s.")
        self._update_progress()

    def _record_step_duration(self, step, duration):
        """Copy a finished deploy step's duration onto its deployment (rollback steps have
        no column), the figure the duration pivot averages."""
        if field_name := STEP_DURATION_FIELDS.get(step.code):
            self[field_name] = duration

    def _update_progress(self):
        steps = self.step_ids
        finished = steps.filtered(lambda s: s.state in FINISHED_STEP_STATES)
        self.progress = 100.0 * len(finished) / len(steps) if steps else 0.0

    def _fail_step(self, step, error):
        """Record the failure on the step and decide what happens to the app."""
        now = fields.Datetime.now()
        account = self.app_id.account_id
        message = account._redact(error.message)
        error_code = self.env["do.error.code"]._get_by_code(error.code)
        duration = (now - step.start_date).total_seconds() if step.start_date else 0.0
        step.write({
            "state": "failed",
            "end_date": now,
            "duration": duration,
            "over_budget": duration > step.budget,
            "error_code_id": error_code.id,
            "error_message": message,
        })
        self._record_step_duration(step, duration)
        step._append_log(f"FAILED {error.code}: {message}")
        if error_code.mitigation:
            step._append_log(f"Mitigation: {error_code.mitigation}")
        self.step_ids.filtered(lambda s: s.state == "pending").write({"state": "skipped"})
        self.write({"error_code_id": error_code.id, "error_message": message})
        self._update_progress()
        self.message_post(body=Markup(
            "<p><b>%s</b> failed: <b>%s</b> %s</p><p>%s</p>") % (
            step.name, error.code, message, error_code.mitigation or ""))
        if self.kind == "rollback":
            self._fail_rollback()
        elif step.code == "update_task":
            # The app is deployed; only the task could not be told.
            self._finish("done")
        elif self._app_changed() and self.previous_do_deployment_id:
            self._start_automatic_rollback(error)
        else:
            self._finish("failed")
            if self._app_changed():
                self._create_incident(self, self.env["do.deployment"], critical=True)

    def _app_changed(self):
        """True once DigitalOcean accepted our spec or created a deployment for us."""
        self.ensure_one()
        apply_step = self.step_ids.filtered(lambda s: s.code == "apply_spec")
        return bool(self.do_deployment_id or (apply_step.data or {}).get("applied"))

    def _finish(self, state):
        self.ensure_one()
        now = fields.Datetime.now()
        start = self.start_date or now
        self.write({
            "state": state,
            "end_date": now,
            "duration": (now - start).total_seconds(),
            "next_poll_at": False,
            "current_step_id": False,
        })
        if state == "done":
            self._update_progress()
            self.message_post(body=self.env._(
                "Deployed %(tag)s to %(app)s in %(seconds)s s.",
                tag=self.image_tag, app=self.app_id.name, seconds=round(self.duration, 1)))
        # The app's slot is free: the next queued deployment can start.
        self._wake_runner()

    # ------------------------------------------------------------------
    # DigitalOcean helpers
    # ------------------------------------------------------------------

    def _client(self):
        return self.app_id.account_id._get_backend()

    def _step_by_code(self, code):
        return self.step_ids.filtered(lambda s: s.code == code)[:1]

    def _commit_intent(self, step, **intent):
        """Write the intent of a mutating call and commit it before the call.

        With the intent committed, a crash between the call and the commit of
        its result is recognised on resume (the step re-reads the app instead of
        calling again). The lease keeps other workers off until we are done.
        """
        step._update_data(intent_at=fields.Datetime.now().isoformat(), **intent)
        self._schedule(INTENT_LEASE)
        self.env["ir.cron"]._commit_progress()
        if not self.try_lock_for_update(allow_referencing=True):
            raise _LockLost()

    @staticmethod
    def _deployment_ids_of(app):
        return [
            (app.get(key) or {}).get("id")
            for key in ("active_deployment", "in_progress_deployment", "pending_deployment",
                        "pinned_deployment")
            if (app.get(key) or {}).get("id")
        ]

    @staticmethod
    def _new_deployment(app, known_ids, version=None):
        """The deployment of ``app`` not in ``known_ids`` (optionally of ``version``)."""
        for key in ("pending_deployment", "in_progress_deployment", "pinned_deployment",
                    "active_deployment"):
            deployment = app.get(key) or {}
            if deployment.get("id") and deployment["id"] not in known_ids and (
                    version is None or deployment.get("spec") is None
                    or spec_version(deployment.get("spec")) == version):
                return deployment["id"]
        return None

    def _spec_hash(self, spec):
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    def _expected_seconds(self, client):
        """How long the app's deployments take to reach ACTIVE, from history.

        Odoo's own history first (the median of the last five successful
        monitors); else one call for DigitalOcean's recent deployments.
        """
        monitors = self.env["do.deployment.step"].search([
            ("deployment_id.app_id", "=", self.app_id.id),
            ("deployment_id", "!=", self.id),
            ("code", "in", ("monitor", "rb_monitor")),
            ("state", "=", "done"),
        ], order="id desc", limit=5)
        seconds = [m.data["active_after"] for m in monitors
                   if m.data and m.data.get("active_after")]
        if seconds:
            return statistics.median(seconds)
        try:
            history = client.list_deployments(self.app_id.do_app_id, per_page=5)
        except DeployError:
            return None
        return expected_seconds(history, exclude_id=self.do_deployment_id)

    # ------------------------------------------------------------------
    # Steps 1-8 (one short action each; None = done, a number = poll again)
    # ------------------------------------------------------------------

    def _step_update_spec(self, step):
        """Step 1: fetch the live spec, set the tag, validate, check the tag, propose."""
        client = self._client()
        app = client.get_app(self.app_id.do_app_id)
        components = [c.strip() for c in (self.components or "").split(",") if c.strip()]
        new_spec = appspec.set_image_tag(app.get("spec") or {}, self.image_tag,
                                         components or None)
        appspec.load_spec(appspec.dump_spec(new_spec))
        warnings = appspec.validate_spec(new_spec)
        if self.app_id.registry_repository:
            self.app_id._check_tag_in_registry(client, self.image_tag)
        proposal = client.propose(new_spec, app_id=self.app_id.do_app_id)
        active = app.get("active_deployment") or {}
        ingress = app.get("live_url") or app.get("default_ingress")
        if ingress and not self.app_id.ingress_url:
            self.app_id.ingress_url = ingress
        self.write({
            "previous_do_deployment_id": active.get("id") or False,
            "previous_version": spec_version(active.get("spec") or app.get("spec")) or False,
            "target_spec": new_spec,
        })
        for warning in warnings:
            step._append_log(f"Warning: {warning}")
        step._update_data(
            previous_deployment_id=active.get("id"),
            previous_version=self.previous_version or None,
            known_deployment_ids=self._deployment_ids_of(app),
            spec_hash=self._spec_hash(new_spec),
            app_cost=proposal.get("app_cost"),
            warnings=warnings,
        )
        step._append_log(
            f"Spec ready: {self.image_tag} on "
            f"{', '.join(components) if components else 'every image component'}; "
            f"previous version {self.previous_version or 'unknown'}.")

    def _step_apply_spec(self, step):
        """Step 2: PUT the spec - which also creates the deployment (exactly once)."""
        client = self._client()
        spec = self.sudo().target_spec
        known = self._step_by_code("update_spec").data.get("known_deployment_ids") or []
        data = step.data or {}
        if data.get("intent_at"):
            app = client.get_app(self.app_id.do_app_id)
            created = self._new_deployment(app, known, self.image_tag)
            if created or (spec_version(app.get("spec")) == self.image_tag
                           and self.image_tag != self.previous_version):
                step._append_log("Resumed: the interrupted spec update had reached "
                                 "DigitalOcean; not sending it again.")
                return self._store_applied(step, created)
            step._append_log("Resumed: the interrupted spec update had not reached "
                             "DigitalOcean; sending it again.")
        self._commit_intent(step, spec_hash=self._spec_hash(spec))
        try:
            app = client.update_app(self.app_id.do_app_id, spec,
                                    update_all_source_versions=self.force_rebuild)
        except DeployError as error:
            if error.details.get("maybe_created"):
                step._append_log(f"{error.code}: {error.message} The update may have been "
                                 "applied; the app is read again before anything else.")
                return RETRY_DELAY
            raise
        return self._store_applied(step, self._new_deployment(app, known))

    def _store_applied(self, step, created_deployment_id):
        # DigitalOcean deploys every spec change; no deployment means nothing changed.
        step._update_data(applied=bool(created_deployment_id),
                          created_deployment_id=created_deployment_id)
        step._append_log(
            f"Spec applied; DigitalOcean created deployment {created_deployment_id}."
            if created_deployment_id else
            "Spec applied; DigitalOcean created no deployment (the spec did not change).")

    def _step_create_deployment(self, step):
        """Step 3: adopt the deployment the update created, or create one (exactly once).

        The SOP runs ``create-deployment`` after ``apps update``, but the PUT
        already deploys (reference §5): a second call would build twice. A
        deployment is created here only when the update created none.
        """
        created = self._step_by_code("apply_spec").data.get("created_deployment_id")
        if created:
            self.do_deployment_id = created
            step._append_log(f"Adopted deployment {created}, created by the spec update.")
            return None
        client = self._client()
        data = step.data or {}
        if data.get("intent_at"):
            app = client.get_app(self.app_id.do_app_id)
            found = self._new_deployment(app, data.get("known_deployment_ids") or [])
            if found:
                step._append_log(f"Resumed: adopted deployment {found}, created before the "
                                 "interruption.")
                self.do_deployment_id = found
                return None
            known = data.get("known_deployment_ids") or []
        else:
            app = client.get_app(self.app_id.do_app_id)
            known = self._deployment_ids_of(app)
        self._commit_intent(step, known_deployment_ids=known)
        try:
            deployment = client.create_deployment(self.app_id.do_app_id,
                                                  force_build=self.force_rebuild)
        except DeployError as error:
            if error.details.get("maybe_created"):
                step._append_log(f"{error.code}: {error.message} Checking whether it was "
                                 "created before trying again.")
                return RETRY_DELAY
            raise
        self._store_created_deployment(step, deployment["id"])
        return None

    def _store_created_deployment(self, step, deployment_id):
        """Record the DigitalOcean deployment a mutating call created."""
        self.do_deployment_id = deployment_id
        step._update_data(deployment_id=deployment_id)
        step._append_log(f"Created deployment {deployment_id}.")

    def _step_monitor(self, step):
        """Step 4: poll the deployment's phase until ACTIVE (or a failure)."""
        return self._poll_do_deployment(step)

    def _poll_do_deployment(self, step):
        client = self._client()
        data = step.data or {}
        if "expected_seconds" not in data:
            step._update_data(expected_seconds=self._expected_seconds(client))
            data = step.data
        deployment = client.get_deployment(self.app_id.do_app_id, self.do_deployment_id)
        phase = deployment.get("phase") or "UNKNOWN"
        progress = deployment.get("progress") or {}
        counts = f"{progress.get('success_steps', 0)}/{progress.get('total_steps', 0)}"
        if phase != data.get("phase"):
            step._append_log(f"Phase {phase} ({counts} steps).")
        elapsed = (fields.Datetime.now() - step.start_date).total_seconds()
        step._update_data(phase=phase, progress=counts, polls=data.get("polls", 0) + 1)
        if phase == "ACTIVE":
            step._update_data(active_after=deployment_seconds(deployment) or elapsed)
            return None
        if phase in FAILED_PHASES:
            raise self._deployment_failure(client, step, deployment)
        if elapsed > self.app_id.deploy_timeout:
            try:
                client.cancel_deployment(self.app_id.do_app_id, self.do_deployment_id)
                step._append_log("Canceled the deployment on DigitalOcean.")
            except DeployError as error:
                step._append_log(f"Could not cancel the deployment: {error.code}.")
            raise timeout_error(phase, elapsed, self.app_id.deploy_timeout)
        expected = data.get("expected_seconds") or min(
            SOP_EXPECTED_SECONDS, float(step.budget or SOP_EXPECTED_SECONDS))
        return poll_interval(phase, elapsed, expected)

    def _deployment_failure(self, client, step, deployment):
        """The SOP error of a failed DigitalOcean deployment, with its log on the step."""
        error = failure_error(deployment)
        component, log_type = error.details["component"], error.details["log_type"]
        if log_type:
            try:
                log = client.get_logs(self.app_id.do_app_id, self.do_deployment_id,
                                      component=component, log_type=log_type)
            except DeployError as log_error:
                log = f"({log_type} log not available: {log_error.code})"
            if log:
                step._append_log(f"{log_type} log of {component or 'the app'}:\n{log}")
        return error

    def _step_health_check(self, step):
        """Step 5: one failure warns and retries; two consecutive fail the step."""
        return self._check_health(step)

    def _check_health(self, step, expected_version=None):
        result = checks.check_health(
            self._ingress_url(), path=self.app_id.health_path,
            budget_seconds=min(10.0, float(step.budget or 10)),
            expected_version=expected_version)
        data = step.data or {}
        history = [*data.get("checks", []), result.to_dict()]
        if result.ok:
            step._update_data(checks=history[-10:], consecutive_failures=0)
            step._append_log(result.message)
            return None
        failures = data.get("consecutive_failures", 0) + 1
        step._update_data(checks=history[-10:], consecutive_failures=failures, warning=True)
        if failures >= 2:
            raise DeployError(result.code or "HEALTH_CHECK_FAIL",
                              f"{result.message} (second consecutive failure)")
        step._append_log(f"Warning: {result.code}: {result.message} "
                         f"Checking again in {HEALTH_RETRY:.0f} s.")
        return HEALTH_RETRY

    def _ingress_url(self):
        url = self.app_id.ingress_url
        if not url:
            raise DeployError("LOAD_BALANCER_ERROR",
                              f"The app {self.app_id.name} has no ingress URL.")
        return url

    def _step_traffic_switch(self, step):
        """Step 6: our deployment is active and the ingress serves our version."""
        client = self._client()
        app = client.get_app(self.app_id.do_app_id)
        active_id = (app.get("active_deployment") or {}).get("id")
        step._update_data(active_deployment_id=active_id, live_url=app.get("live_url"))
        if active_id != self.do_deployment_id:
            # Retried until the step's limit: the switch may lag behind ACTIVE.
            raise DeployError("TRAFFIC_SWITCH_FAILED", (
                f"The app's active deployment is {active_id}, not {self.do_deployment_id}."),
                retryable=True)
        self._check_ingress(step, self.image_tag, self.do_deployment_id)
        self.app_id.live_version = self.image_tag

    def _check_ingress(self, step, version, deployment_id):
        """The ingress serves ``version``; DNS resolves; TLS is valid when https."""
        ingress = self._ingress_url()
        served = checks.check_served_version(ingress, version,
                                             expected_deployment_id=deployment_id)
        step._update_data(served=served.to_dict())
        served.raise_for_result()
        parts = urlsplit(ingress)
        dns = checks.check_dns(parts.hostname)
        step._update_data(dns=dns.to_dict())
        dns.raise_for_result()
        if parts.scheme == "https":
            tls = checks.check_tls(parts.hostname, port=parts.port or 443)
            step._update_data(tls=tls.to_dict())
            tls.raise_for_result()
        else:
            step._update_data(tls={"ok": True, "skipped": True,
                                   "message": "Plain http ingress: no certificate to check."})
            step._append_log("TLS check skipped: the ingress is plain http.")
        step._append_log(served.message)

    def _step_validate(self, step):
        """Step 7: the app's endpoint checks (the SOP's set when it has none)."""
        results = checks.check_endpoints(self._ingress_url(), self.app_id._get_endpoint_checks())
        step._update_data(results=[result.to_dict() for result in results])
        for result in results:
            step._append_log(f"{'OK' if result.ok else result.code}: {result.message}")
        for result in results:
            result.raise_for_result()

    def _step_update_task(self, step):
        """Step 8: stage, deployment facts and a chatter message on the task."""
        task = self.task_id.exists()
        if not task:
            raise DeployError("TASK_NOT_FOUND", "The task of this deployment does not exist.")
        try:
            with self.env.cr.savepoint():
                vals = {
                    "deployed_at": fields.Datetime.now(),
                    "deployed_by": self.requested_by_id.id,
                    "deployed_version": self.image_tag,
                }
                stage = self.app_id.deployed_stage_id
                if stage and task.project_id:
                    if task.project_id not in stage.project_ids:
                        stage.project_ids = [fields.Command.link(task.project_id.id)]
                    vals["stage_id"] = stage.id
                task.write(vals)
                task.message_post(
                    body=self._task_message(),
                    author_id=self.requested_by_id.partner_id.id,
                    subtype_xmlid="mail.mt_comment",
                )
        except (UserError, ValidationError, AccessError) as error:
            raise DeployError("ODOO_API_ERROR", f"The task could not be updated: {error}") from None
        step._update_data(task_id=task.id, stage=self.app_id.deployed_stage_id.name or None)
        step._append_log(f"Task {task.display_name} updated.")

    def _task_message(self):
        return Markup(
            "<p>Deployed <b>%s</b> to <b>%s</b> (%s).</p>"
            "<ul><li>Deployment: %s (DigitalOcean %s)</li><li>Deployed by: %s</li>"
            "<li>Duration: %s s</li></ul>") % (
            self.image_tag, self.app_id.name, self.environment, self.name,
            self.do_deployment_id, self.requested_by_id.name,
            round((fields.Datetime.now() - self.start_date).total_seconds(), 1))

    # ------------------------------------------------------------------
    # Rollback steps
    # ------------------------------------------------------------------

    def _start_automatic_rollback(self, error):
        """Hand the app's slot to a rollback deployment, in the same transaction."""
        self.write({"state": "rolling_back", "next_poll_at": False, "current_step_id": False})
        self.flush_recordset()
        rollback = self._create_rollback(
            f"Automatic rollback after {error.code}", state="running",
            requested_by=self.requested_by_id)
        now = fields.Datetime.now()
        rollback.write({"start_date": now, "next_poll_at": now})
        self.message_post(body=self.env._(
            "Rolling back to the previous deployment (%(rollback)s).", rollback=rollback.name))

    def _step_rb_validate(self, step):
        """Ask DigitalOcean whether the app can return to the previous deployment."""
        client = self._client()
        app = client.get_app(self.app_id.do_app_id)
        result = client.validate_rollback(self.app_id.do_app_id, self.previous_do_deployment_id)
        step._update_data(known_deployment_ids=self._deployment_ids_of(app),
                          valid=result["valid"], warnings=result.get("warnings") or [],
                          rollback_error=result.get("error"))
        for warning in result.get("warnings") or []:
            step._append_log(f"Warning: {warning}")
        if not result["valid"]:
            error = result.get("error") or {}
            raise DeployError("DEPLOYMENT_CREATE_FAILED", (
                f"DigitalOcean refuses the rollback: {error.get('code', 'invalid')}: "
                f"{error.get('message', '')}".strip()))
        step._append_log(f"Rollback to {self.previous_do_deployment_id} is valid.")

    def _step_rb_create(self, step):
        """Roll back (pinned), exactly once like step 3."""
        client = self._client()
        data = step.data or {}
        known = self._step_by_code("rb_validate").data.get("known_deployment_ids") or []
        if data.get("intent_at"):
            app = client.get_app(self.app_id.do_app_id)
            found = self._new_deployment(app, known)
            if found:
                step._append_log(f"Resumed: adopted rollback deployment {found}.")
                self.do_deployment_id = found
                return None
        self._commit_intent(step)
        try:
            deployment = client.create_rollback(self.app_id.do_app_id,
                                                self.previous_do_deployment_id)
        except DeployError as error:
            if error.details.get("maybe_created"):
                step._append_log(f"{error.code}: {error.message} Checking whether it was "
                                 "created before trying again.")
                return RETRY_DELAY
            raise
        self._store_created_deployment(step, deployment["id"])
        return None

    def _step_rb_monitor(self, step):
        return self._poll_do_deployment(step)

    def _step_rb_health_check(self, step):
        """Health (one warning allowed) and the previous version served again."""
        data = step.data or {}
        if not data.get("healthy"):
            delay = self._check_health(step)
            if delay is not None:
                return delay
            step._update_data(healthy=True)
        if self.previous_version:
            self._check_ingress(step, self.previous_version, self.do_deployment_id)
        return None

    def _step_rb_commit(self, step):
        """Commit the rollback (unpins the app) and check the previous deployment is live."""
        client = self._client()
        app = client.get_app(self.app_id.do_app_id)
        if (app.get("pinned_deployment") or {}).get("id"):
            client.commit_rollback(self.app_id.do_app_id)
            step._append_log("Rollback committed.")
            app = client.get_app(self.app_id.do_app_id)
        active_id = (app.get("active_deployment") or {}).get("id")
        step._update_data(active_deployment_id=active_id,
                          pinned=bool((app.get("pinned_deployment") or {}).get("id")))
        if active_id != self.do_deployment_id:
            raise DeployError("TRAFFIC_SWITCH_FAILED", (
                f"After the rollback the active deployment is {active_id}, not "
                f"{self.do_deployment_id}."))
        if self.previous_version:
            self.app_id.live_version = self.previous_version

    def _finish_rollback(self):
        """Success: mark both deployments, open the incident, notify, record criteria."""
        target = self.rollback_of_id
        self._finish("done")
        if target:
            target.write({"state": "rolled_back", "end_date": target.end_date
                          or fields.Datetime.now()})
            target.message_post(body=self.env._(
                "Rolled back by %(rollback)s: %(version)s serves traffic again.",
                rollback=self.name, version=self.previous_version or "the previous version"))
        incident, notified = self._create_incident(target or self, self)
        self._record_rollback_criteria(self._step_by_code("rb_commit"), incident, notified)

    def _fail_rollback(self):
        """The rollback failed: unpin the app if we pinned it, fail both, critical incident."""
        if self.do_deployment_id:
            try:
                self._client().revert_rollback(self.app_id.do_app_id)
                self.message_post(body=self.env._("Rollback reverted: the app is unpinned."))
            except DeployError as error:
                self.message_post(body=self.env._(
                    "Reverting the rollback failed: %(code)s. Revert it in the DigitalOcean "
                    "console.", code=error.code))
        self._finish("failed")
        target = self.rollback_of_id
        if target.state == "rolling_back":
            target._finish("failed")
        incident, notified = self._create_incident(target or self, self, critical=True)
        failed_step = self.step_ids.filtered(lambda s: s.state == "failed")[:1]
        self._record_rollback_criteria(failed_step, incident, notified)

    def _record_rollback_criteria(self, step, incident, notified):
        """The five success criteria of the SOP's rollback procedure, as checked."""
        commit_data = self._step_by_code("rb_commit").data or {}
        health_data = self._step_by_code("rb_health_check").data or {}
        served = health_data.get("served") or {}
        criteria = {
            "previous_deployment_active": bool(self.do_deployment_id) and commit_data.get(
                "active_deployment_id") == self.do_deployment_id,
            "health_check_passed": bool(health_data.get("healthy")),
            "traffic_on_previous_version": bool(served.get("ok")) or (
                bool(health_data.get("healthy")) and not self.previous_version),
            "incident_created": bool(incident),
            "stakeholders_notified": notified,
        }
        self.rollback_criteria = criteria
        step._update_data(criteria=criteria)
        step._append_log("Rollback success criteria: " + ", ".join(
            f"{name} {'yes' if ok else 'NO'}" for name, ok in criteria.items()))

    # ------------------------------------------------------------------
    # Incidents and notifications
    # ------------------------------------------------------------------

    @api.model
    def _get_tags(self, names):
        Tag = self.env["project.tags"].sudo()
        tags = Tag.browse()
        for name in names:
            tag = Tag.search([("name", "=ilike", name)], limit=1) or Tag.create({"name": name})
            tags |= tag
        return tags

    def _create_incident(self, failed, rollback, critical=False):
        """An incident task in the app's incident project, and the people concerned
        notified in the chatter. Returns (incident task, whether anyone was notified)."""
        app = failed.app_id
        error_code = failed.error_code_id
        done = [f"{step.name}: {step.state}"
                + (f" ({step.error_code_id.code})" if step.error_code_id else "")
                for step in rollback.step_ids.sorted("sequence")]
        if not rollback:
            done.append(self.env._("No rollback was possible: the app had no previous "
                                   "deployment to return to."))
        severity = "critical" if critical else (error_code.severity or "high")
        description = Markup(
            "<p><b>Failure:</b> %s - %s</p><p><b>Message:</b> %s</p>"
            "<p><b>Mitigation:</b> %s</p><p><b>Severity:</b> %s</p>"
            "<p><b>What was done:</b></p><ul>%s</ul>"
            "<p>Deployment %s of %s to %s (%s); previous deployment %s (%s).</p>") % (
            error_code.code or "ROLLBACK", error_code.name or "", failed.error_message or
            rollback.rollback_reason or "", error_code.mitigation or "", severity,
            Markup("").join(Markup("<li>%s</li>") % line for line in done),
            failed.name, failed.image_tag or "", app.name, app.environment,
            failed.previous_do_deployment_id or "-", failed.previous_version or "-")
        values = {"env": app.environment, "app": app.name}
        if not rollback:
            title = self.env._("[INCIDENT] Deployment failed for %(env)s: %(app)s", **values)
        elif critical:
            title = self.env._("[INCIDENT] Rollback failed for %(env)s: %(app)s", **values)
        else:
            title = self.env._("[INCIDENT] Rollback executed for %(env)s: %(app)s", **values)
        partners = (failed.requested_by_id.partner_id | rollback.requested_by_id.partner_id
                    | failed.task_id.message_partner_ids)
        incident = self.env["project.task"]
        if app.incident_project_id:
            incident = incident.sudo().create({
                "name": title,
                "project_id": app.incident_project_id.id,
                "description": description,
                "priority": "1",
                "tag_ids": [fields.Command.set(
                    self._get_tags(["incident", "rollback", app.environment]).ids)],
            })
            incident.message_subscribe(partner_ids=partners.ids)
            incident.message_post(body=description, partner_ids=partners.ids,
                                  subtype_xmlid="mail.mt_comment")
            (failed | rollback).write({"incident_task_id": incident.id})
        summary = Markup("<p><b>%s</b></p><p>%s</p>") % (
            title, incident.display_name if incident else self.env._(
                "No incident project is set on %(app)s: no incident task.", app=app.name))
        for record in (failed.task_id or failed):
            record.message_post(body=summary + description, partner_ids=partners.ids,
                                subtype_xmlid="mail.mt_comment")
        return incident, bool(partners)

    def _notify_clients(self):
        """Tell open forms to reload (ids and states only: every user gets the group)."""
        if not self:
            return
        group = self.env.ref("do_deploy.group_do_deploy_user").sudo()
        for deployment in self:
            group._bus_send("do_deploy/updated", {
                "id": deployment.id, "state": deployment.state,
                "progress": deployment.progress, "task_id": deployment.task_id.id,
            })
