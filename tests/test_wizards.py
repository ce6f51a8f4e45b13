from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import DeployCommon


@tagged("post_install", "-at_install")
class TestDeployWizard(DeployCommon):
    """The deploy wizard opened from a task: defaults, refusals, confirmation."""

    def open_wizard(self, task, user):
        action = task.with_user(user).action_open_deploy_wizard()
        self.assertEqual(action["res_model"], "do.deploy.wizard")
        return Form(self.env[action["res_model"]].with_user(user).with_context(**action["context"]))

    def test_tag_named_by_the_task_wins(self):
        task = self.task.copy({"name": "Ship tag: v1.3.0 to staging"})
        self.deploy("v1.1.0")
        self.run_until_idle()
        with self.open_wizard(task, self.user) as wizard:
            wizard.app_id = self.staging
            self.assertEqual(wizard.image_tag, "v1.3.0")
            self.assertEqual(wizard.environment, "staging")

    def test_version_in_task_title(self):
        task = self.task.copy({"name": "Release v2.0.1-rc1 of the shop"})
        wizard = self.open_wizard(task, self.user)
        wizard.app_id = self.staging
        self.assertEqual(wizard.image_tag, "v2.0.1-rc1")

    def test_default_tag_is_last_deployed_for_the_app(self):
        self.deploy("v1.2.0")
        self.run_until_idle()
        wizard = self.open_wizard(self.task, self.user)
        self.assertEqual(wizard.app_id, self.staging, "the app the task was last deployed to")
        self.assertEqual(wizard.image_tag, "v1.2.0")
        wizard.app_id = self.production
        self.assertFalse(wizard.image_tag, "nothing was deployed to production yet")

    def test_history_from_the_task_and_the_app(self):
        deployment = self.deploy("v1.1.0")
        for record, field in ((self.task, "task_id"), (self.staging, "app_id")):
            action = record.with_user(self.user).action_view_deployments()
            self.assertEqual(action["res_model"], "do.deployment")
            self.assertEqual(action["view_mode"], "list,kanban,form,graph,pivot")
            self.assertEqual(action["domain"], [(field, "=", record.id)])
            self.assertEqual(self.env["do.deployment"].search(action["domain"]), deployment)

    def test_refuses_without_app(self):
        # The form marks the app required; a wizard made another way is refused on confirm.
        wizard = self.env["do.deploy.wizard"].with_user(self.user).create({
            "task_id": self.task.id, "app_id": False, "image_tag": "v1.1.0"})
        with self.assertRaisesRegex(UserError, "Choose the app"):
            wizard.action_confirm()

    def test_refuses_a_tag_digitalocean_would_refuse(self):
        wizard = self.open_wizard(self.task, self.user)
        wizard.app_id = self.staging
        for tag in ("-starts-with-dash", "has space", "x" * 129, "v1.0/evil"):
            wizard.image_tag = tag
            with self.assertRaisesRegex(UserError, "DigitalOcean would refuse the image tag"):
                wizard.save().action_confirm()
        blank = self.env["do.deploy.wizard"].with_user(self.user).create({
            "task_id": self.task.id, "app_id": self.staging.id, "image_tag": " "})
        with self.assertRaisesRegex(UserError, "^IMAGE_TAG_MISSING: give the image tag"):
            blank.action_confirm()
        self.assertFalse(self.task.deployment_ids)

    def test_refuses_a_wrong_token_before_creating_anything(self):
        self.account.token = "dop_v1_" + "0" * 64
        wizard = self.open_wizard(self.task, self.user)
        wizard.app_id = self.staging
        wizard.image_tag = "v1.1.0"
        with self.assertRaisesRegex(UserError, "^UNAUTHORIZED: .*scopes") as caught:
            wizard.save().action_confirm()
        self.assertNotIn(self.account.token[7:], str(caught.exception))
        self.assertFalse(self.env["do.deployment"].search([("task_id", "=", self.task.id)]))

    def test_refuses_a_tag_missing_from_the_registry(self):
        wizard = self.open_wizard(self.task, self.user)
        wizard.app_id = self.staging
        wizard.image_tag = "v9.9.9"
        with self.assertRaisesRegex(UserError, "^IMAGE_TAG_MISSING: The tag v9.9.9 is not in"):
            wizard.save().action_confirm()
        self.assertFalse(self.env["do.deployment"].search([("task_id", "=", self.task.id)]))

    def test_production_needs_a_deployment_manager(self):
        wizard = self.open_wizard(self.task, self.user)
        wizard.app_id = self.production
        wizard.image_tag = "v1.1.0"
        with self.assertRaisesRegex(AccessError, "Only a Deployment Manager"):
            wizard.save().action_confirm()
        self.assertFalse(self.task.deployment_ids)

        wizard = self.open_wizard(self.task, self.manager)
        wizard.app_id = self.production
        wizard.image_tag = "v1.1.0"
        action = wizard.save().action_confirm()
        self.assertEqual(self.env["do.deployment"].browse(action["res_id"]).environment,
                         "production")

    def test_confirm_starts_and_opens_the_deployment(self):
        wizard = self.open_wizard(self.task, self.user)
        wizard.app_id = self.staging
        wizard.image_tag = " v1.1.0 "
        wizard.components = "web"
        wizard.force_rebuild = True
        wizard.note = "Login page fix"
        action = wizard.save().action_confirm()
        self.assertEqual((action["res_model"], action["target"]), ("do.deployment", "current"))
        deployment = self.env["do.deployment"].browse(action["res_id"])
        self.assertRecordValues(deployment, [{
            "task_id": self.task.id, "app_id": self.staging.id, "image_tag": "v1.1.0",
            "components": "web", "force_rebuild": True, "note": "Login page fix",
            "requested_by_id": self.user.id, "state": "queued",
        }])
        self.assertEqual(len(deployment.step_ids), 8)

    def test_deploy_from_an_app_card(self):
        """The app dashboard's Deploy button opens the wizard with the app and no task."""
        action = self.env.ref("do_deploy.do_deploy_wizard_action")
        self.assertEqual(action.res_model, "do.deploy.wizard")
        wizard = Form(self.env["do.deploy.wizard"].with_user(self.user).with_context(
            default_app_id=self.staging.id))
        wizard.image_tag = "v1.1.0"
        deployment = self.env["do.deployment"].browse(wizard.save().action_confirm()["res_id"])
        self.assertEqual(deployment.app_id, self.staging)
        self.assertFalse(deployment.task_id)


