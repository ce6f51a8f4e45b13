import logging
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

from markupsafe import Markup, escape

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..engine import freeze, gates
from ..engine.errors import DeployError
from ..engine.github import GitHubError

_logger = logging.getLogger(__name__)

APPROVAL_ACTIVITY = "do_deploy.mail_activity_type_deployment_approval"
USER_GROUP = "do_deploy.group_do_deploy_user"
# What a deployment is about: a change of any of them re-evaluates the gates and voids the
# approvals, confirmations and override given before (they are bound to app + tag + spec).
BINDING_FIELDS = frozenset({"app_id", "image_tag", "components", "force_rebuild", "commit_sha"})
# How a deployment of the staging counterpart counts for the *tested in staging* gate.
STAGING_STATES = {
    "done": gates.SUCCEEDED, "failed": gates.FAILED, "rolled_back": gates.FAILED,
    "queued": gates.RUNNING, "running": gates.RUNNING, "rolling_back": gates.RUNNING,
}
# A waiting deployment whose gates name no moment to ask again (an approval, a
# confirmation) is still evaluated this often: its freeze or expiry may change.
IDLE_RECHECK = timedelta(minutes=5)
# Finished deployments of the app whose durations make the expected duration the freeze
# gate plans with (a deployment must not run into a freeze).
EXPECTED_DURATION_SAMPLE = 10


def _naive(moment):
    return moment.replace(tzinfo=None) if moment else False


