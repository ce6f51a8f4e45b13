import json
from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.do_deploy.controllers.common import MAX_BODY_BYTES, RATE_LIMIT_PARAM

from .common import deployment_class
from .test_api_common import ApiCase

TRIGGER = "/api/v1/deployments"


@tagged("post_install", "-at_install")
class TestApiDeployments(ApiCase):
    def trigger_body(self, **values):
        return {"app": self.staging.name, "image_tag": "v1.1.0", "task_id": self.task.id,
                "force_rebuild": False, "idempotency_key": "gh-run-101-1", **values}

    # ------------------------------------------------------------------
    # POST /api/v1/deployments with an API key
    # ------------------------------------------------------------------

    def test_trigger_with_api_key(self):
        response = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key)
        self.assertEqual(response.status_code, 201, response.text)
        body = response.json()
        deployment = self.env["do.deployment"].browse(body["id"])
        self.assertEqual(deployment.state, "queued")
        self.assertEqual(deployment.app_id, self.staging)
        self.assertEqual(deployment.task_id, self.task)
        self.assertEqual(deployment.image_tag, "v1.1.0")
        self.assertEqual(deployment.idempotency_key, "gh-run-101-1")
        self.assertEqual(deployment.requested_by_id, self.user)
        self.assertEqual(len(deployment.step_ids), 8)
        status_url = f"{self.base_url()}/api/v1/deployments/{deployment.id}"
        self.assertEqual(body["status_url"], status_url)
        self.assertEqual(response.headers["Location"], status_url)
        self.assertEqual((body["name"], body["state"]), (deployment.name, "queued"))

    def test_app_by_id_or_digitalocean_id(self):
        response = self.api("POST", TRIGGER, self.trigger_body(app=self.staging.id),
                            key=self.user_key)
        self.assertEqual(response.status_code, 201, response.text)
        response = self.api("POST", TRIGGER, self.trigger_body(
            app=self.staging.do_app_id, idempotency_key="gh-run-101-2", force_rebuild=True),
            key=self.user_key)
        self.assertEqual(response.status_code, 201, response.text)
        self.assertTrue(self.env["do.deployment"].browse(response.json()["id"]).force_rebuild)

    def test_replayed_idempotency_key_returns_the_same_deployment(self):
        first = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key)
        again = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key)
        self.assertEqual(first.status_code, 201)
        self.assertEqual(again.status_code, 200, again.text)
        self.assertEqual(again.headers["Idempotent-Replayed"], "true")
        self.assertEqual(again.json()["id"], first.json()["id"])
        self.assertEqual(self.env["do.deployment"].search_count(
            [("idempotency_key", "=", "gh-run-101-1")]), 1)

    def test_idempotency_key_from_header(self):
        body = self.trigger_body()
        del body["idempotency_key"]
        headers = {"Idempotency-Key": "vscode-42"}
        first = self.api("POST", TRIGGER, body, key=self.user_key, headers=headers)
        again = self.api("POST", TRIGGER, body, key=self.user_key, headers=headers)
        self.assertEqual((first.status_code, again.status_code), (201, 200))
        self.assertEqual(first.json()["id"], again.json()["id"])
        clash = self.api("POST", TRIGGER, {**body, "idempotency_key": "other"},
                         key=self.user_key, headers=headers)
        self.assertApiError(clash, 422, "validation_error")

    def test_idempotency_key_reused_for_another_request_is_409(self):
        self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key)
        response = self.api("POST", TRIGGER, self.trigger_body(image_tag="v1.2.0"),
                            key=self.user_key)
        error = self.assertApiError(response, 409, "conflict")
        self.assertIn("image_tag", error["message"])
        self.assertEqual(self.env["do.deployment"].search_count(
            [("idempotency_key", "=", "gh-run-101-1")]), 1)

    def test_missing_credentials_is_401(self):
        response = self.api("POST", TRIGGER, self.trigger_body())
        self.assertApiError(response, 401, "UNAUTHORIZED_API")
        self.assertIn("Bearer", response.headers["WWW-Authenticate"])

    def test_wrong_api_key_is_401(self):
        response = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key[:-4] + "abcd")
        self.assertApiError(response, 401, "UNAUTHORIZED_API")
        response = self.api("POST", TRIGGER, self.trigger_body(),
                            headers={"Authorization": f"Basic {self.user_key}"})
        self.assertApiError(response, 401, "UNAUTHORIZED_API")
        self.assertFalse(self.env["do.deployment"].search([("idempotency_key", "!=", False)]))

    def test_valid_key_without_deployment_group_is_403(self):
        response = self.api("POST", TRIGGER, self.trigger_body(), key=self.plain_key)
        self.assertApiError(response, 403, "forbidden")
        self.assertFalse(self.env["do.deployment"].search([("idempotency_key", "!=", False)]))

    def test_production_needs_a_manager(self):
        body = self.trigger_body(app=self.production.name)
        self.assertApiError(self.api("POST", TRIGGER, body, key=self.user_key), 403, "forbidden")
        response = self.api("POST", TRIGGER, body, key=self.manager_key)
        self.assertEqual(response.status_code, 201, response.text)

    def test_invalid_requests_are_422(self):
        cases = [
            ({"app": "no-such-app"}, "APP_NOT_FOUND"),
            ({"app": None}, "APP_NOT_FOUND"),
            ({"image_tag": "-bad tag"}, "IMAGE_TAG_MISSING"),
            ({"image_tag": ""}, "IMAGE_TAG_MISSING"),
            ({"task_id": 987654321}, "TASK_NOT_FOUND"),
            ({"task_id": "twelve"}, "validation_error"),
            ({"force_rebuild": "yes"}, "validation_error"),
            ({"idempotency_key": ""}, "validation_error"),
            ({"idempotency_key": "k" * 256}, "validation_error"),
            ({"tag": "v1.1.0"}, "validation_error"),
        ]
        for values, code in cases:
            with self.subTest(values=values):
                response = self.api("POST", TRIGGER, self.trigger_body(**values),
                                    key=self.user_key)
                self.assertApiError(response, 422, code)
        self.assertFalse(self.env["do.deployment"].search([("idempotency_key", "!=", False)]))

    def test_non_json_body_is_400(self):
        for raw in (b"app=odoo-staging&image_tag=v1", b'{"app": ', b'["odoo-staging"]',
                    b"\xff\xfe\x00"):
            with self.subTest(raw=raw):
                response = self.api("POST", TRIGGER, raw=raw, key=self.user_key,
                                    headers={"Content-Type": "text/plain"})
                self.assertApiError(response, 400, "bad_request")

    def test_oversized_body_is_413(self):
        body = self.trigger_body(note="x" * MAX_BODY_BYTES)
        response = self.api("POST", TRIGGER, body, key=self.user_key)
        self.assertApiError(response, 413, "payload_too_large")
        # A chunked body has no declared length to check before reading it.
        chunks = iter([json.dumps(self.trigger_body()).encode()])
        response = self.api("POST", TRIGGER, raw=chunks, key=self.user_key)
        self.assertApiError(response, 411, "length_required")
        self.assertFalse(self.env["do.deployment"].search([("idempotency_key", "!=", False)]))

    def test_wrong_method_is_405(self):
        response = self.api("GET", TRIGGER, key=self.user_key)
        self.assertApiError(response, 405, "method_not_allowed")
        self.assertEqual(response.headers["Allow"], "POST")
        response = self.api("DELETE", f"{TRIGGER}/1", key=self.user_key)
        self.assertApiError(response, 405, "method_not_allowed")
        self.assertEqual(response.headers["Allow"], "GET")

    def test_too_many_requests_is_429(self):
        self.env["ir.config_parameter"].sudo().set_param(RATE_LIMIT_PARAM, "2")
        statuses = [self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key).status_code
                    for _attempt in range(2)]
        self.assertEqual(statuses, [201, 200])
        response = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key)
        self.assertApiError(response, 429, "rate_limited")
        self.assertGreaterEqual(int(response.headers["Retry-After"]), 1)

    def test_unexpected_error_is_500_without_trace_and_undone(self):
        boom = RuntimeError("boom in /srv/odoo/secret_module.py")
        with patch.object(deployment_class(self.env), "action_start", side_effect=boom), \
                self.assertLogs("odoo.addons.do_deploy.controllers.common", "ERROR") as log:
            response = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key)
        error = self.assertApiError(response, 500, "internal_error")
        self.assertNotIn("boom", error["message"])
        self.assertIn("Traceback", "\n".join(log.output))
        # The deployment created before the failure was rolled back with it.
        self.assertFalse(self.env["do.deployment"].search([("idempotency_key", "!=", False)]))

    # ------------------------------------------------------------------
    # POST /api/v1/deployments signed with the app's webhook secret
    # ------------------------------------------------------------------

    def test_signed_trigger(self):
        response = self.signed("POST", TRIGGER, self.trigger_body())
        self.assertEqual(response.status_code, 201, response.text)
        deployment = self.env["do.deployment"].browse(response.json()["id"])
        self.assertEqual(deployment.state, "queued")
        self.assertEqual(deployment.requested_by_id, self.trigger_user)
        again = self.signed("POST", TRIGGER, self.trigger_body())
        self.assertEqual((again.status_code, again.json()["id"]), (200, deployment.id))

    def test_wrong_signature_is_401(self):
        response = self.signed("POST", TRIGGER, self.trigger_body(), secret="not-the-secret")
        self.assertApiError(response, 401, "UNAUTHORIZED_API")
        # A signature of other bytes than those sent does not pass either.
        raw = json.dumps(self.trigger_body()).encode()
        tampered = raw.replace(b"v1.1.0", b"v1.3.0")
        good = self.signed("POST", TRIGGER, raw=raw).request.headers["X-Hub-Signature-256"]
        response = self.api("POST", TRIGGER, raw=tampered,
                            headers={"X-Hub-Signature-256": good})
        self.assertApiError(response, 401, "UNAUTHORIZED_API")
        self.assertEqual(self.env["do.deployment"].search_count(
            [("idempotency_key", "=", "gh-run-101-1")]), 1)

    def test_missing_signature_is_401(self):
        response = self.api("POST", TRIGGER, self.trigger_body(),
                            headers={"X-Hub-Signature-256": ""})
        self.assertApiError(response, 401, "UNAUTHORIZED_API")
        response = self.api("POST", TRIGGER, self.trigger_body())
        self.assertApiError(response, 401, "UNAUTHORIZED_API")

    def test_signature_only_opens_its_own_app(self):
        """The staging secret does not sign a production deployment, nor an app without one."""
        body = self.trigger_body(app=self.production.name)
        self.assertApiError(self.signed("POST", TRIGGER, body), 401, "UNAUTHORIZED_API")
        body = self.trigger_body(app="no-such-app")
        self.assertApiError(self.signed("POST", TRIGGER, body), 401, "UNAUTHORIZED_API")

    # ------------------------------------------------------------------
    # GET /api/v1/deployments/<id>
    # ------------------------------------------------------------------

    def test_poll_a_deployment_to_its_end(self):
        created = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key).json()
        queued = self.api("GET", created["status_url"], key=self.user_key)
        self.assertEqual(queued.status_code, 200, queued.text)
        self.assertEqual((queued.json()["state"], queued.json()["finished"]), ("queued", False))
        self.run_until_idle()
        response = self.api("GET", created["status_url"], key=self.user_key)
        self.assertEqual(response.status_code, 200, response.text)
        body = response.json()
        self.assertEqual((body["state"], body["progress"], body["finished"]), ("done", 100.0, True))
        self.assertEqual([step["code"] for step in body["steps"]], [
            "update_spec", "apply_spec", "create_deployment", "monitor", "health_check",
            "traffic_switch", "validate", "update_task"])
        self.assertEqual({step["state"] for step in body["steps"]}, {"done"})
        self.assertIsNone(body["error"])
        self.assertTrue(body["do_deployment_id"])
        rollback = body["rollback"]
        self.assertTrue(rollback["previous_do_deployment_id"])
        self.assertEqual(rollback["previous_version"], "v1.0.0")
        self.assertIsNone(rollback["rolled_back_by"])

    def test_poll_a_deployment_without_a_task(self):
        """Without task_id there is no task to update: step 8 is skipped, with no duration
        and no error, and the deployment is done."""
        body = self.trigger_body()
        del body["task_id"]
        created = self.api("POST", TRIGGER, body, key=self.user_key).json()
        self.assertIsNone(created["task_id"])
        self.run_until_idle()
        body = self.api("GET", created["status_url"], key=self.user_key).json()
        self.assertEqual((body["state"], body["progress"], body["error"]), ("done", 100.0, None))
        update_task = body["steps"][-1]
        self.assertEqual(update_task["code"], "update_task")
        self.assertEqual(update_task["state"], "skipped")
        self.assertIsNone(update_task["duration"])
        self.assertIsNone(update_task["error_code"])
        self.assertFalse(update_task["over_budget"])
        self.assertEqual({step["state"] for step in body["steps"][:-1]}, {"done"})

    def test_poll_a_rolled_back_deployment(self):
        tag = "v1.2.0--health-fail-always"
        self.sim.push_tag("odoo", tag)
        created = self.api("POST", TRIGGER, self.trigger_body(image_tag=tag),
                           key=self.manager_key).json()
        self.run_until_idle()
        body = self.api("GET", created["status_url"], key=self.user_key).json()
        self.assertEqual(body["state"], "rolled_back")
        self.assertEqual(body["error"]["code"], "HEALTH_CHECK_FAIL")
        self.assertTrue(body["error"]["mitigation"])
        health = next(step for step in body["steps"] if step["code"] == "health_check")
        self.assertEqual((health["state"], health["error_code"]), ("failed", "HEALTH_CHECK_FAIL"))
        rollback = body["rollback"]["rolled_back_by"]
        self.assertEqual(rollback["state"], "done")
        rollback_body = self.api("GET", rollback["status_url"], key=self.user_key).json()
        self.assertEqual(rollback_body["kind"], "rollback")
        self.assertEqual(rollback_body["rollback"]["rollback_of"]["id"], created["id"])
        self.assertEqual([(step["code"], step["state"]) for step in rollback_body["steps"]], [
            ("rb_validate", "done"), ("rb_create", "done"), ("rb_monitor", "done"),
            ("rb_health_check", "done"), ("rb_commit", "done"), ("rb_revert", "skipped")])

    def test_poll_with_a_signature(self):
        created = self.signed("POST", TRIGGER, self.trigger_body()).json()
        path = f"/api/v1/deployments/{created['id']}"
        response = self.signed("GET", path)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["id"], created["id"])
        self.assertApiError(self.signed("GET", path, secret="wrong"), 401, "UNAUTHORIZED_API")

    def test_poll_errors(self):
        created = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key).json()
        path = f"/api/v1/deployments/{created['id']}"
        self.assertApiError(self.api("GET", path), 401, "UNAUTHORIZED_API")
        self.assertApiError(self.api("GET", path, key="nope"), 401, "UNAUTHORIZED_API")
        self.assertApiError(self.api("GET", path, key=self.plain_key), 403, "forbidden")
        self.assertApiError(self.api("GET", f"{TRIGGER}/987654321", key=self.user_key),
                            404, "not_found")

    def test_deployment_of_another_company_is_403(self):
        created = self.api("POST", TRIGGER, self.trigger_body(), key=self.user_key).json()
        other_company = self.env["res.company"].create({"name": "Other Co"})
        self.user.write({"company_ids": [(6, 0, other_company.ids)],
                         "company_id": other_company.id})
        response = self.api("GET", created["status_url"], key=self.user_key)
        self.assertApiError(response, 403, "forbidden")
