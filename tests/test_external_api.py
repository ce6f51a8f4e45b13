import json
from datetime import datetime, timedelta

from odoo.tests import HttpCase, tagged

from .common import DeployCommon


@tagged("post_install", "-at_install")
class TestExternalApi(DeployCommon, HttpCase):
    """Scripts drive a deployment through Odoo's JSON-2 API, without the UI."""

    def setUp(self):
        super().setUp()
        self.keys = {
            user: self.env["res.users.apikeys"].with_user(user)._generate(
                None, "script", datetime.now() + timedelta(days=1))
            for user in (self.user, self.manager)
        }

    def call(self, user, model, method, **kwargs):
        response = self.url_open(
            f"/json/2/{model}/{method}", data=json.dumps(kwargs),
            headers={"Authorization": f"Bearer {self.keys[user]}",
                     "Content-Type": "application/json",
                     "X-Odoo-Database": self.env.cr.dbname})
        return response.status_code, response.json()

    def test_create_start_and_follow_a_deployment(self):
        status, ids = self.call(self.user, "do.deployment", "create", vals_list=[{
            "task_id": self.task.id, "app_id": self.staging.id, "image_tag": "v1.1.0"}])
        self.assertEqual(status, 200, ids)
        status, result = self.call(self.user, "do.deployment", "action_start", ids=ids)
        self.assertEqual((status, result), (200, True))
        self.run_until_idle()
        status, [record] = self.call(self.user, "do.deployment", "read", ids=ids,
                                     fields=["state", "progress", "do_deployment_id"])
        self.assertEqual((record["state"], record["progress"]), ("done", 100.0))
        self.assertTrue(record["do_deployment_id"])
        status, steps = self.call(
            self.user, "do.deployment.step", "search_read",
            domain=[["deployment_id", "in", ids]],
            fields=["code", "state", "duration", "error_code_id"])
        self.assertEqual(status, 200)
        self.assertEqual([s["code"] for s in steps], [
            "update_spec", "apply_spec", "create_deployment", "monitor", "health_check",
            "traffic_switch", "validate", "update_task"])
        self.assertEqual({s["state"] for s in steps}, {"done"})

    def test_bad_requests_are_refused_with_their_code(self):
        cases = [
            (self.user, {"app_id": self.staging.id, "image_tag": "bad tag"}, 422,
             "IMAGE_TAG_MISSING"),
            (self.user, {"app_id": 424242, "image_tag": "v1.1.0"}, 422, "APP_NOT_FOUND"),
            (self.user, {"app_id": self.production.id, "image_tag": "v1.1.0"}, 403,
             "Deployment Manager"),
        ]
        for user, vals, expected_status, text in cases:
            with self.subTest(vals=vals):
                status, body = self.call(user, "do.deployment", "create", vals_list=[vals])
                self.assertEqual(status, expected_status, body)
                self.assertIn(text, body["message"])
        self.assertFalse(self.env["do.deployment"].search([]))
        status, body = self.call(self.user, "do.deployment", "write",
                                 ids=[], vals={"state": "done"})
        self.assertEqual(status, 403, body)
