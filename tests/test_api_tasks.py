from datetime import datetime

from odoo.tests import tagged

from odoo.addons.do_deploy.controllers.common import MAX_BODY_BYTES, RATE_LIMIT_PARAM

from .test_api_common import ApiCase

# The body of SOP-DEPLOY-001 step 8, as its curl command sends it.
SOP_STEP8_BODY = {
    "state": "deployed",
    "deployment_id": "b6bdf840-2b3f-4bb4-9d0a-0f2a4e0a1c3d",
    "deployed_at": "2025-11-01T12:00:00Z",
    "deployed_by": "GitHub Actions",
}


@tagged("post_install", "-at_install")
class TestApiTasks(ApiCase):
    def setUp(self):
        super().setUp()
        self.path = f"/api/v1/tasks/{self.task.id}"

    def test_read_task(self):
        response = self.api("GET", self.path, key=self.user_key)
        self.assertEqual(response.status_code, 200, response.text)
        body = response.json()
        self.assertEqual((body["id"], body["name"], body["state"]),
                         (self.task.id, "New login page", "none"))
        self.assertIsNone(body["deployment"])
        self.assertIsNone(body["deployed_at"])

    def test_sop_step8_update(self):
        response = self.api("POST", self.path, SOP_STEP8_BODY, key=self.user_key)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["state"], "deployed")
        self.assertEqual(self.task.deploy_state, "deployed")
        self.assertEqual(self.task.deployed_at, datetime(2025, 11, 1, 12, 0, 0))
        self.assertEqual(self.task.deployed_by, self.user)
        message = self.task.message_ids[0]
        self.assertIn("GitHub Actions", message.body)
        self.assertIn(SOP_STEP8_BODY["deployment_id"], message.body)
        # The SOP's verification: GET .../tasks/<id> | jq .state
        body = self.api("GET", self.path, key=self.user_key).json()
        self.assertEqual(body["state"], "deployed")
        self.assertEqual(body["deployed_at"], "2025-11-01T12:00:00Z")
        self.assertEqual(body["deployed_by"], self.user.name)

    def test_update_with_an_odoo_deployment(self):
        deployment = self.deploy("v1.2.0", start=False)
        body = {"state": "deployed", "deployment_id": deployment.id,
                "deployed_at": "2025-11-01T14:00:00+02:00"}
        response = self.api("POST", self.path, body, key=self.user_key)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(self.task.deployed_version, "v1.2.0")
        self.assertEqual(self.task.deployed_at, datetime(2025, 11, 1, 12, 0, 0))
        failed = self.api("POST", self.path, {"state": "failed"}, key=self.user_key)
        self.assertEqual(failed.json()["state"], "failed")

    def test_conflicts_are_409(self):
        other_task = self.env["project.task"].create(
            {"name": "Other", "project_id": self.project.id})
        other_deployment = self.deploy("v1.2.0", start=False, task_id=other_task.id)
        response = self.api("POST", self.path, {**SOP_STEP8_BODY,
                                                "deployment_id": other_deployment.id},
                            key=self.user_key)
        self.assertApiError(response, 409, "conflict")
        running = self.deploy("v1.1.0")  # queued: the pipeline owns the outcome
        response = self.api("POST", self.path, SOP_STEP8_BODY, key=self.user_key)
        error = self.assertApiError(response, 409, "conflict")
        self.assertIn(running.name, error["message"])
        self.assertEqual(self.task.deploy_state, "deploying")

    def test_deployed_at_in_every_rfc3339_form(self):
        """Read the same on Python 3.10, whose fromisoformat takes neither 'Z' nor nine
        fraction digits (Go's RFC3339Nano, as CI tools built in Go write it)."""
        noon = datetime(2025, 11, 1, 12, 0, 0)
        forms = {
            "2025-11-01T12:00:00.123456789Z": noon,
            "2025-11-01t12:00:00.5z": noon,
            "2025-11-01T14:00:00.1+02:00": noon,
            "2025-11-01 12:00:00Z": noon,
            "2025-11-01T12:00:00": noon,  # no offset: UTC, as Odoo stores datetimes
            "2025-11-01": datetime(2025, 11, 1),
        }
        Task = self.env["project.task"]
        for text, expected in forms.items():
            with self.subTest(text=text):
                self.assertEqual(Task._parse_api_datetime(text), expected)
                response = self.api("POST", self.path, {**SOP_STEP8_BODY, "deployed_at": text},
                                    key=self.user_key)
                self.assertEqual(response.status_code, 200, response.text)
                self.assertEqual(self.task.deployed_at, expected)
        for text in ("yesterday", "2025-13-01T12:00:00Z", "2025-11-01T12:00:00+0200", "", 17):
            with self.subTest(text=text):
                self.assertIsNone(Task._parse_api_datetime(text))

    def test_invalid_updates_are_422(self):
        cases = [
            {"state": "shipped"},
            {"deployed_at": "yesterday"},
            {"deployed_at": 1730462400},
            {"deployment_id": 987654321},
            {"deployment_id": ["x"]},
            {"deployed_by": 7},
            {"version": 2},
            {"stage": "Done"},
        ]
        for values in cases:
            with self.subTest(values=values):
                response = self.api("POST", self.path, {**SOP_STEP8_BODY, **values},
                                    key=self.user_key)
                self.assertApiError(response, 422, "validation_error")
        self.assertEqual(self.task.deploy_state, "none")

    def test_credentials(self):
        self.assertApiError(self.api("GET", self.path), 401, "UNAUTHORIZED_API")
        self.assertApiError(self.api("POST", self.path, SOP_STEP8_BODY, key="0" * 40),
                            401, "UNAUTHORIZED_API")
        self.assertApiError(self.api("POST", self.path, SOP_STEP8_BODY, key=self.plain_key),
                            403, "forbidden")
        self.assertEqual(self.task.deploy_state, "none")

    def test_task_the_user_cannot_see_is_403(self):
        """Record rules apply as in the web client: a private project's task is closed."""
        private = self.env["project.project"].create(
            {"name": "Private", "privacy_visibility": "followers"})
        task = self.env["project.task"].create({"name": "Secret", "project_id": private.id})
        response = self.api("GET", f"/api/v1/tasks/{task.id}", key=self.user_key)
        self.assertApiError(response, 403, "forbidden")
        private.message_subscribe(partner_ids=self.user.partner_id.ids)
        response = self.api("GET", f"/api/v1/tasks/{task.id}", key=self.user_key)
        self.assertEqual(response.status_code, 200, response.text)

    def test_unknown_task_is_404(self):
        response = self.api("GET", "/api/v1/tasks/987654321", key=self.user_key)
        self.assertApiError(response, 404, "TASK_NOT_FOUND")

    def test_malformed_bodies(self):
        response = self.api("POST", self.path, raw=b"state=deployed", key=self.user_key)
        self.assertApiError(response, 400, "bad_request")
        response = self.api("POST", self.path, raw=b"", key=self.user_key)
        self.assertApiError(response, 400, "bad_request")
        response = self.api("POST", self.path, {"state": "deployed", "note": "x" * MAX_BODY_BYTES},
                            key=self.user_key)
        self.assertApiError(response, 413, "payload_too_large")

    def test_wrong_method_is_405(self):
        response = self.api("PUT", self.path, SOP_STEP8_BODY, key=self.user_key)
        self.assertApiError(response, 405, "method_not_allowed")
        self.assertEqual(response.headers["Allow"], "GET, POST")

    def test_too_many_requests_is_429(self):
        self.env["ir.config_parameter"].sudo().set_param(RATE_LIMIT_PARAM, "1")
        self.assertEqual(self.api("GET", self.path, key=self.user_key).status_code, 200)
        response = self.api("GET", self.path, key=self.user_key)
        self.assertApiError(response, 429, "rate_limited")
        self.assertIn("Retry-After", response.headers)
