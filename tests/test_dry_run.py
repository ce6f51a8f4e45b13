import copy

from markupsafe import escape

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, HttpCase, tagged

from odoo.addons.do_deploy.engine.client import AppPlatformClient
from odoo.addons.do_deploy.engine.dry_run import spec_diff
from odoo.addons.do_deploy.engine.simulator import DEFAULT_TOKEN
from odoo.addons.do_deploy.engine.simulator.demo import demo_spec

from .common import DeployCommon

DEMO_MONTHLY_COST = 24.0  # demo_spec: web and worker on apps-s-1vcpu-1gb at $12 each


class DryRunCommon(DeployCommon):
    def sim_state(self, app):
        """The app and its deployments as DigitalOcean shows them."""
        return {"app": self.sim.get_app(app.do_app_id),
                "deployments": AppPlatformClient(DEFAULT_TOKEN, self.server.url).list_deployments(
                    app.do_app_id, per_page=200)}

    def wizard(self, user, tag="v1.2.0", app=None):
        action = self.task.with_user(user).action_open_deploy_wizard()
        form = Form(self.env[action["res_model"]].with_user(user).with_context(**action["context"]))
        form.app_id = app or self.staging
        form.image_tag = tag
        return form


class TestDryRun(DryRunCommon):
    """Dry run of a deployment: diff, DigitalOcean's verdict and the monthly cost, with
    the simulator's app and deployments left as they were."""

    def test_a_dry_run_leaves_the_app_alone_and_shows_cost_and_diff(self):
        deployment = self.deploy("v1.2.0", user=self.user, start=False)
        before = self.sim_state(self.staging)
        self.assertTrue(deployment.with_user(self.user).can_dry_run)

        deployment.with_user(self.user).action_dry_run()

        self.assertEqual(self.sim_state(self.staging), before)
        self.assertEqual(deployment.state, "draft")
        self.assertFalse(deployment.do_deployment_id)
        data = deployment.dry_run_data
        self.assertTrue(deployment.dry_run_valid)
        self.assertFalse(deployment.dry_run_error_code_id)
        self.assertEqual(deployment.dry_run_user_id, self.user)
        self.assertTrue(deployment.dry_run_date)
        self.assertEqual(data["cost"], {"currency": "USD", "before": DEMO_MONTHLY_COST,
                                        "after": DEMO_MONTHLY_COST, "delta": 0.0})
        self.assertEqual(data["live_deployment_id"],
                         before["app"]["active_deployment"]["id"])
        self.assertEqual(
            {(image["component"], image["before"], image["after"])
             for image in data["diff"]["images"]},
            {("web", "odoo:v1.0.0", "odoo:v1.2.0"), ("worker", "odoo:v1.0.0", "odoo:v1.2.0")})
        self.assertIn({"component": "web", "key": "DO_DEPLOY_VERSION", "change": "changed",
                       "secret": False, "before": "v1.0.0", "after": "v1.2.0",
                       "fields": ["value", "type"]}, data["diff"]["envs"])
        report = deployment.with_user(self.user).dry_run_report
        self.assertIn("DigitalOcean accepts this change", report)
        self.assertIn("$24.00", report)
        self.assertIn("odoo:v1.2.0", report)
        self.assertIn("Dry run by Dana User: DigitalOcean accepts it; monthly cost $24.00 → "
                      "$24.00.", deployment.message_ids.mapped("preview"))

    def test_the_cost_is_digitaloceans_price_of_the_live_spec(self):
        """Cost before and after come from DigitalOcean's propose of the live and the
        proposed spec: an app scaled up in its console is priced as it runs."""
        spec = demo_spec(self.staging.name)
        spec["services"][0].update(instance_size_slug="apps-s-2vcpu-4gb", instance_count=2)
        sim_app = self.sim.create_app(dict(spec, name="odoo-staging-big"))
        self.staging.do_app_id = sim_app["id"]
        deployment = self.deploy("v1.3.0", user=self.user, start=False)
        deployment.with_user(self.user).action_dry_run()
        self.assertEqual(deployment.dry_run_data["cost"]["before"], 112.0)
        self.assertEqual(deployment.dry_run_data["cost"]["delta"], 0.0)

    def test_validation_errors_are_shown_with_their_code(self):
        """What would fail is reported with its code and mitigation, next to the diff and
        the cost, instead of being raised; nothing changes on DigitalOcean."""
        missing = self.deploy("v9.9.9", user=self.user, start=False, push=False)
        before = self.sim_state(self.staging)
        missing.with_user(self.user).action_dry_run()
        self.assertFalse(missing.dry_run_valid)
        self.assertEqual(missing.dry_run_error_code_id.code, "IMAGE_TAG_MISSING")
        self.assertEqual(missing.dry_run_data["cost"]["after"], DEMO_MONTHLY_COST)
        self.assertTrue(missing.dry_run_data["diff"]["images"])
        report = missing.dry_run_report
        self.assertIn("This deployment would fail", report)
        self.assertIn("IMAGE_TAG_MISSING", report)
        self.assertIn(escape(missing.dry_run_error_code_id.mitigation), report)

        unknown = self.deploy("v1.2.0", user=self.user, start=False, components="nope")
        unknown.with_user(self.user).action_dry_run()
        self.assertEqual(unknown.dry_run_error_code_id.code, "INVALID_RESOURCE_SPEC")
        self.assertIn("nope", unknown.dry_run_data["error"]["message"])
        self.assertIsNone(unknown.dry_run_data["diff"])
        self.assertEqual(unknown.dry_run_data["cost"]["before"], DEMO_MONTHLY_COST)

        spec = demo_spec("odoo-staging-todo")
        spec["services"][0]["envs"].append({"key": "SMTP_PASSWORD", "value": "YOUR_PASSWORD"})
        self.staging.do_app_id = self.sim.create_app(spec)["id"]
        placeholder = self.deploy("v1.2.0", user=self.user, start=False)
        placeholder.with_user(self.user).action_dry_run()
        self.assertEqual(placeholder.dry_run_error_code_id.code, "PLACEHOLDER_VALUES")
        self.assertIn("services[0].envs[1].value", placeholder.dry_run_data["error"]["message"])
        self.staging.do_app_id = before["app"]["id"]
        self.assertEqual(self.sim_state(self.staging), before)

    def test_digitalocean_not_answering_is_refused_with_its_code(self):
        deployment = self.deploy("v1.2.0", user=self.user, start=False)
        self.sim.set_scenario("server-error", count=1)
        with self.assertRaisesRegex(UserError, r"^SERVICE_UNAVAILABLE: .+ Check"):
            deployment.with_user(self.user).action_dry_run()
        self.assertFalse(deployment.dry_run_data)

    def test_a_started_deployment_is_too_late_for_a_dry_run(self):
        deployment = self.deploy("v1.2.0", user=self.user)
        self.assertTrue(deployment.can_dry_run, "a queued deployment has not changed the app")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        self.assertFalse(deployment.can_dry_run)
        with self.assertRaisesRegex(UserError, "^DRY_RUN_TOO_LATE: "):
            deployment.with_user(self.user).action_dry_run()

    def test_a_changed_draft_loses_its_dry_run(self):
        deployment = self.deploy("v1.2.0", user=self.user, start=False)
        deployment.with_user(self.user).action_dry_run()
        deployment.with_user(self.user).note = "Release notes"
        self.assertTrue(deployment.dry_run_data)
        deployment.with_user(self.user).image_tag = "v1.3.0"
        self.assertFalse(deployment.dry_run_data)
        self.assertFalse(deployment.dry_run_date)
        self.assertFalse(deployment.dry_run_report)

    def test_only_the_pipeline_writes_a_dry_run(self):
        deployment = self.deploy("v1.2.0", user=self.user, start=False)
        with self.assertRaisesRegex(AccessError, "DEPLOYMENT_FIELD_LOCKED"):
            deployment.with_user(self.user).write({"dry_run_data": {"valid": True}})
        with self.assertRaises(AccessError):
            deployment.with_user(self.plain).action_dry_run()

    def test_secret_values_never_reach_the_report(self):
        live = demo_spec("shop")
        live["services"][0]["envs"].append(
            {"key": "DB_PASSWORD", "type": "SECRET", "value": "EV[1:old-cipher]"})
        proposed = copy.deepcopy(live)
        proposed["services"][0]["envs"][-1]["value"] = "EV[1:new-cipher]"
        data = {"valid": True, "cost": {"currency": "USD", "before": 5, "after": 5,
                                        "delta": 0}, "diff": spec_diff(live, proposed)}
        report = self.env["do.deployment"]._dry_run_html(data)
        self.assertIn("DB_PASSWORD", report)
        self.assertIn("secret: value not shown", report)
        self.assertNotIn("cipher", report)


