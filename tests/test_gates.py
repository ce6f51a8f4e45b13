"""Issue 12's gates on real records: each gate passing, failing and pending, approval
rules, freeze windows and their override, the cron, and the HTTP API waiting for approval.

CI is read over real loopback HTTP from engine/tests/github_fake.py, which answers like
GitHub's documented REST endpoints; DigitalOcean is the simulator (DeployCommon).
"""

from datetime import timedelta
from unittest.mock import patch

from odoo import fields, http
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.do_deploy.engine.simulator import ManualClock
from odoo.addons.do_deploy.engine.tests.github_fake import TOKEN, FakeGitHub

from .common import DeployCommon
from .test_api_common import ApiCase
from .test_ui_tours import PipelineTourCase

REPOSITORY = "acme/shop"
SHA = "0123456789abcdef0123456789abcdef01234567"
TRIGGER = "/api/v1/deployments"


class GatesCommon(DeployCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager_2 = new_test_user(cls.env, "dep_manager_2",
                                      groups="do_deploy.group_do_deploy_manager",
                                      name="Mia Manager")
        cls.approvers = cls.env["res.groups"].create({"name": "Release approvers"})
        cls.approvers.user_ids = cls.manager | cls.manager_2
        cls.production.write({"approval_required": True,
                              "approver_group_id": cls.approvers.id})

    def gate(self, deployment, kind):
        return deployment.gate_ids.filtered(lambda g: g.gate == kind)

    def request(self, tag="v1.1.0", user=None, app=None, **values):
        return self.deploy(tag, app=app or self.production, user=user or self.user, **values)

    def decide(self, deployment, user, approved=True, comment=""):
        deployment.with_user(user)._record_approval(approved, comment)
        deployment.invalidate_recordset()


class TestApproval(GatesCommon):
    def test_production_requires_approval_by_default(self):
        app = self.env["do.app"].create({"name": "shop", "account_id": self.account.id,
                                         "do_app_id": "shop", "environment": "production"})
        self.assertTrue(app.approval_required)
        self.assertEqual(app.approver_group_id, self.env.ref("do_deploy.group_do_deploy_manager"))
        app.environment = "staging"
        self.assertFalse(app.approval_required)

    def test_user_request_waits_and_runs_once_approved(self):
        deployment = self.request()
        self.assertEqual(deployment.state, "waiting")
        self.assertEqual(deployment.requested_by_id, self.user)
        self.assertTrue(deployment.waiting_since)
        gate = self.gate(deployment, "approval")
        self.assertEqual(gate.status, "pending")
        self.assertIn("0 of 1 approvals", gate.message)
        # Both approvers got an activity; the runner does not see the deployment.
        activities = deployment.activity_ids
        self.assertEqual(activities.user_id, self.manager | self.manager_2)
        self.assertIn(f"/do_deploy/approval/{deployment.id}?decision=approve",
                      activities[0].note)
        self.run_cron()
        self.assertEqual(deployment.state, "waiting")
        self.decide(deployment, self.manager, comment="Change CHG-42 approved")
        self.assertEqual(deployment.state, "queued")
        self.assertEqual(self.gate(deployment, "approval").status, "passed")
        self.assertEqual(self.gate(deployment, "approval").evidence_by, "Max Manager")
        self.assertFalse(deployment.activity_ids, "the approval requests are closed")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        self.assertEqual(deployment.approval_ids.validity, "counted")

    def test_self_approval_refused(self):
        deployment = self.request(user=self.manager)
        self.assertEqual(deployment.activity_ids.user_id, self.manager_2,
                         "the requester is not asked")
        self.assertFalse(deployment.with_user(self.manager).can_decide_approval)
        self.assertTrue(deployment.with_user(self.manager_2).can_decide_approval)
        with self.assertRaisesRegex(AccessError, "someone else has to approve"):
            self.decide(deployment, self.manager)
        with self.assertRaisesRegex(AccessError, "not one of the approvers"):
            self.decide(deployment, self.user)
        self.assertFalse(deployment.approval_ids)
        self.assertEqual(deployment.state, "waiting")

    def test_rejection_ends_it_with_its_code(self):
        before = len(self.sim_deployments(self.production))
        deployment = self.request()
        with self.assertRaisesRegex(UserError, "Say why"):
            self.decide(deployment, self.manager, approved=False)
        self.decide(deployment, self.manager, approved=False, comment="Not during the sale")
        self.assertEqual(deployment.state, "failed")
        self.assertEqual(deployment.error_code_id.code, "APPROVAL_REJECTED")
        self.assertEqual(deployment.error_code_id.severity,
                         self.gate(deployment, "approval").severity)
        self.assertIn("Rejected by Max Manager", deployment.error_message)
        self.assertFalse(deployment.activity_ids)
        self.assertEqual(len(self.sim_deployments(self.production)), before,
                         "DigitalOcean was not touched")

    def test_tag_or_spec_change_voids_approvals(self):
        self.production.approvals_required = 2
        deployment = self.request()
        self.decide(deployment, self.manager)
        self.assertIn("1 of 2 approvals", self.gate(deployment, "approval").message)
        deployment.with_user(self.manager_2).image_tag = "v1.2.0"
        deployment.invalidate_recordset()
        gate = self.gate(deployment, "approval")
        self.assertIn("0 of 2 approvals", gate.message)
        self.assertIn("voided by a change of tag or spec", gate.message)
        self.assertEqual(deployment.approval_ids.validity, "voided")
        # A spec change (the components) voids them as well.
        self.decide(deployment, self.manager)
        deployment.with_user(self.manager_2).components = "web"
        deployment.invalidate_recordset()
        self.assertIn("0 of 2 approvals", self.gate(deployment, "approval").message)
        self.assertEqual(deployment.state, "waiting")
        self.assertEqual(deployment.activity_ids.user_id, self.manager | self.manager_2,
                         "the approver whose approval was voided is asked again")

    def test_expired_approval_and_expired_request(self):
        self.production.write({"approvals_required": 2, "approval_valid_hours": 1,
                               "approval_request_expiry_hours": 48})
        deployment = self.request()
        self.decide(deployment, self.manager)
        deployment.approval_ids.decided_at = fields.Datetime.now() - timedelta(hours=2)
        self.decide(deployment, self.manager_2)
        self.assertEqual(deployment.state, "waiting")
        gate = self.gate(deployment, "approval")
        self.assertIn("1 of 2 approvals (1 expired)", gate.message)
        self.assertEqual(deployment.approval_ids.mapped("validity"), ["counted", "expired"])
        deployment.approval_requested_at = fields.Datetime.now() - timedelta(hours=49)
        deployment.action_check_gates()
        self.assertEqual(deployment.state, "failed")
        self.assertEqual(deployment.error_code_id.code, "APPROVAL_EXPIRED")

    def test_user_cannot_deploy_production_without_approval_gate(self):
        self.production.approval_required = False
        with self.assertRaises(AccessError):
            self.request()


class TestFreeze(GatesCommon):
    def window(self, mode="wait", **values):
        now = fields.Datetime.now()
        return self.env["do.freeze.window"].create({
            "name": "Month-end close", "kind": "one_off", "mode": mode, "timezone": "UTC",
            "date_start": now - timedelta(hours=1), "date_end": now + timedelta(hours=2),
            **values})

    def test_freeze_makes_it_wait_then_passes_when_it_ends(self):
        window = self.window(environment="staging")
        deployment = self.deploy()
        self.assertEqual(deployment.state, "waiting")
        gate = self.gate(deployment, "freeze")
        self.assertEqual(gate.status, "pending")
        self.assertIn("Month-end close", gate.message)
        self.assertTrue(deployment.held_by_freeze)
        # Another environment is not frozen.
        other = self.deploy(app=self.production, user=self.manager)
        self.production.approval_required = False
        other.action_check_gates()
        self.assertEqual(other.state, "queued")
        window.date_end = fields.Datetime.now() - timedelta(minutes=1)
        window.date_start = fields.Datetime.now() - timedelta(hours=2)
        deployment.gates_recheck_at = fields.Datetime.now()
        with patch.object(type(self.env["ir.cron"]), "_commit_progress", return_value=60.0):
            self.env["do.deployment"]._cron_check_gates()
        self.assertEqual(deployment.state, "queued")

    def test_weekly_window_in_a_time_zone(self):
        window = self.env["do.freeze.window"].create({
            "name": "Weekend", "kind": "weekly", "timezone": "Europe/Paris",
            "start_day": "4", "start_time": 16.0, "end_day": "0", "end_time": 8.0})
        self.assertEqual(window.description, "Friday 16:00 - Monday 08:00 (Europe/Paris)")
        # Friday 2027-01-08 17:00 in Paris is 16:00 UTC: frozen until Monday 07:00 UTC.
        with patch.object(fields.Datetime, "now",
                          return_value=fields.Datetime.to_datetime("2027-01-08 16:00:00")):
            deployment = self.deploy()
        self.assertEqual(deployment.state, "waiting")
        self.assertEqual(deployment.gates_recheck_at,
                         fields.Datetime.to_datetime("2027-01-11 07:00:00"))
        with self.assertRaises(ValidationError):
            window.end_time = 16.0
            window.end_day = "4"
            window.flush_recordset()

    def test_refused_by_a_freeze_and_the_override_recorded(self):
        self.window(mode="refuse")
        deployment = self.deploy()
        self.assertEqual(deployment.state, "failed")
        self.assertEqual(deployment.error_code_id.code, "DEPLOY_FROZEN")
        self.assertTrue(deployment.held_by_freeze)
        with self.assertRaises(AccessError):
            deployment.with_user(self.user)._override_freeze("hotfix")
        with self.assertRaisesRegex(UserError, "needs a reason"):
            deployment.with_user(self.manager)._override_freeze("  ")
        action = deployment.with_user(self.manager)._override_freeze(
            "Hotfix for INC-7, payments down")
        retry = self.env["do.deployment"].browse(action["res_id"])
        self.assertEqual(retry.retry_of_id, deployment)
        self.assertEqual(retry.state, "queued")
        self.assertTrue(retry.gates_flagged)
        self.assertEqual(retry.freeze_override_by_id, self.manager)
        self.assertEqual(retry.freeze_override_reason, "Hotfix for INC-7, payments down")
        gate = self.gate(retry, "freeze")
        self.assertEqual((gate.status, gate.flagged), ("passed", True))
        self.assertIn("Emergency override by Max Manager", gate.message)
        self.assertIn("Hotfix for INC-7", retry.message_ids[0].body)
        self.run_until_idle()
        self.assertEqual(retry.state, "done")

    def test_override_of_a_waiting_deployment_is_bound_to_its_tag(self):
        self.window()
        deployment = self.deploy()
        deployment.with_user(self.manager)._override_freeze("Security fix")
        self.assertEqual(deployment.state, "queued")
        self.assertTrue(deployment.gates_flagged)


class TestGateKinds(GatesCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.github = FakeGitHub(ManualClock()).start()
        cls.addClassCleanup(cls.github.stop)
        cls.account.write({"github_token": TOKEN, "github_api_url": cls.github.url})

    def setUp(self):
        super().setUp()
        self.github.repos.clear()
        self.github.add_commit(REPOSITORY, SHA)

    def ci_app(self, **values):
        self.staging.write({"gate_ci": True, "github_repository": REPOSITORY,
                            "ci_required_checks": "tests, image-scan",
                            "ci_security_checks": "image-scan", **values})

    def test_ci_passed(self):
        self.ci_app()
        self.github.add_check_run(REPOSITORY, SHA, "tests")
        self.github.add_check_run(REPOSITORY, SHA, "image-scan")
        deployment = self.deploy(commit_sha=SHA)
        self.assertEqual(deployment.state, "queued")
        gate = self.gate(deployment, "ci_passed")
        self.assertEqual(gate.status, "passed")
        self.assertTrue(gate.evidence_link.startswith(f"https://github.com/{REPOSITORY}/runs/"))
        request = self.github.requests[-1]
        self.assertIn(f"/repos/{REPOSITORY}/commits/{SHA}/", request["path"])

    def test_ci_pending_then_passes_on_the_cron(self):
        self.ci_app()
        self.github.add_check_run(REPOSITORY, SHA, "tests")
        run = self.github.add_check_run(REPOSITORY, SHA, "image-scan", status="in_progress")
        deployment = self.deploy(commit_sha=SHA)
        self.assertEqual(deployment.state, "waiting")
        self.assertEqual(self.gate(deployment, "ci_passed").status, "pending")
        self.assertTrue(deployment.gates_recheck_at)
        for check in self.github.repos[REPOSITORY][SHA]["check_runs"]:
            if check["id"] == run:
                check.update(status="completed", conclusion="success")
        deployment.gates_recheck_at = fields.Datetime.now()
        with patch.object(type(self.env["ir.cron"]), "_commit_progress", return_value=60.0):
            self.env["do.deployment"]._cron_check_gates()
        self.assertEqual(deployment.state, "queued")

    def test_ci_failed_and_scan_failed(self):
        self.ci_app()
        self.github.add_check_run(REPOSITORY, SHA, "tests", conclusion="failure")
        self.github.add_check_run(REPOSITORY, SHA, "image-scan")
        deployment = self.deploy(commit_sha=SHA)
        self.assertEqual((deployment.state, deployment.error_code_id.code),
                         ("failed", "CI_CHECKS_FAILED"))
        gate = self.gate(deployment, "ci_passed")
        self.assertEqual(gate.error_code_id.code, "CI_CHECKS_FAILED")
        self.assertTrue(gate.mitigation)
        other = "89abcdef0123456789abcdef0123456789abcdef"
        self.github.add_commit(REPOSITORY, other)
        self.github.add_check_run(REPOSITORY, other, "tests")
        self.github.add_check_run(REPOSITORY, other, "image-scan", conclusion="failure")
        deployment = self.deploy(commit_sha=other)
        self.assertEqual(deployment.error_code_id.code, "IMAGE_SCAN_FAILED")

    def test_ci_commit_from_the_tag_and_a_refused_token(self):
        self.ci_app()
        deployment = self.deploy("v9.9.9")
        self.assertEqual(deployment.error_code_id.code, "CI_COMMIT_NOT_FOUND")
        self.account.github_token = "ghp_wrongTOKEN000000000000000000000000000"
        deployment = self.deploy(commit_sha=SHA)
        self.assertEqual(deployment.error_code_id.code, "GITHUB_UNAUTHORIZED")
        for text in (deployment.error_message, *deployment.gate_ids.mapped("message"),
                     *deployment.message_ids.mapped("body")):
            self.assertNotIn("wrongTOKEN", text or "")

    def test_tested_in_staging(self):
        self.production.write({"approval_required": False, "gate_staging": True,
                               "staging_app_id": self.staging.id,
                               "staging_max_age_hours": 24})
        refused = self.deploy("v1.2.0", app=self.production)
        self.assertEqual(refused.error_code_id.code, "NOT_TESTED_IN_STAGING")
        staging_run = self.deploy("v1.2.0")
        waiting = self.deploy("v1.2.0", app=self.production)
        self.assertEqual(waiting.state, "waiting", "a staging run in progress is waited for")
        self.assertEqual(self.gate(waiting, "tested_in_staging").status, "pending")
        self.run_until_idle()
        self.assertEqual(staging_run.state, "done")
        waiting.action_check_gates()
        self.assertEqual(waiting.state, "queued")
        gate = self.gate(waiting, "tested_in_staging")
        self.assertEqual((gate.status, gate.evidence_by), ("passed", "Max Manager"))
        self.run_until_idle()
        staging_run.end_date = fields.Datetime.now() - timedelta(hours=30)
        too_old = self.deploy("v1.2.0", app=self.production)
        self.assertEqual(too_old.error_code_id.code, "NOT_TESTED_IN_STAGING")
        self.assertIn("longer than the", too_old.error_message)

    def test_confirmation_items_ticked_by_a_named_person(self):
        self.staging.confirmation_item_ids = [
            fields.Command.create({"name": "Feature flags configured"}),
            fields.Command.create({"name": "Migrations reviewed"})]
        deployment = self.deploy()
        self.assertEqual(deployment.state, "waiting")
        self.assertEqual(deployment.confirmation_ids.mapped("state"), ["pending", "pending"])
        flags, migrations = deployment.confirmation_ids
        deployment.with_user(self.user)._record_confirmation(flags, True, "flag shop_v2 on")
        self.assertEqual(deployment.state, "waiting")
        gate = deployment.gate_ids.filtered(lambda g: g.name == "Feature flags configured")
        self.assertEqual((gate.status, gate.evidence_by), ("passed", "Dana User"))
        with self.assertRaisesRegex(UserError, "Say why"):
            deployment.with_user(self.user)._record_confirmation(migrations, False)
        deployment.with_user(self.user)._record_confirmation(migrations, True)
        self.assertEqual(deployment.state, "queued")

    def test_confirmation_declined(self):
        self.staging.confirmation_item_ids = [
            fields.Command.create({"name": "Feature flags configured"})]
        deployment = self.deploy()
        deployment.with_user(self.user)._record_confirmation(
            deployment.confirmation_ids, False, "flags not ready")
        self.assertEqual((deployment.state, deployment.error_code_id.code),
                         ("failed", "CONFIRMATION_REFUSED"))

    def test_image_exists(self):
        self.staging.gate_image = True
        deployment = self.deploy("v7.0.0")
        self.assertEqual(self.gate(deployment, "image_exists").status, "passed")
        self.assertEqual(deployment.state, "queued")
        refused = self.deploy("v7.0.1", push=False)
        self.assertEqual(refused.error_code_id.code, "IMAGE_TAG_MISSING")
        self.assertEqual(self.gate(refused, "image_exists").status, "failed")
        self.staging.gate_image_wait = True
        waiting = self.deploy("v7.0.2", push=False)
        self.assertEqual(self.gate(waiting, "image_exists").status, "pending")
        self.sim.push_tag("odoo", "v7.0.2")
        waiting.action_check_gates()
        self.assertEqual(waiting.state, "queued")

    def test_gate_timeout(self):
        self.staging.write({"gate_max_wait_hours": 1})
        self.staging.confirmation_item_ids = [fields.Command.create({"name": "Flags"})]
        deployment = self.deploy()
        deployment.waiting_since = fields.Datetime.now() - timedelta(hours=2)
        deployment.action_check_gates()
        self.assertEqual(deployment.error_code_id.code, "GATE_TIMEOUT")

    def test_waiting_deployment_cancelled(self):
        deployment = self.request(user=self.user)
        deployment.with_user(self.manager).action_cancel()
        self.assertEqual(deployment.state, "canceled")
        self.assertFalse(deployment.activity_ids)


@tagged("post_install", "-at_install")
class TestGatesApi(ApiCase):
    """A CI trigger for production waits for approval, and the API shows the gates."""

    def test_trigger_for_production_waits_for_approval(self):
        self.production.approval_required = True
        response = self.api("POST", TRIGGER, {
            "app": self.production.name, "image_tag": "v1.1.0", "task_id": self.task.id,
            "idempotency_key": "gh-run-7-1", "commit_sha": SHA}, key=self.user_key)
        self.assertEqual(response.status_code, 201, response.text)
        self.assertEqual(response.json()["state"], "waiting")
        deployment = self.env["do.deployment"].browse(response.json()["id"])
        self.assertEqual(deployment.commit_sha, SHA)
        body = self.api("GET", f"{TRIGGER}/{deployment.id}", key=self.user_key).json()
        self.assertEqual(body["state"], "waiting")
        self.assertFalse(body["finished"])
        gates = body["gates"]
        self.assertTrue(gates["waiting_since"].endswith("Z"))
        self.assertEqual([(g["gate"], g["status"]) for g in gates["items"]],
                         [("approval", "pending")])
        deployment.with_user(self.manager)._record_approval(True, "ok")
        body = self.api("GET", f"{TRIGGER}/{deployment.id}", key=self.user_key).json()
        self.assertEqual(body["state"], "queued")
        self.assertEqual(body["gates"]["items"][0]["status"], "passed")
        self.assertEqual(body["gates"]["approvals"][0]["by"], "Max Manager")

    def test_approval_page_from_the_activity_link(self):
        self.production.approval_required = True
        deployment = self.deploy(app=self.production, user=self.user)
        self.authenticate("dep_manager", "dep_manager")
        page = self.url_open(f"/do_deploy/approval/{deployment.id}?decision=approve")
        self.assertEqual(page.status_code, 200)
        self.assertIn("asks to deploy", page.text)
        response = self.url_open(f"/do_deploy/approval/{deployment.id}", data={
            "decision": "reject", "comment": "", "csrf_token": http.Request.csrf_token(self)})
        self.assertIn("Say why", response.text)
        response = self.url_open(f"/do_deploy/approval/{deployment.id}", data={
            "decision": "approve", "comment": "LGTM", "csrf_token": http.Request.csrf_token(self)})
        self.assertEqual(response.status_code, 200)
        deployment.invalidate_recordset()
        self.assertEqual(deployment.state, "queued")
        self.assertEqual(deployment.approval_ids.comment, "LGTM")


@tagged("post_install", "-at_install")
class TestGatesTour(PipelineTourCase, GatesCommon, HttpCase):
    """In Chromium: a Deployment User requests a production deployment, a Deployment
    Manager approves it from the activity's link, and it runs to done."""

    def test_request_approve_from_the_activity_and_run(self):
        task = self.env["project.task"].create({
            "name": "Release v1.2.0: new checkout", "project_id": self.project.id,
            "stage_id": self.stage_ready.id, "user_ids": [(4, self.user.id)]})
        # The first tour on a fresh database also builds the asset bundles.
        self.start_tour(f"/odoo/project.task/{task.id}", "do_deploy_gates_request",
                        login="dep_user", timeout=240)
        deployment = task.deployment_ids
        self.assertEqual((deployment.state, deployment.app_id), ("waiting", self.production))
        self.assertEqual(deployment.requested_by_id, self.user)
        # The runner plays the cron once the manager's browser has read the deployment
        # (not while the browser logs in: both share the test cursor). While it waits it
        # has nothing to do, so only the approval lets it run.
        self.watch_tour(f"/odoo/do.deployment/{deployment.id}", "do_deploy_gates_approve",
                        "dep_manager", start_when=lambda records: deployment.id in records.ids
                        and records._name == "do.deployment")
        self.assertEqual(deployment.state, "done")
        self.assertEqual(deployment.approval_ids.user_id, self.manager)
        self.assertEqual(deployment.approval_ids.comment, "Release CHG-1042 approved")
