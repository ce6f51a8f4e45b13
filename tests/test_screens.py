"""What the screens of issue 11 read from the models: durations, the task and the app
after a rollback, the deploy and rollback wizards, the step detail, the error codes and
the demo data. What the browser shows is in test_ui_tours.py."""

import importlib.util
from datetime import timedelta
from pathlib import Path

from lxml import etree

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import DeployCommon, deployment_class

ADDON = Path(__file__).resolve().parent.parent


@tagged("post_install", "-at_install")
class TestRollbackFacts(DeployCommon):
    """A rolled-back deployment, its task and its app tell the truth afterwards."""

    def test_automatic_rollback_keeps_the_deployment_duration(self):
        """Issue 11: a deployment rolled back automatically stored a duration of 0."""
        original = deployment_class(self.env)._start_automatic_rollback

        def start_rollback(deployment, error):
            # Odoo keeps dates to the second and the simulator takes no time: make it a
            # deployment that had run for a minute when its rollback started.
            deployment.start_date -= timedelta(seconds=60)
            return original(deployment, error)

        deployment = self.deploy("v1.4.0--health-fail-always")
        with self.patch_step("_start_automatic_rollback", side_effect=start_rollback):
            self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")
        self.assertTrue(deployment.end_date)
        self.assertGreaterEqual(deployment.duration, 60)
        self.assertAlmostEqual(
            deployment.duration,
            (deployment.end_date - deployment.start_date).total_seconds(), places=3)

    def test_task_after_a_rollback_no_longer_says_deployed(self):
        """Issue 11: after a rollback the task kept its deployed stage and the rolled back
        version; it goes back to the stage it had and loses the version."""
        deployment = self.deploy("v1.2.0")
        self.run_until_idle()
        self.assertEqual((self.task.stage_id, self.task.deployed_version),
                         (self.stage_deployed, "v1.2.0"))
        deployment.with_user(self.manager).action_rollback(reason="Checkout broken")
        self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")
        self.assertEqual(self.task.deploy_state, "rolled_back")
        self.assertEqual(self.task.stage_id, self.stage_ready)
        self.assertFalse(self.task.deployed_version)
        self.assertFalse(self.task.deployed_at)
        self.assertTrue(any("was rolled back" in body
                            for body in self.task.message_ids.mapped("body")))

    def test_task_after_a_rollback_to_its_own_earlier_deployment(self):
        """Rolled back to a version the same task deployed before: the task says that one."""
        first = self.deploy("v1.1.0")
        self.run_until_idle()
        second = self.deploy("v1.2.0")
        self.run_until_idle()
        self.assertEqual(second.previous_do_deployment_id, first.do_deployment_id)
        second.with_user(self.manager).action_rollback(reason="Slow pages")
        self.run_until_idle()
        self.assertEqual(self.task.deployed_version, "v1.1.0")
        self.assertEqual(self.task.deployed_at, first.end_date)

    def test_task_offers_roll_back_once_live(self):
        """Issue 11: the task, where Deploy is, offers Roll back once its deployment is live."""
        self.assertFalse(self.task.with_user(self.manager).can_roll_back)
        deployment = self.deploy("v1.2.0")
        self.run_until_idle()
        task = self.task.with_user(self.manager)
        self.assertTrue(task.can_roll_back)
        action = task.action_open_rollback_wizard()
        self.assertEqual(action["res_model"], "do.rollback.wizard")
        wizard = Form(self.env["do.rollback.wizard"].with_user(self.manager).with_context(
            **action["context"]))
        self.assertEqual(wizard.deployment_id, deployment)
        wizard.reason = "From the task"
        wizard.save().action_confirm()
        self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")
        self.assertFalse(task.can_roll_back)

    def test_app_live_version_is_read_from_digitalocean(self):
        """Issue 11: the app said 'none yet' while DigitalOcean served v1.0.0; Refresh and
        Test Connection read it."""
        self.assertFalse(self.staging.live_version)
        self.staging.with_user(self.user).action_sync_from_digitalocean()
        self.assertEqual(self.staging.live_version, "v1.0.0")
        self.assertFalse(self.production.live_version)
        action = self.account.with_user(self.manager).action_test_connection()
        self.assertEqual(self.production.live_version, "v1.0.0")
        self.assertIn("odoo-production", action["params"]["message"])

    def test_app_refresh_error_has_code_and_mitigation(self):
        self.staging.do_app_id = "00000000-0000-4000-8000-000000000000"
        with self.assertRaisesRegex(UserError, r"^APP_NOT_FOUND: odoo-staging: .+ \S"):
            self.staging.with_user(self.user).action_sync_from_digitalocean()

    def test_app_shows_what_runs_now(self):
        """Issue 11: the app card shows what is running (the rollback, while rolling back)."""
        deployment = self.deploy("v1.1.0")
        self.deploy("v1.2.0")
        self.assertFalse(self.staging.in_flight_deployment_id)
        self.assertEqual(self.staging.queued_count, 2)
        deployment.sudo().state = "running"
        self.staging.invalidate_recordset()
        self.assertEqual(self.staging.in_flight_deployment_id, deployment)
        self.assertEqual(self.staging.queued_count, 1)
        deployment.sudo().state = "rolling_back"
        deployment.flush_recordset()
        rollback = deployment.sudo()._create_rollback("test", state="running",
                                                      requested_by=self.manager)
        self.staging.invalidate_recordset()
        self.assertEqual(self.staging.in_flight_deployment_id, rollback)


