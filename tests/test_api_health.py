import os
import uuid
from unittest.mock import patch

import odoo
from odoo.tests import HttpCase, tagged
from odoo.tools import config, reset_cached_properties


@tagged("post_install", "-at_install")
class TestApiHealth(HttpCase):
    def test_health_ok_reports_version_and_deployment(self):
        env = {"DO_DEPLOY_VERSION": "v1.4.0", "DO_DEPLOY_DEPLOYMENT_ID": "dep-7f3a"}
        with patch.dict(os.environ, env):
            response = self.url_open("/api/v1/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(),
                         {"status": "ok", "database": "connected", "version": "v1.4.0"})
        self.assertEqual(response.headers["X-Deployment-ID"], "dep-7f3a")
        self.assertEqual(response.headers["Cache-Control"], "no-store")
        self.assertNotIn("Set-Cookie", response.headers)
        self.assertNotIn(self.env.cr.dbname, response.text)

    def test_health_without_stamped_version(self):
        with patch.dict(os.environ):
            os.environ.pop("DO_DEPLOY_VERSION", None)
            os.environ.pop("DO_DEPLOY_DEPLOYMENT_ID", None)
            response = self.url_open("/api/v1/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["version"], "unknown")
        # Without a deployment id in the environment, the header carries the version.
        self.assertEqual(response.headers["X-Deployment-ID"], "unknown")

    def test_health_database_unreachable_is_503(self):
        """The server is started for a database PostgreSQL cannot open (``-d`` names one
        that does not exist): loading its registry really fails, as when PostgreSQL is
        down, so Odoo serves the request without a database; with the addon loaded
        server-wide the route still answers, and its own connection really fails.
        """
        missing = f"api_missing_{uuid.uuid4().hex[:8]}"
        reset_cached_properties(odoo.http.root)
        self.addCleanup(reset_cached_properties, odoo.http.root)
        self.patch(config, "options", config.options.new_child({
            "server_wide_modules": [*config["server_wide_modules"], "do_deploy"],
            "db_name": [missing],
        }))
        with patch.dict(os.environ, {"DO_DEPLOY_VERSION": "v1.4.0"}), \
                self.assertLogs("odoo.http", "WARNING") as odoo_log, \
                self.assertLogs("odoo.addons.do_deploy.controllers.health", "WARNING"):
            response = self.url_open("/api/v1/health")
        self.assertIn("Database or registry unusable", odoo_log.output[0])
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(),
                         {"status": "error", "database": "unreachable", "version": "v1.4.0"})
        self.assertEqual(response.headers["X-Deployment-ID"], "v1.4.0")
        self.assertNotIn(missing, response.text)

    def test_odoo_web_health_is_process_only(self):
        """Odoo's /web/health only says the HTTP worker runs; ours also checks the database."""
        response = self.url_open("/web/health")
        self.assertEqual(response.json(), {"status": "pass"})

    def test_health_wrong_method(self):
        response = self.url_open("/api/v1/health", data=b"{}", method="POST")
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response.headers["Allow"], "GET, HEAD")
        self.assertEqual(response.json()["error"]["code"], "method_not_allowed")

    def test_unknown_api_path_is_json_404(self):
        response = self.url_open("/api/v1/nothing/here")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["error"]["code"], "not_found")
