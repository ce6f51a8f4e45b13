"""Issue 9, defect 6: what the UI lets a Deployment Manager point Odoo at.

Executable paths and API URLs are for system administrators; every URL the
pipeline fetches (API, log archives, ingress, endpoint checks) is refused when
it reaches this server's own network, unless the system parameter
``do_deploy.allowed_networks`` allows it. The simulator listens on 127.0.0.1,
so the fixture allows that address and these tests take it away again.
"""

import logging

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from odoo.addons.do_deploy.engine.errors import DeployError
from odoo.addons.do_deploy.models.do_account import ALLOWED_NETWORKS_PARAM

from .common import DeployCommon


@tagged("post_install", "-at_install")
class TestOutboundUrls(DeployCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = new_test_user(
            cls.env, "dep_sysadmin", name="Sam Sysadmin",
            groups="base.group_system,do_deploy.group_do_deploy_manager")

    def forbid_loopback(self):
        self.env["ir.config_parameter"].sudo().set_param(ALLOWED_NETWORKS_PARAM, "")

    def test_managers_do_not_set_executables_or_api_urls(self):
        account = self.account.with_user(self.manager)
        for vals in ({"doctl_path": "/bin/sh"}, {"api_url": "http://169.254.169.254"}):
            with self.subTest(vals=vals), self.assertRaises(AccessError):
                account.write(vals)
            with self.subTest(create=vals), self.assertRaises(AccessError):
                self.env["do.account"].with_user(self.manager).create(
                    {"name": "Probe", "backend": "doctl", **vals})
        # Without them a manager still creates accounts: DigitalOcean's API by default.
        created = self.env["do.account"].with_user(self.manager).create(
            {"name": "Acme", "backend": "api", "token": "dop_v1_acme"})
        self.assertEqual(created._get_api_url(), "https://api.digitalocean.com")
        # The form a manager gets has neither field; a system administrator's has both.
        arch = self.env["do.account"].with_user(self.manager).get_views(
            [(False, "form")])["views"]["form"]["arch"]
        self.assertNotIn('name="doctl_path"', arch)
        self.assertNotIn('name="api_url"', arch)
        arch = self.env["do.account"].with_user(self.admin).get_views(
            [(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="doctl_path"', arch)
        self.assertIn('name="api_url"', arch)
        self.account.with_user(self.admin).write({"doctl_path": "/usr/local/bin/doctl"})
        self.assertEqual(self.account.doctl_path, "/usr/local/bin/doctl")

    def test_an_api_url_on_this_servers_network_is_refused(self):
        """The simulator's 127.0.0.1 is only reached while the allow-list names it."""
        self.forbid_loopback()
        requests_before = self.sim.stats()["requests"]
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertStepFailed(deployment, "update_spec", "URL_NOT_ALLOWED")
        self.assertEqual(deployment.state, "failed")
        self.assertIn("127.0.0.1", self.step(deployment, "update_spec").error_message)
        self.assertEqual(self.sim.stats()["requests"], requests_before)
        # doctl connects by itself: its API URL is checked before it would run.
        self.account.backend = "doctl"
        with self.assertRaises(DeployError) as refused:
            self.account._get_backend()
        self.assertEqual(refused.exception.code, "URL_NOT_ALLOWED")
        self.account.backend = "simulator"
        self.env["ir.config_parameter"].sudo().set_param(
            ALLOWED_NETWORKS_PARAM, "10.0.0.0/8, 127.0.0.0/8")
        again = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(again.state, "done", again.step_ids.mapped("log"))

    def test_a_malformed_allow_list_refuses_everything(self):
        self.env["ir.config_parameter"].sudo().set_param(
            ALLOWED_NETWORKS_PARAM, "127.0.0.1, not a network!")
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertStepFailed(deployment, "update_spec", "URL_NOT_ALLOWED")
        self.assertIn(ALLOWED_NETWORKS_PARAM, self.step(deployment, "update_spec").error_message)

    def test_checks_of_an_ingress_on_this_servers_network_are_refused(self):
        """What steps 5 to 7 run through: the account's guarded check."""
        app = self.sim.get_app(self.staging.do_app_id)
        ingress = f"{self.server.url}/_ingress/{app['id']}"
        self.assertTrue(self.account._run_check("check_health", ingress).ok)
        self.forbid_loopback()
        refused = self.account._run_check("check_health", ingress)
        self.assertEqual((refused.ok, refused.code), (False, "URL_NOT_ALLOWED"))
        results = self.account._run_check(
            "check_endpoints", ingress, [{"path": "/web/login", "status": 200}])
        self.assertEqual([result.code for result in results], ["URL_NOT_ALLOWED"])
        served = self.account._run_check("check_served_version", ingress, "v1.0.0")
        self.assertEqual(served.code, "URL_NOT_ALLOWED")
        with self.assertRaises(ValueError):
            self.account._run_check("check_tls", "example.com")

    def test_an_ingress_on_this_servers_network_fails_the_health_check(self):
        """The API is allowed by host name (localhost), the ingress on 127.0.0.1 is not."""
        self.env["ir.config_parameter"].sudo().set_param(ALLOWED_NETWORKS_PARAM, "localhost")
        self.account.api_url = self.server.url.replace("127.0.0.1", "localhost")
        self.staging.ingress_url = f"{self.server.url}/_ingress/{self.staging.do_app_id}"
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertStepFailed(deployment, "health_check", "URL_NOT_ALLOWED")
        self.assertEqual(self.step(deployment, "monitor").state, "done")

    def test_test_connection_is_for_managers_and_guarded(self):
        with self.assertRaises(AccessError):
            self.account.with_user(self.user).action_test_connection()
        action = self.account.with_user(self.manager).action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.forbid_loopback()
        with self.assertRaisesRegex(UserError, "URL_NOT_ALLOWED"):
            self.account.with_user(self.manager).action_test_connection()

    def test_failed_checks_keep_no_answer_text_in_step_data(self):
        """Deployment Users read step data: a failed check records the status, type and
        size of the answer, not its text (which goes to the server log, redacted)."""
        deployment = self.deploy("v1.2.0--health-fail-always")
        # logging.INFO itself: Odoo names its level 25 "INFO" too.
        with self.assertLogs("odoo.addons.do_deploy.engine.checks", logging.INFO) as logs:
            self.run_until_idle()
            self.assertStepFailed(deployment, "health_check", "HEALTH_CHECK_FAIL")
        self.assertIn('"database":"connected"', "\n".join(logs.output))
        checks = self.step(deployment, "health_check").with_user(self.user).data["checks"]
        self.assertEqual(len(checks), 2)
        for check in checks:
            self.assertEqual(check["status"], 503)
            self.assertNotIn("body", check["data"])
            self.assertEqual(check["data"]["answer"]["content_type"], "application/json")
            self.assertGreater(check["data"]["answer"]["bytes"], 0)
        text = str(self.env["do.deployment.step"].search(
            [("deployment_id", "=", deployment.id)]).mapped("data"))
        self.assertNotIn('"database": "connected"', text)