@tagged("post_install", "-at_install")
class TestDeployWizardScreens(DeployCommon):
    """The deploy wizard as issue 11 wants it."""

    def open_wizard(self, task, user, **context):
        action = task.with_user(user).action_open_deploy_wizard()
        return Form(self.env[action["res_model"]].with_user(user).with_context(
            **action["context"], **context))

    def test_proposes_the_tag_the_task_description_names(self):
        """Issue 11: the demo tasks say 'image tag v1.1.0' in their description."""
        task = self.task.copy({"name": "Checkout",
                               "description": "<p>Checkout in two steps (image tag v1.3.0).</p>"})
        with self.open_wizard(task, self.user) as wizard:
            wizard.app_id = self.staging
            self.assertEqual(wizard.image_tag, "v1.3.0")
            self.assertEqual(wizard.tag_source, "the task")

    def test_app_and_tag_are_required(self):
        """Issue 11: neither the app nor the tag was marked required."""
        wizard = self.open_wizard(self.task, self.user)
        wizard.app_id = self.env["do.app"]
        wizard.image_tag = "v1.1.0"
        with self.assertRaisesRegex(AssertionError, "app_id"):
            wizard.save()
        wizard = self.open_wizard(self.task, self.user)
        wizard.app_id = self.staging
        wizard.image_tag = False
        with self.assertRaisesRegex(AssertionError, "image_tag"):
            wizard.save()

    def test_every_problem_in_one_message(self):
        """Issue 11: errors came one pop-up at a time."""
        wizard = self.env["do.deploy.wizard"].with_user(self.user).create({
            "task_id": self.task.id, "app_id": self.production.id, "image_tag": "v1.1.0 beta"})
        self.assertIn("v1.1.0 beta", wizard.problems)
        self.assertIn("Only a Deployment Manager", wizard.problems)
        with self.assertRaises(AccessError) as caught:
            wizard.action_confirm()
        message = str(caught.exception)
        self.assertIn("IMAGE_TAG_MISSING: DigitalOcean would refuse the image tag 'v1.1.0 beta'",
                      message)
        self.assertIn("Only a Deployment Manager can deploy to the production app", message)

    def test_tag_message_reads_plainly(self):
        """Issue 11: "The image tag 'v1.1.0 beta' at tag is not a valid Docker tag"."""
        wizard = self.env["do.deploy.wizard"].with_user(self.user).create({
            "app_id": self.staging.id, "image_tag": "v1.1.0 beta"})
        with self.assertRaises(UserError) as caught:
            wizard.action_confirm()
        self.assertNotIn(" at tag", str(caught.exception))
        self.assertIn("at most 128 letters", str(caught.exception))

    def test_deployment_users_are_offered_staging_apps_only(self):
        """Issue 11: a Deployment User could pick production and was refused on submit."""
        wizard = self.open_wizard(self.task, self.user)
        self.assertEqual(wizard.allowed_app_ids[:], self.staging)
        self.assertEqual(wizard.app_id, self.staging, "the only app the user may deploy to")
        manager_wizard = self.open_wizard(self.task, self.manager)
        self.assertEqual(set(manager_wizard.allowed_app_ids[:].ids),
                         {self.staging.id, self.production.id})

    def test_retry_opens_the_wizard_filled_in_and_links_the_retry(self):
        """Issue 11: Retry started a new run at once, with no link to what it retried."""
        self.staging.component_names = "web"
        self.account.token = "dop_v1_wrong"
        failed = self.deploy("v1.2.0", force_rebuild=True, note="Second try")
        self.run_until_idle()
        self.assertEqual(failed.state, "failed")
        self.account.token = self.sim_token
        wizard = self.open_wizard(self.task, self.user, default_retry_of_id=failed.id)
        self.assertEqual((wizard.app_id, wizard.image_tag, wizard.components,
                          wizard.force_rebuild, wizard.note),
                         (self.staging, "v1.2.0", "web", True, "Second try"))
        retry = self.env["do.deployment"].browse(wizard.save().action_confirm()["res_id"])
        self.assertEqual(retry.retry_of_id, failed)
        self.assertEqual(retry.state, "queued")
        # The API's retry links it too.
        again = self.env["do.deployment"].browse(
            failed.with_user(self.user).action_retry()["res_id"])
        self.assertEqual(again.retry_of_id, failed)

    def test_rollback_wizard_says_from_which_version_to_which(self):
        """Issue 11: the rollback wizard did not say "v1.2.0 → v1.1.0"."""
        self.deploy("v1.1.0")
        self.run_until_idle()
        deployment = self.deploy("v1.2.0")
        self.run_until_idle()
        wizard = Form(self.env["do.rollback.wizard"].with_user(self.manager).with_context(
            default_deployment_id=deployment.id))
        self.assertEqual((wizard.image_tag, wizard.previous_version), ("v1.2.0", "v1.1.0"))
        wizard.reason = "Checkout broken"
        rollback = self.env["do.deployment"].browse(wizard.save().action_confirm()["res_id"])
        self.assertEqual((rollback.rollback_of_tag, rollback.image_tag), ("v1.2.0", "v1.1.0"))
        self.run_until_idle()
        self.assertEqual(deployment.rolled_back_because, "Checkout broken")