class DoDeployment(models.Model):
    """Quality gates, approval and freeze windows (issue 12): a deployment of an app
    with gates *waits* before the pipeline starts, is evaluated again by a cron and
    on demand, goes to the runner's queue once every gate passed, and ends with the
    code of a gate that failed. The rules are ``engine/gates.py``'s; this file
    gathers their data from the records and records their results."""

    _inherit = "do.deployment"

    state = fields.Selection(selection_add=[("draft",), ("waiting", "Waiting"), ("queued",)],
                             ondelete={"waiting": "set default"})
    commit_sha = fields.Char(
        string="Commit", tracking=True,
        help="The commit the image was built from, whose CI the gate reads on GitHub; "
             "empty: the image tag (the SOP tags images with the commit SHA).")
    gate_ids = fields.One2many("do.deployment.gate", "deployment_id", string="Gates",
                               copy=False)
    approval_ids = fields.One2many("do.deployment.approval", "deployment_id",
                                   string="Approvals", copy=False)
    confirmation_ids = fields.One2many("do.deployment.confirmation", "deployment_id",
                                       string="Confirmations", copy=False)
    waiting_since = fields.Datetime(copy=False)
    gates_checked_at = fields.Datetime(string="Gates Checked", copy=False)
    gates_recheck_at = fields.Datetime(copy=False)
    gate_summary = fields.Char(string="Gate Status", copy=False)
    gates_flagged = fields.Boolean(
        string="Emergency Override", copy=False,
        help="A manager let this deployment through a freeze window.")
    approval_requested_at = fields.Datetime(copy=False)
    freeze_override_by_id = fields.Many2one("res.users", string="Override By", copy=False)
    freeze_override_reason = fields.Char(string="Override Reason", copy=False)
    freeze_override_at = fields.Datetime(string="Override At", copy=False)
    freeze_override_binding = fields.Json(copy=False)
    can_decide_approval = fields.Boolean(compute="_compute_can_decide_approval")
    held_by_freeze = fields.Boolean(
        compute="_compute_held_by_freeze",
        help="A freeze window holds it (waiting) or refused it: a manager may override.")

    _waiting_recheck_idx = models.Index("(gates_recheck_at) WHERE state = 'waiting'")

    @api.depends_context("uid")
    @api.depends("state", "requested_by_id", "app_id.approval_required",
                 "app_id.approver_group_id")
    def _compute_can_decide_approval(self):
        for deployment in self:
            app = deployment.app_id.sudo()
            deployment.can_decide_approval = (
                deployment.state == "waiting" and app.approval_required
                and not gates.approval_refusal(app._approval_policy(),
                                               str(deployment.requested_by_id.id),
                                               str(self.env.uid)))

    @api.depends("state", "gate_ids.gate", "gate_ids.status", "error_code_id")
    def _compute_held_by_freeze(self):
        for deployment in self:
            frozen = deployment.gate_ids.filtered(
                lambda g: g.gate == gates.FREEZE and g.status != "passed")
            deployment.held_by_freeze = (
                (deployment.state == "waiting" and bool(frozen))
                or (deployment.state == "failed"
                    and deployment.error_code_id.code == "DEPLOY_FROZEN"))

    # ------------------------------------------------------------------
    # Hooks into the record's life
    # ------------------------------------------------------------------

    @api.model
    def _check_environment_right(self, app):
        """A Deployment User may request a production deployment that waits for approval."""
        if (not self.env.su and app.environment == "production"
                and not app._requires_manager_to_deploy()
                and self.env.user.has_group(USER_GROUP)):
            return
        super()._check_environment_right(app)

    def action_start(self):
        """Evaluate the gates first: a deployment goes to the runner's queue only when
        all passed; otherwise it waits, or ends with the code of the gate that failed."""
        for deployment in self:
            if deployment.state not in ("draft", "waiting"):
                raise UserError(self.env._(
                    "%(name)s is %(state)s; only a draft deployment can be started.",
                    name=deployment.name, state=deployment.state))
            self._check_environment_right(deployment.app_id)
        self._advance_gates()
        return True

    def write(self, vals):
        changed = self.filtered(lambda d: d.state == "waiting") if BINDING_FIELDS & set(
            vals) else self.browse()
        before = {deployment: deployment._gate_binding() for deployment in changed}
        result = super().write(vals)
        changed = changed.filtered(lambda d: d._gate_binding() != before[d])
        if changed:
            changed._void_decisions()
            changed._advance_gates()
        return result

    def action_cancel(self):
        waiting = self.filtered(lambda d: d.state == "waiting")
        result = super().action_cancel()
        waiting._close_approval_requests()
        return result

    # ------------------------------------------------------------------
    # Evaluation
    # ------------------------------------------------------------------

    def action_check_gates(self):
        """Evaluate a waiting deployment's gates now (the cron does it by itself)."""
        for deployment in self:
            if deployment.state != "waiting":
                raise UserError(self.env._("%(name)s is not waiting on its gates.",
                                           name=deployment.name))
        self._advance_gates()
        return True

    def _advance_gates(self):
        """Evaluate each deployment's gates; queue those that passed them all."""
        ready = self.browse()
        for deployment in self:
            if deployment.kind != "deploy" or deployment._evaluate_gates().state == gates.READY:
                ready |= deployment
        if ready:
            # Rights were checked when the deployment was requested (or by action_start).
            ready.sudo()._queue()
            ready._close_approval_requests()

    def _evaluate_gates(self):
        """Evaluate, record and act: wait (with the gates and since when) or refuse."""
        self.ensure_one()
        now = fields.Datetime.now()
        app = self.app_id.sudo()
        deployment = self.sudo()
        if app.approval_required and not deployment.approval_requested_at:
            deployment.approval_requested_at = now
        previous = [gate.result for gate in deployment.gate_ids if gate.result]
        results = gates.carry_since(deployment._gate_results(now), previous)
        max_wait = timedelta(hours=app.gate_max_wait_hours) if app.gate_max_wait_hours else None
        decision = gates.decide(results, now=now, waiting_since=deployment.waiting_since or None,
                                max_wait=max_wait)
        deployment._record_gates(decision, now)
        if decision.state == gates.WAITING:
            deployment._wait_on_gates(decision, now)
        elif decision.state == gates.REFUSED:
            deployment._refuse_by_gates(decision, now)
        elif deployment.state == "waiting" and decision.results:
            deployment.message_post(body=escape(self.env._(
                "All gates passed: %(gates)s.", gates=", ".join(
                    deployment.gate_ids.sorted("sequence").mapped("name")))))
        return decision

    def _gate_binding(self):
        """App + tag + spec hash: what approvals, confirmations and overrides are about."""
        self.ensure_one()
        return gates.binding_of(self.app_id.id, self.image_tag or "", self._gate_spec())

    def _gate_spec(self):
        """The part of the app's spec this deployment decides: which components get the
        tag, whether every image is refreshed, and the commit it was built from."""
        self.ensure_one()
        components = sorted(name.strip() for name in (self.components or "").split(",")
                            if name.strip())
        return {"components": components, "force_rebuild": bool(self.force_rebuild),
                "commit": self.commit_sha or self.image_tag or ""}

    def _gate_results(self, now):
        """The engine's result of each gate the app asks for, in the SOP's order."""
        self.ensure_one()
        app = self.app_id
        binding = self._gate_binding()
        results = []
        if app.gate_image:
            results.append(self._image_gate(now))
        if app.gate_ci:
            results.append(self._ci_gate(now))
        if app.gate_staging:
            results.append(self._staging_gate(now))
        if app.confirmation_item_ids:
            results.extend(self._confirmation_gates(now, binding))
        freeze_result = self._freeze_gate(now, binding)
        if freeze_result is not None:
            results.append(freeze_result)
        if app.approval_required:
            results.append(gates.evaluate_approval(
                app._approval_policy(), [approval._to_engine() for approval in self.approval_ids],
                requester=str(self.requested_by_id.id), binding=binding,
                requested_at=self.approval_requested_at or now, now=now))
        return results

    def _image_gate(self, now):
        account = self.app_id.account_id

        def tag_exists(repository, tag, registry=None):
            client = account._get_backend()
            name = registry or account.sudo().registry_name or client.registry_name()
            return client.tag_exists(repository, tag, registry=name)

        result = gates.evaluate_image(
            SimpleNamespace(tag_exists=tag_exists), self.app_id.registry_repository,
            self.image_tag, now=now, wait_for_push=self.app_id.gate_image_wait)
        return replace(result, message=account._redact(result.message))

    def _ci_gate(self, now):
        app = self.app_id
        account = app.account_id
        ref = self.commit_sha or self.image_tag
        with account._guarded_session() as session:
            try:
                client = account._github_client(session)
            except GitHubError as error:
                return gates.GateResult(gates.CI_PASSED, gates.CI_PASSED, "failed",
                                        error.message, error.code, checked_at=now, since=now)
            return gates.check_ci(client, app.github_repository, ref, now=now,
                                  required=app._names_of(app.ci_required_checks),
                                  security=app._names_of(app.ci_security_checks))

    def _staging_gate(self, now):
        app = self.app_id
        runs = self.sudo().search([
            ("app_id", "=", app.staging_app_id.id), ("kind", "=", "deploy"),
            ("image_tag", "=", self.image_tag), ("state", "in", list(STAGING_STATES)),
        ], order="id desc", limit=20)
        base = self.get_base_url()
        items = [gates.StagingDeployment(
            tag=run.image_tag, state=STAGING_STATES[run.state],
            finished_at=run.end_date if STAGING_STATES[run.state] != gates.RUNNING else None,
            link=f"{base}/odoo/do.deployment/{run.id}", who=run.requested_by_id.name,
            name=run.name) for run in runs]
        max_age = timedelta(hours=app.staging_max_age_hours) if app.staging_max_age_hours \
            else None
        return gates.evaluate_staging(items, tag=self.image_tag, now=now, max_age=max_age)

    def _confirmation_gates(self, now, binding):
        items = self.app_id.confirmation_item_ids.mapped("name")
        known = set(self.confirmation_ids.mapped("item"))
        self.env["do.deployment.confirmation"].sudo().create([
            {"deployment_id": self.id, "item": item, "sequence": index}
            for index, item in enumerate(items) if item not in known])
        decided = self.confirmation_ids.filtered(lambda c: c.state != "pending")
        return gates.evaluate_confirmations(
            items, [confirmation._to_engine() for confirmation in decided], now=now,
            binding=binding)

    def _freeze_gate(self, now, binding):
        """None when no freeze window exists that could apply."""
        calendar = self.env["do.freeze.window"]._calendar(self.company_id)
        if not calendar.windows:
            return None
        scope = freeze.Scope(company=str(self.company_id.id), environment=self.environment,
                             app=str(self.app_id.id))
        override = None
        if self.freeze_override_at:
            override = freeze.EmergencyOverride(
                by=self.freeze_override_by_id.name, reason=self.freeze_override_reason,
                at=self.freeze_override_at,
                binding=gates.Binding.from_dict(self.freeze_override_binding))
        return gates.evaluate_freeze(calendar, scope, now=now,
                                     expected_duration=self._expected_duration(),
                                     override=override, binding=binding)

    def _expected_duration(self):
        """The mean duration of the app's last finished deployments."""
        done = self.sudo().search_fetch(
            [("app_id", "=", self.app_id.id), ("state", "=", "done"), ("duration", ">", 0)],
            ["duration"], order="id desc", limit=EXPECTED_DURATION_SAMPLE)
        seconds = sum(done.mapped("duration")) / len(done) if done else 0.0
        return timedelta(seconds=seconds)

    def _record_gates(self, decision, now):
        # Updated in place (one row per gate), so a cron evaluating every minute neither
        # churns rows nor logs a deletion each time.
        Gate = self.env["do.deployment.gate"].sudo()
        existing = {(gate.gate, gate.name): gate for gate in self.gate_ids.sudo()}
        new_values = []
        for index, result in enumerate(decision.results):
            values = Gate._values_of(result, index)
            if gate := existing.pop((result.gate, values["name"]), None):
                gate.write(values)
            else:
                new_values.append({"deployment_id": self.id, **values})
        Gate.create(new_values)
        Gate.union(*existing.values()).unlink()
        recheck = decision.recheck_at or (now + IDLE_RECHECK)
        self.write({
            "gate_summary": Gate._summary(decision) if decision.results else False,
            "gates_flagged": decision.flagged,
            "gates_checked_at": now,
            "gates_recheck_at": _naive(recheck) if decision.state == gates.WAITING else False,
        })

    def _wait_on_gates(self, decision, now):
        if self.state != "waiting":
            self.write({"state": "waiting", "waiting_since": now})
            self.message_post(body=escape(self.gate_summary))
        approval = [result for result in decision.pending if result.gate == gates.APPROVAL]
        if approval:
            self._request_approvals(approval[0])

    def _refuse_by_gates(self, decision, now):
        code = self.env["do.error.code"]._get_by_code(decision.code)
        self.step_ids.filtered(lambda s: s.state == "pending").write({"state": "skipped"})
        self.write({
            "state": "failed", "end_date": now, "error_code_id": code.id,
            "error_message": self.gate_summary, "next_poll_at": False,
        })
        self._close_approval_requests()
        self.message_post(body=escape(f"{decision.code}: {self.gate_summary}"))

    # ------------------------------------------------------------------
    # Approval
    # ------------------------------------------------------------------

    def _request_approvals(self, result):
        """An activity for each approver who has neither decided nor been asked yet."""
        activity_type = self.env.ref(APPROVAL_ACTIVITY)
        counted = set(result.data.get("approved", ()))
        asked = self.activity_ids.filtered(
            lambda a: a.activity_type_id == activity_type).user_id
        approvers = self.app_id.approver_group_id.sudo().all_user_ids.filtered(
            lambda u: u.active and not u.share and u != self.requested_by_id
            and str(u.id) not in counted and u not in asked)
        link = f"{self.get_base_url()}/do_deploy/approval/{self.id}"
        note = Markup(
            "<p>%s</p><p><a href='%s?decision=approve'>%s</a> &#183; "
            "<a href='%s?decision=reject'>%s</a></p>") % (
            self.env._("%(user)s asks to deploy %(tag)s to %(app)s.",
                       user=self.requested_by_id.name, tag=self.image_tag,
                       app=self.app_id.name),
            link, self.env._("Approve"), link, self.env._("Reject"))
        for user in approvers:
            self.activity_schedule(
                APPROVAL_ACTIVITY, user_id=user.id, note=note,
                summary=self.env._("Approve %(name)s", name=self.name))

    def _close_approval_requests(self):
        activity_type = self.env.ref(APPROVAL_ACTIVITY)
        activities = self.sudo().activity_ids.filtered(
            lambda a: a.activity_type_id == activity_type)
        activities.unlink()

    def _record_approval(self, approved, comment=""):
        """The current user approves or rejects; the requester never decides their own."""
        self.ensure_one()
        app = self.app_id.sudo()
        if self.state != "waiting" or not app.approval_required:
            raise UserError(self.env._("%(name)s is not waiting for an approval.",
                                       name=self.name))
        if refusal := gates.approval_refusal(app._approval_policy(),
                                             str(self.requested_by_id.id), str(self.env.uid)):
            raise AccessError(refusal)
        comment = (comment or "").strip()
        if not approved and not comment:
            raise UserError(self.env._("Say why you reject the deployment."))
        binding = self._gate_binding()
        self.env["do.deployment.approval"].sudo().create({
            "deployment_id": self.id, "user_id": self.env.uid,
            "decision": "approve" if approved else "reject", "comment": comment or False,
            "app_id": self.app_id.id, "image_tag": self.image_tag,
            "spec_hash": binding.spec_hash,
        })
        activity_type = self.env.ref(APPROVAL_ACTIVITY)
        self.activity_ids.filtered(
            lambda a: a.activity_type_id == activity_type and a.user_id == self.env.user
        ).action_feedback(feedback=comment or None)
        verb = self.env._("Approved") if approved else self.env._("Rejected")
        self.message_post(body=escape(f"{verb} by {self.env.user.name}" + (
            f": {comment}" if comment else ".")))
        self._advance_gates()

    # ------------------------------------------------------------------
    # Confirmations, override, decisions
    # ------------------------------------------------------------------

    def _record_confirmation(self, confirmation, confirmed, comment=""):
        self.ensure_one()
        if self.state != "waiting" or confirmation.deployment_id != self:
            raise UserError(self.env._("%(name)s is not waiting for this confirmation.",
                                       name=self.name))
        comment = (comment or "").strip()
        if not confirmed and not comment:
            raise UserError(self.env._("Say why you decline %(item)s.", item=confirmation.item))
        confirmation.sudo().write({
            "state": "confirmed" if confirmed else "declined", "user_id": self.env.uid,
            "decided_at": fields.Datetime.now(), "comment": comment or False,
            "binding": self._gate_binding().to_dict(),
        })
        verb = self.env._("confirmed") if confirmed else self.env._("declined")
        self.message_post(body=escape(f"{self.env.user.name} {verb}: {confirmation.item}" + (
            f" ({comment})" if comment else "")))
        self._advance_gates()

    def _override_freeze(self, reason):
        """A manager's emergency override of the freeze windows, with a reason: recorded on
        the deployment (flagged) and in its chatter. A deployment a freeze refused is
        retried with the override."""
        self.ensure_one()
        self._check_manager(self.env._("Only a Deployment Manager can override a freeze."))
        reason = (reason or "").strip()
        if not reason:
            raise UserError(self.env._("An emergency override needs a reason."))
        refused = self.state == "failed"
        if not self.held_by_freeze:
            raise UserError(self.env._("%(name)s is not held by a freeze window.",
                                       name=self.name))
        target = self.sudo().copy({"retry_of_id": self.id}) if refused else self.sudo()
        target.write({
            "freeze_override_by_id": self.env.uid, "freeze_override_reason": reason,
            "freeze_override_at": fields.Datetime.now(),
            "freeze_override_binding": target._gate_binding().to_dict(),
        })
        target.message_post(body=escape(self.env._(
            "Emergency override of the freeze windows by %(user)s: %(reason)s",
            user=self.env.user.name, reason=reason)))
        target.with_env(self.env)._advance_gates()
        return target.with_env(self.env)._get_form_action()

    def _void_decisions(self):
        """The tag or spec changed: earlier approvals, confirmations and override do not
        cover it (the engine ignores them), the request starts anew, and the chatter says so."""
        for deployment in self.sudo():
            deployment.confirmation_ids.filtered(lambda c: c.state != "pending").write(
                {"state": "pending", "user_id": False, "decided_at": False, "comment": False,
                 "binding": False})
            deployment.write({"approval_requested_at": fields.Datetime.now()})
            if deployment.approval_ids or deployment.freeze_override_at:
                deployment.message_post(body=escape(self.env._(
                    "The tag or spec changed: approvals, confirmations and the override given "
                    "before no longer count.")))

    def _open_decision(self, kind, confirmation=None):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "res_model": "do.gate.decision",
            "view_mode": "form", "target": "new",
            "name": dict(self.env["do.gate.decision"]._fields["kind"].selection)[kind],
            "context": {"default_deployment_id": self.id, "default_kind": kind,
                        "default_confirmation_id": confirmation.id if confirmation else False},
        }

    def action_open_approve(self):
        return self._open_decision("approve")

    def action_open_reject(self):
        return self._open_decision("reject")

    def action_open_override(self):
        return self._open_decision("override")

    # ------------------------------------------------------------------
    # Cron
    # ------------------------------------------------------------------

    @api.model
    def _cron_check_gates(self, limit=50):
        """Evaluate waiting deployments whose gates may have changed (CI, freeze, expiry)."""
        now = fields.Datetime.now()
        due = self.search([("state", "=", "waiting"), ("gates_recheck_at", "<=", now)],
                          order="gates_recheck_at, id", limit=limit)
        IrCron = self.env["ir.cron"]
        IrCron._commit_progress(remaining=len(due))
        for deployment in due:
            try:
                with self.env.cr.savepoint():
                    locked = deployment.try_lock_for_update()
                    if locked and locked.state == "waiting":
                        locked._advance_gates()
            except (DeployError, UserError, ValueError):
                _logger.exception("Evaluating the gates of %s failed", deployment.name)
            if not IrCron._commit_progress(1):
                break
