import hashlib
import hmac
import json
from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase

from odoo.addons.do_deploy.controllers.common import rate_limiter

from .common import DeployCommon


class ApiCase(DeployCommon, HttpCase):
    """The pipeline's fixture (simulator, account, apps, users, task) behind real HTTP.

    Every call goes through Odoo's HTTP server on a loopback port; API keys are
    real Odoo API keys and signatures real HMAC-SHA256 over the bytes sent.
    """

    WEBHOOK_SECRET = "whsec-test-5c1b9e"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_key = cls.api_key(cls.user)
        cls.manager_key = cls.api_key(cls.manager)
        cls.plain_key = cls.api_key(cls.plain)
        cls.staging.sudo().webhook_secret = cls.WEBHOOK_SECRET
        # Signed requests run as the app's trigger user (issue 9, defect 7).
        cls.staging.with_user(cls.manager).action_create_trigger_user()
        cls.trigger_user = cls.staging.trigger_user_id

    def setUp(self):
        super().setUp()
        rate_limiter.reset()
        self.addCleanup(rate_limiter.reset)

    @classmethod
    def api_key(cls, user):
        return cls.env["res.users.apikeys"].with_user(user)._generate(
            None, "ci", fields.Datetime.now() + timedelta(hours=1))

    def run_cron(self):
        """One run of the cron job; HttpCase already routes new cursors to the test's."""
        self.cron.method_direct_trigger()
        self.env.invalidate_all()

    def api(self, method, path, body=None, *, key=None, headers=None, raw=None):
        """Send ``body`` as JSON (or ``raw`` bytes as they are) with an optional Bearer key."""
        headers = dict(headers or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
        return self.url_open(path, data=data, headers=headers, method=method,
                             allow_redirects=False)

    def signed(self, method, path, body=None, secret=WEBHOOK_SECRET, raw=None):
        """Sign like GitHub: HMAC-SHA256 of the body (of the path for a GET)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else b"")
        message = data if method != "GET" else path.encode()
        signature = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        return self.api(method, path, raw=data or None,
                        headers={"X-Hub-Signature-256": signature})

    def assertApiError(self, response, status, code):
        """The one error shape: JSON {"error": {"code", "message"}}, no trace, no secret."""
        self.assertEqual(response.status_code, status, response.text)
        self.assertTrue(response.headers["Content-Type"].startswith("application/json"))
        body = response.json()
        self.assertEqual(set(body), {"error"})
        self.assertEqual(set(body["error"]), {"code", "message"})
        self.assertEqual(body["error"]["code"], code)
        self.assertTrue(body["error"]["message"])
        for secret in ("Traceback", self.user_key, self.manager_key, self.plain_key,
                       self.WEBHOOK_SECRET, "File \""):
            self.assertNotIn(secret, response.text)
        return body["error"]