@tagged("post_install", "-at_install")
class TestRollbackWizard(DeployCommon):
    """The rollback wizard asks for a reason and runs the model's rollback."""

    def setUp(self):
        super().setUp()
        self.deployment = self.deploy("v1.2.0")
        self.run_until_idle()
        self.assertEqual(self.deployment.state, "done")

    def open_wizard(self, user):
        return Form(self.env["do.rollback.wizard"].with_user(user).with_context(
            active_id=self.deployment.id, default_deployment_id=self.deployment.id))

    def test_reason_is_required(self):
        wizard = self.open_wizard(self.manager)
        with self.assertRaises(AssertionError):
            wizard.save()

    def test_rollback_with_reason_opens_the_rollback(self):
        wizard = self.open_wizard(self.manager)
        wizard.reason = "Checkout broken"
        action = wizard.save().action_confirm()
        rollback = self.env["do.deployment"].browse(action["res_id"])
        self.assertEqual(rollback.kind, "rollback")
        self.assertEqual(rollback.rollback_of_id, self.deployment)
        self.assertEqual(rollback.rollback_reason, "Checkout broken")
        self.run_until_idle()
        self.assertEqual(self.deployment.state, "rolled_back")

    def test_only_managers_roll_back(self):
        wizard = self.open_wizard(self.user)
        wizard.reason = "I am not allowed"
        with self.assertRaises(AccessError):
            wizard.save().action_confirm()
        self.assertFalse(self.deployment.rollback_id)