class TestDryRunWizard(DryRunCommon):
    def test_the_wizard_shows_the_dry_run_and_hands_it_to_the_deployment(self):
        form = self.wizard(self.user)
        before = self.sim_state(self.staging)
        wizard = form.save()
        action = wizard.action_dry_run()
        self.assertEqual((action["res_model"], action["res_id"], action["target"]),
                         ("do.deploy.wizard", wizard.id, "new"))
        self.assertEqual(self.sim_state(self.staging), before)
        self.assertEqual(wizard.dry_run_data["cost"]["after"], DEMO_MONTHLY_COST)
        self.assertIn("odoo:v1.2.0", wizard.dry_run_report)

        # Another tag is another change: its dry run is gone until asked again.
        with Form(wizard) as edit:
            edit.image_tag = "v1.3.0"
        self.assertFalse(wizard.dry_run_data)
        wizard.action_dry_run()
        self.assertEqual(wizard.dry_run_data["image_tag"], "v1.3.0")

        deployment = self.env["do.deployment"].browse(wizard.action_confirm()["res_id"])
        self.assertEqual(deployment.image_tag, "v1.3.0")
        self.assertEqual(deployment.dry_run_data, wizard.dry_run_data)
        self.assertEqual(deployment.dry_run_user_id, self.user)
        self.assertTrue(deployment.dry_run_valid)

    def test_a_deploy_without_dry_run_has_none(self):
        wizard = self.wizard(self.user).save()
        deployment = self.env["do.deployment"].browse(wizard.action_confirm()["res_id"])
        self.assertFalse(deployment.dry_run_data)

    def test_the_wizard_refuses_a_dry_run_without_a_valid_tag(self):
        wizard = self.wizard(self.user, tag="-bad").save()
        with self.assertRaisesRegex(UserError, "IMAGE_TAG_MISSING"):
            wizard.action_dry_run()


@tagged("post_install", "-at_install")
class TestDryRunTour(DryRunCommon, HttpCase):
    def test_dry_run_from_the_wizard_shows_the_diff_and_cost(self):
        task = self.env["project.task"].create({
            "name": "Release v1.2.0: faster checkout", "project_id": self.project.id,
            "stage_id": self.stage_ready.id})
        before = self.sim_state(self.staging)
        self.start_tour(f"/odoo/project.task/{task.id}", "do_deploy_dry_run", login="dep_user",
                        timeout=180)
        deployment = task.deployment_ids
        self.assertEqual(len(deployment), 1)
        self.assertEqual(deployment.state, "queued")
        self.assertEqual(deployment.dry_run_data["image_tag"], "v1.2.0")
        self.assertEqual(self.sim_state(self.staging), before)
