from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.project.models.project_task import ProjectTask

from .common import DeployCommon


@tagged("post_install", "-at_install")
class TestStepFailures(DeployCommon):
    """Every failure the simulator can produce, on the right step with its code."""

    def assertFailsAt(self, tag, step_code, error_code, state="rolled_back", push=True):
        deployment = self.deploy(tag, push=push)
        self.run_until_idle()
        self.assertStepFailed(deployment, step_code, error_code)
        self.assertEqual(deployment.state, state, deployment.step_ids.mapped("log"))
        self.assertEqual(deployment.error_code_id.code, error_code)
        failed = self.step(deployment, step_code)
        later = deployment.step_ids.filtered(lambda s: s.sequence > failed.sequence)
        self.assertEqual(set(later.mapped("state")) or {"skipped"}, {"skipped"})
        return deployment

    # Step 1 -----------------------------------------------------------------

    def test_step1_wrong_token(self):
        self.account.token = "dop_v1_wrong"
        deployment = self.assertFailsAt("v1.1.0", "update_spec", "UNAUTHORIZED", "failed")
        self.assertFalse(deployment.rollback_id)
        self.assertEqual(len(self.sim_deployments(self.staging)), 1)
        self.assertNotIn("dop_v1_wrong", self.step(deployment, "update_spec").log)

    def test_step1_unknown_app(self):
        self.staging.do_app_id = "00000000-0000-4000-8000-000000000000"
        self.assertFailsAt("v1.1.0", "update_spec", "APP_NOT_FOUND", "failed")

    def test_step1_tag_not_in_registry(self):
        self.assertFailsAt("v9.9.9", "update_spec", "IMAGE_TAG_MISSING", "failed", push=False)

    def test_step1_unknown_component(self):
        self.staging.component_names = "web, nope"
        self.assertFailsAt("v1.1.0", "update_spec", "INVALID_RESOURCE_SPEC", "failed")

    def test_step1_spec_validated_per_component(self):
        self.staging.component_names = "web"
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        spec = self.sim.get_app(self.staging.do_app_id)["spec"]
        self.assertEqual(spec["services"][0]["image"]["tag"], "v1.1.0")
        self.assertEqual(spec["workers"][0]["image"]["tag"], "v1.0.0")

    # Step 2 -----------------------------------------------------------------

    def test_step2_quota(self):
        """The PUT is refused (422): nothing changed, so no rollback."""
        self.sim.set_scenario("quota", app_id=self.staging.do_app_id)
        deployment = self.assertFailsAt("v1.1.0", "apply_spec", "INSUFFICIENT_QUOTA", "failed")
        self.assertFalse(deployment.rollback_id)

    # Step 3 -----------------------------------------------------------------

    def test_step3_insufficient_quota(self):
        self.deploy("v1.1.0")
        self.run_until_idle()
        self.sim.set_scenario("quota", app_id=self.staging.do_app_id)
        deployment = self.assertFailsAt("v1.1.0", "create_deployment", "INSUFFICIENT_QUOTA",
                                        "failed")
        self.assertFalse(deployment.rollback_id, "the app did not change: nothing to undo")

    # Step 4 -----------------------------------------------------------------

    def test_step4_build_failed(self):
        deployment = self.assertFailsAt("v1.4.0--build-fail", "monitor", "BUILD_FAILED")
        self.assertIn("BUILD log", self.step(deployment, "monitor").log)

    def test_step4_image_pull_failure(self):
        self.assertFailsAt("v1.4.0--image-missing", "monitor", "IMAGE_PULL_FAILURE")

    def test_step4_deploy_error(self):
        self.assertFailsAt("v1.4.0--deploy-fail", "monitor", "DEPLOY_ERROR")

    def test_step4_health_check_timeout(self):
        self.assertFailsAt("v1.4.0--health-check-timeout", "monitor", "HEALTH_CHECK_TIMEOUT")

    # Step 5 -----------------------------------------------------------------

    def test_step5_one_failure_warns(self):
        deployment = self.deploy("v1.4.0--health-fail-once")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        step = self.step(deployment, "health_check")
        self.assertEqual(step.state, "warning")
        self.assertIn("Warning: HEALTH_CHECK_FAIL", step.log)
        self.assertEqual(step.attempt, 2)

    def test_step5_two_failures_fail(self):
        deployment = self.assertFailsAt("v1.4.0--health-fail-always", "health_check",
                                        "HEALTH_CHECK_FAIL")
        self.assertEqual(len(self.step(deployment, "health_check").data["checks"]), 2)

    def test_step5_database_down(self):
        self.assertFailsAt("v1.4.0--db-down", "health_check", "DATABASE_CONNECTION_ERROR")

    def test_step5_response_timeout(self):
        self.staging.budget_step5 = 1
        self.sim.set_scenario("health-slow", tag="v1.4.0", delay=1.5)
        self.assertFailsAt("v1.4.0", "health_check", "RESPONSE_TIMEOUT")

    # Step 6 -----------------------------------------------------------------

    # Step 7 -----------------------------------------------------------------

    def test_step7_endpoint_missing(self):
        self.assertFailsAt("v1.4.0--endpoint-missing", "validate", "ENDPOINT_404")

    def test_step7_static_missing(self):
        self.assertFailsAt("v1.4.0--static-missing", "validate", "STATIC_ASSET_MISSING")

    def test_step7_api_error(self):
        # The api-error scenario breaks /api/v1/health, which step 5 checks first (see
        # test_step7_api_error_scenario_stops_at_health); a wrong answer reaches step 7.
        self.staging.endpoint_check_ids = [(0, 0, {
            "path": "/api/v1/health", "kind": "api", "json_field": "database",
            "json_value": "replicated"})]
        self.assertFailsAt("v1.4.0", "validate", "API_ERROR")

    def test_step7_api_error_scenario_stops_at_health(self):
        self.assertFailsAt("v1.4.0--api-error", "health_check", "HEALTH_CHECK_FAIL")

    def test_step6_version_not_switched(self):
        """Retried while the switch may still happen, failed past the step's limit."""
        deployment = self.deploy("v1.1.0")
        self.sim.set_scenario("version-not-switched", tag="v1.1.0")
        for _run in range(6):
            self.run_cron()
            self.make_due()
        self.assertEqual(deployment.current_step_id.code, "traffic_switch")
        self.assertIn("Retrying", deployment.current_step_id.log)
        self.age(deployment, 3600)
        self.run_until_idle()
        self.assertStepFailed(deployment, "traffic_switch", "TRAFFIC_SWITCH_FAILED")
        self.assertEqual(deployment.state, "rolled_back")

    def test_step7_performance_degradation(self):
        self.staging.endpoint_check_ids = [(0, 0, {
            "path": "/web/login", "kind": "page", "expected_text": "Login", "max_ms": 100})]
        self.sim.set_scenario("slow-endpoints", tag="v1.4.0", delay=0.3)
        self.assertFailsAt("v1.4.0", "validate", "PERFORMANCE_DEGRADATION")

    # Step 8 -----------------------------------------------------------------

    def test_step8_task_deleted(self):
        deployment = self.deploy("v1.1.0")
        self.task.unlink()
        self.run_until_idle()
        self.assertStepFailed(deployment, "update_task", "TASK_NOT_FOUND")
        self.assertEqual(deployment.state, "done", "the app is deployed, no rollback")
        self.assertFalse(deployment.rollback_id)
        self.assertEqual(self.staging.live_version, "v1.1.0")

    def test_step8_odoo_error(self):
        deployment = self.deploy("v1.1.0")
        original = ProjectTask.write

        def refuse(records, vals):
            if "deployed_version" in vals:
                raise UserError(records.env._("The task is locked."))
            return original(records, vals)

        with patch.object(ProjectTask, "write", refuse):
            self.run_until_idle()
        self.assertStepFailed(deployment, "update_task", "ODOO_API_ERROR")
        self.assertIn("locked", self.step(deployment, "update_task").error_message)
        self.assertEqual(deployment.state, "done")
        self.assertFalse(deployment.rollback_id)
