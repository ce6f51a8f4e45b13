"""Issue 9, defect 7: a signed (HMAC) trigger acts as its app's trigger user.

The webhook secret proves the request comes from the app's CI, nothing more:
the request runs as a dedicated user of the app's company with Deployment
User rights (Deployment Manager for a production app), in that company only,
so it cannot name a task of another company for step 8 to edit.
"""

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from .test_api_common import ApiCase

TRIGGER = "/api/v1/deployments"


@tagged("post_install", "-at_install")
class TestSignedTrigger(ApiCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_company = cls.env["res.company"].create({"name": "Other Co"})
        cls.other_project = cls.env["project.project"].create(
            {"name": "Other's website", "company_id": cls.other_company.id})
        cls.other_task = cls.env["project.task"].create(
            {"name": "Other's release", "project_id": cls.other_project.id})

    def body(self, **values):
        return {"app": self.staging.name, "image_tag": "v1.1.0", "task_id": self.task.id,
                "idempotency_key": "gh-run-7", **values}

    def test_a_manager_creates_a_least_privileged_trigger_user(self):
        self.staging.trigger_user_id = False
        with self.assertRaises(AccessError):
            self.staging.with_user(self.user).action_create_trigger_user()
        self.staging.with_user(self.manager).action_create_trigger_user()
        user = self.staging.trigger_user_id
        self.assertTrue(user)
        self.assertEqual((user.company_id, user.company_ids), (self.staging.company_id,) * 2)
        self.assertFalse(user.share)
        self.assertTrue(user.has_group("do_deploy.group_do_deploy_user"))
        for group in ("do_deploy.group_do_deploy_manager", "base.group_system",
                      "base.group_erp_manager"):
            self.assertFalse(user.has_group(group), group)
        # A production app's trigger user deploys to production: a Deployment Manager.
        self.production.with_user(self.manager).action_create_trigger_user()
        self.assertTrue(self.production.trigger_user_id.has_group(
            "do_deploy.group_do_deploy_manager"))
        self.assertFalse(self.production.trigger_user_id.has_group("base.group_system"))

    def test_the_trigger_user_must_fit_the_app(self):
        admin = new_test_user(self.env, "trig_admin", groups="base.group_system,"
                              "do_deploy.group_do_deploy_manager")
        elsewhere = new_test_user(self.env, "trig_elsewhere",
                                  groups="do_deploy.group_do_deploy_user",
                                  company_id=self.other_company.id,
                                  company_ids=[(6, 0, self.other_company.ids)])
        for user, app in ((self.plain, self.staging), (admin, self.staging),
                          (elsewhere, self.staging), (self.user, self.production)):
            with self.subTest(user=user.login, app=app.name), \
                    self.assertRaises(ValidationError):
                app.with_user(self.manager).trigger_user_id = user
        self.staging.with_user(self.manager).trigger_user_id = self.user

    def test_a_signed_trigger_runs_as_the_trigger_user(self):
        response = self.signed("POST", TRIGGER, self.body())
        self.assertEqual(response.status_code, 201, response.text)
        deployment = self.env["do.deployment"].browse(response.json()["id"])
        self.assertEqual(deployment.requested_by_id, self.trigger_user)
        self.assertEqual(deployment.create_uid, self.trigger_user)
        poll = self.signed("GET", f"{TRIGGER}/{deployment.id}")
        self.assertEqual((poll.status_code, poll.json()["requested_by"]),
                         (200, self.trigger_user.name))
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        self.assertEqual(self.task.deployed_by, self.trigger_user)

    def test_a_signed_trigger_cannot_name_a_task_of_another_company(self):
        stage = self.other_task.stage_id
        response = self.signed("POST", TRIGGER, self.body(task_id=self.other_task.id))
        error = self.assertApiError(response, 422, "TASK_NOT_FOUND")
        self.assertIn(self.staging.company_id.name, error["message"])
        self.assertNotIn(self.other_company.name, error["message"])
        self.assertIn("task_id", error["message"])
        self.assertFalse(self.env["do.deployment"].search([("idempotency_key", "=", "gh-run-7")]))
        self.run_until_idle()
        self.assertEqual(self.other_task.stage_id, stage)
        self.assertFalse(self.other_task.deployed_at)

    def test_an_api_key_of_both_companies_cannot_mix_them_either(self):
        self.user.write({"company_ids": [(4, self.other_company.id)]})
        response = self.api("POST", TRIGGER, self.body(task_id=self.other_task.id),
                            key=self.user_key)
        self.assertApiError(response, 422, "TASK_NOT_FOUND")

    def test_without_a_trigger_user_signed_requests_are_refused(self):
        created = self.signed("POST", TRIGGER, self.body()).json()
        self.staging.trigger_user_id = False
        response = self.signed("POST", TRIGGER, self.body(idempotency_key="gh-run-8"))
        error = self.assertApiError(response, 403, "forbidden")
        self.assertIn("trigger user", error["message"])
        self.assertIn("Deployment Manager", error["message"])
        response = self.signed("GET", f"{TRIGGER}/{created['id']}")
        self.assertApiError(response, 403, "forbidden")
        # An archived trigger user no longer opens the app either.
        self.staging.trigger_user_id = self.trigger_user
        self.trigger_user.active = False
        response = self.signed("POST", TRIGGER, self.body(idempotency_key="gh-run-9"))
        self.assertApiError(response, 403, "forbidden")
