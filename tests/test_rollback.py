from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.do_deploy.engine.client import AppPlatformClient

from .common import DeployCommon


@tagged("post_install", "-at_install")
class TestRollback(DeployCommon):
    def test_automatic_rollback_and_incident(self):
        self.task.message_subscribe(partner_ids=self.user.partner_id.ids)
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")
        rollback = deployment.rollback_id
        self.assertEqual(rollback.kind, "rollback")
        self.assertEqual(rollback.rollback_of_id, deployment)
        self.assertEqual(rollback.state, "done", rollback.step_ids.mapped("log"))
        self.assertEqual(rollback.step_ids.mapped("code"), [
            "rb_validate", "rb_create", "rb_monitor", "rb_health_check", "rb_commit",
            "rb_revert"])
        # The revert only runs after a failed rollback step.
        self.assertEqual(rollback.step_ids.mapped("state"), ["done"] * 5 + ["skipped"])
        self.assertEqual(rollback.progress, 100.0)
        # DigitalOcean: the rollback deployment serves, the app is unpinned, v1.0.0 is live.
        app = self.sim.get_app(self.staging.do_app_id)
        self.assertEqual(app["active_deployment"]["id"], rollback.do_deployment_id)
        self.assertNotIn("pinned_deployment", app)
        self.assertEqual(self.staging.live_version, "v1.0.0")
        # The SOP's five rollback success criteria, recorded.
        criteria = self.step(rollback, "rb_commit").data["criteria"]
        self.assertEqual(criteria, {
            "previous_deployment_active": True, "health_check_passed": True,
            "traffic_on_previous_version": True, "incident_created": True,
            "stakeholders_notified": True})
        self.assertEqual(rollback.rollback_criteria, criteria)
        # The incident task.
        incident = deployment.incident_task_id
        self.assertEqual(incident, rollback.incident_task_id)
        self.assertEqual(incident.project_id, self.incident_project)
        self.assertEqual(sorted(incident.tag_ids.mapped("name")),
                         ["incident", "rollback", "staging"])
        self.assertIn("HEALTH_CHECK_FAIL", incident.description)
        self.assertIn(deployment.error_code_id.mitigation, incident.description)
        self.assertIn("Roll back: done", incident.description)
        self.assertIn(self.manager.partner_id, incident.message_partner_ids)
        self.assertIn(self.user.partner_id, incident.message_partner_ids)
        self.assertEqual(self.task.deploy_state, "rolled_back")
        self.assertTrue(any("INCIDENT" in (m.body or "") for m in self.task.message_ids))

    def test_manual_rollback(self):
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(self.staging.live_version, "v1.1.0")
        with self.assertRaises(AccessError):
            deployment.with_user(self.user).action_rollback()
        action = deployment.with_user(self.manager).action_rollback(reason="Customer bug")
        rollback = self.env["do.deployment"].browse(action["res_id"])
        self.assertEqual(rollback.state, "queued")
        self.assertEqual(rollback.rollback_reason, "Customer bug")
        self.assertEqual(rollback.requested_by_id, self.manager)
        self.run_until_idle()
        self.assertEqual(rollback.state, "done", rollback.step_ids.mapped("log"))
        self.assertEqual(deployment.state, "rolled_back")
        self.assertEqual(deployment.rollback_id, rollback)
        self.assertEqual(self.staging.live_version, "v1.0.0")
        self.assertTrue(rollback.incident_task_id)
        with self.assertRaises(UserError):
            deployment.with_user(self.manager).action_rollback()

    def test_manual_rollback_needs_a_previous_deployment(self):
        deployment = self.deploy("v1.1.0", start=False)
        with self.assertRaises(UserError):
            deployment.action_rollback()

    def test_failed_rollback_is_reverted_with_critical_incident(self):
        # The previous version turns unhealthy too: the rollback cannot succeed.
        self.sim.set_scenario("health-fail-always", tag="v1.0.0")
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        rollback = deployment.rollback_id
        self.assertStepFailed(rollback, "rb_health_check", "HEALTH_CHECK_FAIL")
        self.assertEqual(rollback.state, "failed")
        self.assertEqual(deployment.state, "failed")
        self.assertNotIn("pinned_deployment", self.sim.get_app(self.staging.do_app_id))
        self.assertTrue(any("reverted" in (m.body or "") for m in rollback.message_ids))
        incident = deployment.incident_task_id
        self.assertIn("Rollback failed", incident.name)
        self.assertIn("critical", incident.description)
        criteria = rollback.rollback_criteria
        self.assertFalse(criteria["health_check_passed"])
        self.assertTrue(criteria["incident_created"] and criteria["stakeholders_notified"])
        self.assertEqual(self.step(rollback, "rb_health_check").data["criteria"], criteria)

    def test_incident_without_incident_project(self):
        self.staging.incident_project_id = False
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")
        self.assertFalse(deployment.incident_task_id)
        self.assertFalse(deployment.rollback_id.rollback_criteria["incident_created"])
        self.assertTrue(any("No incident project" in (m.body or "")
                            for m in self.task.message_ids))

    def test_rollback_refused_by_digitalocean(self):
        self.sim.set_timing(self.staging.do_app_id, build_seconds=30)
        deployment = self.deploy("v1.4.0--build-fail")
        self.run_cron()
        self.assertEqual(deployment.current_step_id.code, "monitor")
        self.sim.set_scenario("quota", app_id=self.staging.do_app_id)
        self.run_until_idle()
        rollback = deployment.rollback_id
        self.assertEqual(rollback.state, "failed")
        self.assertEqual(self.step(rollback, "rb_create").state, "failed")
        self.assertEqual(deployment.state, "failed")
        self.assertTrue(deployment.incident_task_id)

    def test_retry_after_a_failure(self):
        self.account.token = "dop_v1_wrong"
        failed = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(failed.state, "failed")
        self.account.token = self.sim_token
        action = failed.with_user(self.user).action_retry()
        retry = self.env["do.deployment"].browse(action["res_id"])
        self.assertEqual((retry.state, retry.image_tag, retry.app_id),
                         ("queued", "v1.1.0", self.staging))
        self.run_until_idle()
        self.assertEqual(retry.state, "done")
        with self.assertRaises(UserError):
            retry.action_retry()

    def test_rollback_of_one_component_returns_to_that_components_version(self):
        """Issue 9, defect 2: the worker alone was retagged; rolling back returns it to its
        own previous version, while the web service serves what it served all along."""
        self.staging.component_names = "worker"
        self.deploy("v1.1.0")
        self.run_until_idle()
        failing = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        self.assertEqual(failing.state, "rolled_back", failing.step_ids.mapped("log"))
        rollback = failing.rollback_id
        self.assertEqual(rollback.state, "done", rollback.step_ids.mapped("log"))
        self.assertEqual(failing.previous_version, "v1.1.0", "the worker's, not the web's")
        self.assertEqual(rollback.image_tag, "v1.1.0")
        self.assertEqual(self.staging.live_version, "v1.1.0")
        spec = self.sim.get_app(self.staging.do_app_id)["spec"]
        self.assertEqual(spec["workers"][0]["image"]["tag"], "v1.1.0")
        self.assertEqual(spec["services"][0]["image"]["tag"], "v1.0.0")
        self.assertTrue(rollback.rollback_criteria["traffic_on_previous_version"])

    # A failed rollback must not leave the app pinned (issue 9, defect 4) ---------------

    def run_until_rollback_step(self, deployment, code, max_runs=30):
        """Run the cron until the automatic rollback of ``deployment`` is at step ``code``."""
        for _run in range(max_runs):
            rollback = deployment.rollback_id
            if rollback and rollback.current_step_id.code == code:
                return rollback
            self.run_cron()
            self.make_due()
        self.fail(f"the rollback never reached {code}")

    def assertRevertedAndUnpinned(self, rollback):
        app = self.sim.get_app(self.staging.do_app_id)
        self.assertNotIn("pinned_deployment", app, "the app is left pinned")
        revert = self.step(rollback, "rb_revert")
        self.assertEqual(revert.state, "done", rollback.step_ids.mapped("log"))
        revert_id = revert.data["revert_deployment_id"]
        # The deployment the revert made is followed until it serves.
        self.assertEqual(app["active_deployment"]["id"], revert_id)
        self.assertIn(revert_id, revert.log)
        self.assertIn("ACTIVE", revert.log)
        self.assertEqual(rollback.state, "failed")
        self.assertEqual(rollback.rollback_of_id.state, "failed")
        self.assertIn("Rollback failed", rollback.rollback_of_id.incident_task_id.name)
        return revert

    def test_failed_rollback_revert_is_followed(self):
        """The revert redeploys the version from before the rollback: that deployment is
        tracked and the incident says what serves now."""
        self.sim.set_scenario("health-fail-always", tag="v1.0.0")
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        rollback = deployment.rollback_id
        self.assertStepFailed(rollback, "rb_health_check", "HEALTH_CHECK_FAIL")
        revert = self.assertRevertedAndUnpinned(rollback)
        self.assertIn(revert.data["revert_deployment_id"],
                      deployment.incident_task_id.description)
        self.assertIn("v1.4.0--health-fail-always", deployment.incident_task_id.description)

    def test_rollback_created_then_unreadable_is_still_reverted(self):
        """The create call's reply is lost (it pinned the app) and the app cannot be read
        until the step's deadline: no deployment id was stored, the app is reverted all
        the same."""
        app_id = self.staging.do_app_id
        # Hold the rollback at rb_create: its calls are refused with 429s (as many as the
        # client's own retries may take), then no more.
        self.sim.set_scenario("rate-limit-burst", app_id=app_id,
                              operation="apps_create_rollback", count=50, retry_after=0)
        deployment = self.deploy("v1.4.0--health-fail-always")
        rollback = self.run_until_rollback_step(deployment, "rb_create")
        self.sim.set_scenario(None, app_id=app_id)
        self.sim.set_scenario("server-error", app_id=app_id, operation="apps_create_rollback",
                              apply=True, count=1)
        self.make_due()
        self.run_cron()
        self.assertTrue(self.sim.get_app(app_id).get("pinned_deployment"), "created")
        self.assertFalse(rollback.do_deployment_id)
        self.sim.set_scenario("server-error", operation="apps_get", count=1000)
        self.age(rollback, 3600)
        self.make_due()
        self.run_cron()
        self.assertEqual(self.step(rollback, "rb_create").state, "failed")
        self.sim.set_scenario(None)
        self.sim.set_scenario(None, app_id=app_id)
        self.run_until_idle()
        self.assertFalse(rollback.do_deployment_id)
        self.assertRevertedAndUnpinned(rollback)

    def test_a_revert_that_fails_once_is_tried_again(self):
        self.sim.set_scenario("health-fail-always", tag="v1.0.0")
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.sim.set_scenario("server-error", app_id=self.staging.do_app_id,
                              operation="apps_revert_rollback", count=1)
        self.run_until_idle()
        self.assertIn("sending it again",
                      self.step(deployment.rollback_id, "rb_revert").log or "")
        self.assertRevertedAndUnpinned(deployment.rollback_id)

    def test_a_revert_whose_reply_is_lost_is_adopted_not_sent_again(self):
        self.sim.set_scenario("health-fail-always", tag="v1.0.0")
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.sim.set_scenario("server-error", app_id=self.staging.do_app_id,
                              operation="apps_revert_rollback", apply=True, count=1)
        self.run_until_idle()
        self.assertIn("had reached DigitalOcean; not sending it again",
                      self.step(deployment.rollback_id, "rb_revert").log or "")
        self.assertRevertedAndUnpinned(deployment.rollback_id)
        reverts = [d for d in self.sim_deployments(self.staging)
                   if d.get("cause") == "revert of rollback"]
        self.assertEqual(len(reverts), 1)

    def test_a_commit_whose_reply_is_lost_is_not_a_failure(self):
        """DigitalOcean commits, the reply is lost, the client's retry is refused (nothing
        is pinned any more): the rollback read the app and is done, not reverted."""
        self.sim.set_scenario("server-error", app_id=self.staging.do_app_id,
                              operation="apps_commit_rollback", apply=True, count=1)
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        rollback = deployment.rollback_id
        self.assertEqual(rollback.state, "done", rollback.step_ids.mapped("log"))
        self.assertEqual(deployment.state, "rolled_back")
        app = self.sim.get_app(self.staging.do_app_id)
        self.assertNotIn("pinned_deployment", app)
        self.assertEqual(app["active_deployment"]["id"], rollback.do_deployment_id)
        self.assertEqual(self.staging.live_version, "v1.0.0")

    # Manual rollback of the live deployment only (issue 9, defect 5) -------------------

    def test_manual_rollback_only_of_the_live_deployment(self):
        older = self.deploy("v1.1.0")
        self.run_until_idle()
        newer = self.deploy("v1.2.0")
        self.run_until_idle()
        with self.assertRaisesRegex(UserError, "live"):
            older.with_user(self.manager).action_rollback(reason="Wrong one")
        self.assertFalse(older.rollback_id)
        self.assertFalse(older.is_live, "the Roll back button is hidden")
        self.assertTrue(newer.is_live)
        action = newer.with_user(self.manager).action_rollback(reason="Customer bug")
        rollback = self.env["do.deployment"].browse(action["res_id"])
        self.run_until_idle()
        self.assertEqual(rollback.state, "done", rollback.step_ids.mapped("log"))
        self.assertEqual(self.staging.live_version, "v1.1.0")
        self.assertFalse(newer.is_live)

    def test_no_manual_rollback_of_a_failure_that_never_changed_the_app(self):
        self.deploy("v1.1.0")
        self.run_until_idle()
        self.sim.set_scenario("quota", app_id=self.staging.do_app_id)
        refused = self.deploy("v1.2.0")
        self.run_until_idle()
        self.assertEqual(refused.state, "failed")
        self.assertTrue(refused.previous_do_deployment_id)
        self.sim.set_scenario(None, app_id=self.staging.do_app_id)
        count = len(self.sim_deployments(self.staging))
        with self.assertRaisesRegex(UserError, "live"):
            refused.with_user(self.manager).action_rollback(reason="Undo it")
        self.assertFalse(refused.rollback_id)
        self.assertFalse(refused.is_live)
        self.assertEqual(len(self.sim_deployments(self.staging)), count)

    def test_no_manual_rollback_when_digitalocean_serves_another_deployment(self):
        """Odoo's latest deployment is no longer what DigitalOcean serves (someone deployed
        from the console): DigitalOcean is asked, and the rollback refused."""
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        client = AppPlatformClient(self.sim_token, self.server.url)
        spec = client.get_app(self.staging.do_app_id)["spec"]
        spec["services"][0]["instance_count"] = 2
        client.update_app(self.staging.do_app_id, spec)
        self.sim.clock.advance(60)
        active = client.get_app(self.staging.do_app_id)["active_deployment"]["id"]
        self.assertNotEqual(active, deployment.do_deployment_id)
        with self.assertRaisesRegex(UserError, active):
            deployment.with_user(self.manager).action_rollback(reason="Customer bug")
        self.assertFalse(deployment.rollback_id)

    def test_manual_rollback_after_a_reverted_rollback(self):
        """The failed rollback was reverted: DigitalOcean serves this deployment's version
        again (through the revert's deployment), so it is the live one."""
        self.sim.set_scenario("health-fail-always", tag="v1.0.0")
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        self.assertEqual(deployment.rollback_id.state, "failed")
        self.assertTrue(deployment.is_live)
        action = deployment.with_user(self.manager).action_rollback(reason="Try again")
        self.assertEqual(self.env["do.deployment"].browse(action["res_id"]).state, "queued")