@tagged("post_install", "-at_install")
class TestStepAndCodeScreens(DeployCommon):
    """What a step's detail and the error codes show."""

    def test_failed_step_shows_the_failure_first(self):
        """Issue 11: the log hid in a row dialog; the detail puts the failing part first."""
        deployment = self.deploy("v1.4.0--build-fail")
        self.run_until_idle()
        monitor = self.step(deployment, "monitor")
        self.assertEqual(monitor.state, "failed")
        excerpt = monitor.log_excerpt.splitlines()
        self.assertRegex(excerpt[0], r"^\d\d:\d\d:\d\d FAILED BUILD_FAILED: ")
        self.assertRegex(excerpt[1], r"^\d\d:\d\d:\d\d Mitigation: ")
        self.assertIn("BUILD log of", monitor.log_excerpt)
        self.assertEqual(monitor.do_phase, "ERROR")
        self.assertRegex(monitor.do_progress, r"^\d+/\d+$")
        self.assertFalse(self.step(deployment, "update_spec").log_excerpt)

    def test_resolution_time_that_varies_says_so(self):
        """Issue 11: HEALTH_CHECK_FAIL showed a resolution time of 0 min."""
        codes = self.env["do.error.code"]
        self.assertEqual(codes._get_by_code("HEALTH_CHECK_FAIL").resolution_label, "Varies")
        self.assertEqual(codes._get_by_code("DATABASE_CONNECTION_ERROR").resolution_label,
                         "15 min")


