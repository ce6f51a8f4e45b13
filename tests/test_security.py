from unittest.mock import patch

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import RUNNER_LOGGER, DeployCommon, deployment_class


@tagged("post_install", "-at_install")
class TestSecurity(DeployCommon):
    def test_user_deploys_to_staging_not_production(self):
        deployment = self.deploy("v1.1.0", user=self.user)
        self.assertEqual(deployment.state, "queued")
        self.assertEqual(deployment.requested_by_id, self.user)
        count = self.env["do.deployment"].search_count([])
        with self.assertRaisesRegex(AccessError, "Deployment Manager"):
            self.deploy("v1.1.0", app=self.production, user=self.user)
        self.assertEqual(self.env["do.deployment"].search_count([]), count)
        self.assertEqual(self.deploy("v1.1.0", app=self.production).state, "queued")

    def test_user_reads_history_but_not_tokens(self):
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        as_user = deployment.with_user(self.user)
        self.assertEqual(as_user.state, "done")
        self.assertEqual(len(as_user.step_ids.read(["state", "log", "data"])), 8)
        self.assertEqual(self.account.with_user(self.user).name, "Simulator")
        with self.assertRaises(AccessError):
            self.account.with_user(self.user).read(["token"])
        with self.assertRaises(AccessError):
            self.staging.with_user(self.user).write({"budget_step4": 1})
        with self.assertRaises(AccessError):
            as_user.write({"state": "done"})
        with self.assertRaises(AccessError):
            as_user.step_ids[0].write({"state": "failed"})
        self.assertEqual(self.account.with_user(self.manager).token, self.account.token)

    def test_plain_user_has_no_access(self):
        deployment = self.deploy("v1.1.0")
        with self.assertRaises(AccessError):
            deployment.with_user(self.plain).read(["state"])
        with self.assertRaises(AccessError):
            self.deploy("v1.1.0", user=self.plain)
        with self.assertRaises(AccessError):
            self.staging.with_user(self.plain).read(["name"])
        # The task form still works for people without deployment rights.
        self.assertEqual(self.task.with_user(self.plain).read(["deploy_state"])[0][
            "deploy_state"], "deploying")

    def test_token_never_in_logs_or_chatter(self):
        self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        token = self.account.token
        logs = " ".join(self.env["do.deployment.step"].search([]).mapped(
            lambda s: (s.log or "") + str(s.data or "") + (s.error_message or "")))
        self.assertTrue(logs)
        self.assertNotIn(token, logs)
        bodies = " ".join(self.env["mail.message"].search([]).mapped(lambda m: m.body or ""))
        self.assertNotIn(token, bodies)

    def test_token_in_an_unexpected_error_is_redacted_in_the_server_log(self):
        """A crash whose text carries the token is logged, redacted, on the server."""
        token = self.account.token
        deployment = self.deploy("v1.1.0")
        leak = RuntimeError(f"connection to bearer {token} failed")
        with patch.object(deployment_class(self.env), "_step_update_spec", side_effect=leak), \
                self.assertLogs(RUNNER_LOGGER, "ERROR") as logs:
            self.run_cron()
        output = "\n".join(logs.output)
        self.assertIn("unexpected error", output)
        self.assertIn("RuntimeError", output)
        self.assertNotIn(token, output)
        self.assertNotIn(token, deployment.step_ids.mapped(lambda step: step.log or ""))

    def test_multi_company(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        other_account = self.env["do.account"].create({
            "name": "Other", "backend": "simulator", "api_url": self.server.url,
            "token": "dop_v1_other", "company_id": other_company.id})
        other_app = self.env["do.app"].create({
            "name": "other-app", "account_id": other_account.id, "do_app_id": "x"})
        other = self.env["do.deployment"].create({"app_id": other_app.id, "image_tag": "v1"})
        self.assertEqual(other.company_id, other_company)
        Deployment = self.env["do.deployment"].with_user(self.manager)
        self.assertNotIn(other, Deployment.search([]))
        with self.assertRaises(AccessError):
            other.with_user(self.manager).read(["state"])
        with self.assertRaises(AccessError):
            other_app.with_user(self.manager).read(["name"])
        both = new_test_user(self.env, "both", groups="do_deploy.group_do_deploy_manager",
                             company_ids=[(6, 0, (self.env.company | other_company).ids)])
        self.assertIn(other, self.env["do.deployment"].with_user(both).with_context(
            allowed_company_ids=(self.env.company | other_company).ids).search([]))

    def test_a_task_of_another_company_is_refused(self):
        """A deployment of this company's app may not name another company's task, or
        step 8 would move and write on it."""
        other_company = self.env["res.company"].create({"name": "Other Co"})
        other_project = self.env["project.project"].create(
            {"name": "Their project", "company_id": other_company.id})
        other_task = self.env["project.task"].create(
            {"name": "Their task", "project_id": other_project.id,
             "company_id": other_company.id})
        count = self.env["do.deployment"].search_count([])
        with self.assertRaises(UserError):
            self.env["do.deployment"].create(
                {"app_id": self.staging.id, "image_tag": "v1.1.0", "task_id": other_task.id})
        draft = self.deploy("v1.1.0", start=False)
        with self.assertRaises(UserError):
            draft.write({"task_id": other_task.id})
        self.assertEqual(self.env["do.deployment"].search_count([]), count + 1)

    def test_users_write_only_what_the_form_lets_them_edit(self):
        """Issue 9, defect 1: writes are an allow-list per state and environment."""
        locked = [{"kind": "rollback"}, {"components": "worker"}, {"force_rebuild": True},
                  {"name": "DEP-FAKE"}, {"rollback_criteria": {"ok": True}},
                  {"idempotency_key": "replayed"}, {"image_tag": "v9.9.9"},
                  {"requested_by_id": self.manager.id}, {"state": "done"}]
        draft = self.deploy("v1.1.0", user=self.user, start=False).with_user(self.user)
        draft.write({"note": "Login page", "components": "web", "force_rebuild": True,
                     "image_tag": "v1.1.0"})
        for vals in locked[:1] + locked[3:6] + locked[7:]:
            with self.subTest(state="draft", vals=vals), self.assertRaisesRegex(
                    AccessError, "DEPLOYMENT_FIELD_LOCKED"):
                draft.write(vals)
        draft.action_start()
        for state in ("queued", "done"):
            if state == "done":
                self.run_until_idle()
            self.assertEqual(draft.state, state)
            for vals in locked:
                with self.subTest(state=state, vals=vals), self.assertRaisesRegex(
                        AccessError, "DEPLOYMENT_FIELD_LOCKED"):
                    draft.write(vals)
            draft.write({"note": f"Still a note when {state}"})
        deployment = draft.with_env(self.env)
        self.assertEqual((deployment.kind, deployment.components, deployment.name[:3]),
                         ("deploy", "web", "DEP"))
        self.assertFalse(deployment.idempotency_key)
        # The pipeline (sudo) wrote its fields all along: the deployment finished.
        self.assertEqual(deployment.step_ids.mapped("state"), ["done"] * 8)
        # Production deployments: only Deployment Managers change anything, the note too.
        production = self.deploy("v1.1.0", app=self.production, start=False)
        with self.assertRaisesRegex(AccessError, "DEPLOYMENT_FIELD_LOCKED"):
            production.with_user(self.user).write({"note": "mine"})
        production.with_user(self.manager).write({"note": "Release", "components": "web"})
        self.assertEqual(production.note, "Release")

    def test_create_takes_the_requester_from_the_user(self):
        """Issue 9, defect 1: step 8 posts as the requester, so a user cannot name
        someone else, nor create what only the pipeline creates."""
        Deployment = self.env["do.deployment"].with_user(self.user)
        self.sim.push_tag("odoo", "v1.1.0")
        base = {"app_id": self.staging.id, "image_tag": "v1.1.0", "task_id": self.task.id}
        count = Deployment.search_count([])
        for vals in ({"requested_by_id": self.manager.id}, {"name": "DEP-FAKE"},
                     {"kind": "rollback"}, {"rollback_criteria": {"ok": True}},
                     {"do_deployment_id": "someone-elses"}):
            with self.subTest(vals=vals), self.assertRaisesRegex(
                    AccessError, "DEPLOYMENT_FIELD_LOCKED"):
                Deployment.create({**base, **vals})
        self.assertEqual(Deployment.search_count([]), count)
        mine = Deployment.create({**base, "requested_by_id": self.user.id})
        self.assertEqual(mine.requested_by_id, self.user)
        self.assertEqual(Deployment.create(base).requested_by_id, self.user)

    def test_a_deployment_user_does_not_cancel_a_queued_rollback(self):
        """Issue 9, defect 8: rolling back is a Deployment Manager's decision, and so is
        calling it off, also on staging."""
        deployment = self.deploy("v1.1.0", user=self.user)
        self.run_until_idle()
        action = deployment.with_user(self.manager).action_rollback(reason="Customer bug")
        rollback = self.env["do.deployment"].browse(action["res_id"])
        self.assertEqual((rollback.state, rollback.environment), ("queued", "staging"))
        with self.assertRaisesRegex(AccessError, "ROLLBACK_CANCEL_DENIED"):
            rollback.with_user(self.user).action_cancel()
        self.assertEqual(rollback.state, "queued")
        rollback.with_user(self.manager).action_cancel()
        self.assertEqual(rollback.state, "canceled")

    def test_manager_edits_of_error_codes_survive_an_update(self):
        """Issue 9, defect 8: the catalogue reload every module update runs keeps what a
        Deployment Manager changed and refreshes the rest."""
        ErrorCode = self.env["do.error.code"]
        code = ErrorCode._get_by_code("HEALTH_CHECK_FAIL")
        description = code.name
        code.with_user(self.manager).write({"mitigation": "Page the on-call DBA first."})
        self.assertEqual(code.edited_fields, "mitigation")
        code.write({"name": "An older catalogue's description"})
        self.assertEqual(code.edited_fields, "mitigation")
        ErrorCode._load_catalogue()  # data/do_error_code_data.xml, on every update
        self.assertEqual(code.mitigation, "Page the on-call DBA first.")
        self.assertEqual(code.name, description)

    def test_live_updates_reach_only_users_of_the_deployments_company(self):
        """Issue 9, defect 8: the bus tells open screens that a deployment changed; a
        Deployment User of another company is not told."""
        other_company = self.env["res.company"].create({"name": "Other Co"})
        outsider = new_test_user(
            self.env, "dep_outsider", groups="do_deploy.group_do_deploy_user",
            company_id=other_company.id, company_ids=[(6, 0, other_company.ids)])
        Bus = self.env["bus.bus"].sudo()
        last = Bus.search([], order="id desc", limit=1).id or 0
        self.deploy("v1.1.0")
        self.run_until_idle()
        sent = Bus.search([("id", ">", last)]).filtered(
            lambda bus: "do_deploy/updated" in bus.message)
        self.assertTrue(sent)
        channels = " ".join(sent.mapped("channel"))
        self.assertIn(f'"res.partner",{self.user.partner_id.id}]', channels)
        self.assertIn(f'"res.partner",{self.manager.partner_id.id}]', channels)
        self.assertNotIn(f'"res.partner",{outsider.partner_id.id}]', channels)
        self.assertNotIn('"res.groups"', channels)

    def test_bad_input(self):
        Deployment = self.env["do.deployment"].with_user(self.manager)
        count = Deployment.search_count([])
        cases = [
            ({"app_id": 999999, "image_tag": "v1.1.0"}, "APP_NOT_FOUND"),
            ({"app_id": False, "image_tag": "v1.1.0"}, "APP_NOT_FOUND"),
            ({"app_id": self.staging.id, "image_tag": ""}, "IMAGE_TAG_MISSING"),
            ({"app_id": self.staging.id}, "IMAGE_TAG_MISSING"),
            ({"app_id": self.staging.id, "image_tag": "bad tag!"}, "IMAGE_TAG_MISSING"),
            ({"app_id": self.staging.id, "image_tag": "-x"}, "IMAGE_TAG_MISSING"),
            ({"app_id": self.staging.id, "image_tag": "v1", "task_id": 999999},
             "TASK_NOT_FOUND"),
        ]
        for vals, code in cases:
            with self.subTest(vals=vals), self.assertRaisesRegex(ValidationError, code):
                Deployment.create(vals)
        self.assertEqual(Deployment.search_count([]), count)
        self.assertEqual(self.env["do.deployment.step"].search_count(
            [("deployment_id", "not in", Deployment.search([]).ids)]), 0)

    def test_deploy_to_busy_app_is_queued(self):
        self.sim.set_timing(self.staging.do_app_id, build_seconds=30)
        first = self.deploy("v1.1.0", user=self.user)
        self.run_cron()
        second = self.deploy("v1.2.0", user=self.user)
        self.assertEqual(second.state, "queued")
        self.assertTrue(any(first.name in (m.body or "") for m in second.message_ids))
        self.run_until_idle()
        self.assertEqual(second.state, "done")

    def test_cancel_before_the_app_changes(self):
        deployment = self.deploy("v1.1.0", user=self.user)
        deployment.with_user(self.user).action_cancel()
        self.assertEqual(deployment.state, "canceled")
        self.assertEqual(set(deployment.step_ids.mapped("state")), {"skipped"})
        self.assertEqual(len(self.sim_deployments(self.staging)), 1)