@tagged("post_install", "-at_install")
class TestDemoData(DeployCommon):
    """The demo data tells its story (read from the file: test databases have no demo)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.demo = etree.parse(str(ADDON / "demo" / "do_deploy_demo.xml"))

    def records(self, model):
        return self.demo.xpath(f"//record[@model='{model}']")

    def test_demo_follows_the_simulator_port(self):
        """Issue 11: with another SIM_PORT the apps' ingress stayed on 8799, so the first
        demo deployment failed its health check and its rollback too."""
        spec = importlib.util.spec_from_file_location(
            "do_deploy_demo_simulator", ADDON / "tools" / "demo_simulator.py")
        demo_simulator = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo_simulator)
        # As the demo data leaves them: the default port.
        self.account.api_url = "http://127.0.0.1:8799"
        self.staging.ingress_url = f"http://127.0.0.1:8799/_ingress/{self.staging.do_app_id}"
        port = self.server.url.rsplit(":", 1)[1].strip("/")
        demo_simulator.point_demo_at_simulator(self.env, port)
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertEqual(self.account.api_url, self.server.url.rstrip("/"))
        self.assertTrue(self.staging.ingress_url.startswith(f"{self.server.url.rstrip('/')}/"))

    def test_incident_project_has_stages(self):
        """Issue 11: incidents landed in a folded "None" column."""
        stages = [record for record in self.records("project.task.type")
                  if "demo_project_incidents" in record.xpath(
                      "string(field[@name='project_ids']/@eval)")]
        self.assertGreaterEqual(len(stages), 2)
        self.assertIn("False", [record.xpath("string(field[@name='fold']/@eval)") or "False"
                                for record in stages])

    def test_a_demo_user_is_a_deployment_user(self):
        """Issue 11: no demo user held the Deployment User role."""
        users = [record for record in self.records("res.users")
                 if "group_do_deploy_user" in record.xpath(
                     "string(field[@name='group_ids']/@eval)")]
        self.assertTrue(users)
        self.assertEqual(users[0].get("id"), "base.user_demo")

    def test_demo_tasks_name_tags_the_registry_holds(self):
        from odoo.addons.do_deploy.engine.simulator.demo import DEMO_SCENARIO_TAGS, DEMO_TAGS
        self.assertIn("v1.4.0--health-fail-always", DEMO_SCENARIO_TAGS)
        for record in self.records("project.task"):
            description = record.xpath("string(field[@name='description'])")
            if "image tag" in description:
                tag = description.split("image tag ")[1].rstrip(").")
                self.assertIn(tag, DEMO_TAGS)


@tagged("post_install", "-at_install")
class TestIncidentScreens(DeployCommon):
    """The incident a rollback files, as the Incidents project shows it."""

    def test_incident_is_not_assigned_to_odoobot(self):
        """Issue 11: incidents landed assigned to OdooBot."""
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        incident = deployment.incident_task_id
        self.assertTrue(incident)
        self.assertNotIn(self.env.ref("base.user_root"), incident.user_ids)
        self.assertIn(self.manager.partner_id, incident.message_partner_ids)

    def test_manual_rollback_incident_says_who_and_why(self):
        """Issue 11: a manual rollback's incident read "Failure: ROLLBACK - " and
        "Mitigation:" with nothing after."""
        deployment = self.deploy("v1.2.0")
        self.run_until_idle()
        deployment.with_user(self.manager).action_rollback(reason="Checkout broken")
        self.run_until_idle()
        description = deployment.incident_task_id.description
        self.assertNotIn("ROLLBACK - ", description)
        self.assertNotRegex(description, r"Mitigation:(</b>|</strong>)?\s*</p>")
        self.assertIn(f"Rolled back by hand by {self.manager.name}", description)
        self.assertIn("Checkout broken", description)
        self.assertIn("v1.2.0", description)


@tagged("post_install", "-at_install")
class TestHistoryScreens(DeployCommon):
    """How the history groups deployments."""

    def test_kanban_columns_start_with_what_runs_then_what_went_wrong(self):
        """Issue 11: on a phone the history kanban opened on its Canceled column."""
        states = ["done", "canceled", "failed", "running", "rolled_back"]
        for state, app in zip(states, [self.staging, self.staging, self.staging, self.production,
                                       self.staging], strict=True):
            deployment = self.deploy("v1.1.0", app=app, start=False)
            deployment.sudo().state = state
        result = self.env["do.deployment"].with_user(self.user).with_context(
            read_group_expand=True).web_read_group([], ["state"], ["__count"])
        self.assertEqual([group["state"] for group in result["groups"]],
                         ["running", "failed", "rolled_back", "done", "canceled"])
