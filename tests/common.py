import importlib.util
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch
from urllib.parse import urlsplit

from odoo import fields
from odoo.tests import HttpCase, TransactionCase, common, new_test_user

from odoo.addons.do_deploy.engine.client import AppPlatformClient
from odoo.addons.do_deploy.engine.simulator import (
    DEFAULT_TOKEN,
    ManualClock,
    Simulator,
    SimulatorServer,
)
from odoo.addons.do_deploy.engine.simulator.demo import demo_spec

# The logger of the cron runner, which reports unexpected errors.
RUNNER_LOGGER = "odoo.addons.do_deploy.models.do_deployment_runner"


def load_history_generator():
    """tools/generate_history.py, the demo's history maker, imported by path."""
    path = Path(__file__).resolve().parent.parent / "tools" / "generate_history.py"
    spec = importlib.util.spec_from_file_location("do_deploy_generate_history", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deployment_class(env):
    """The registry's ``do.deployment`` class. The model is spread over several files
    with ``_inherit``; patching this class reaches a method wherever it is defined."""
    return type(env["do.deployment"])


class DeployCommon(TransactionCase):
    """A real simulator on a loopback port, an account, two apps, users and a task.

    The simulator's clock is manual: tests move it instead of sleeping. The
    cron runs through the real scheduler path (``method_direct_trigger`` in
    registry test mode, commits become savepoints) with a zero run length, so
    one call is one pass over the due deployments and never waits.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = Simulator(clock=ManualClock(), rate_limit_per_minute=100000,
                            rate_limit_per_hour=1000000)
        cls.server = SimulatorServer(cls.sim).start()
        cls.addClassCleanup(cls.server.stop)
        cls.env["ir.config_parameter"].sudo().set_param("do_deploy.cron_run_seconds", "0")
        # The simulator (API and ingress) is on this server's own network: allow it.
        cls.env["ir.config_parameter"].sudo().set_param("do_deploy.allowed_networks",
                                                        "127.0.0.1")
        cls.cron = cls.env.ref("do_deploy.ir_cron_deployment_advance")
        cls.sim_token = DEFAULT_TOKEN

        cls.user = new_test_user(cls.env, "dep_user", groups="do_deploy.group_do_deploy_user",
                                 name="Dana User")
        cls.manager = new_test_user(cls.env, "dep_manager",
                                    groups="do_deploy.group_do_deploy_manager",
                                    name="Max Manager")
        cls.plain = new_test_user(cls.env, "plain_user", groups="base.group_user",
                                  name="Pat Plain")

        cls.account = cls.env["do.account"].create({
            "name": "Simulator",
            "backend": "simulator",
            "api_url": cls.server.url,
            "token": DEFAULT_TOKEN,
        })
        cls.project = cls.env["project.project"].create({"name": "Website relaunch"})
        cls.incident_project = cls.env["project.project"].create({"name": "Incidents"})
        cls.stage_ready = cls.env["project.task.type"].create(
            {"name": "Ready", "sequence": 1, "project_ids": [(4, cls.project.id)]})
        cls.stage_deployed = cls.env["project.task.type"].create(
            {"name": "Deployed", "sequence": 2, "project_ids": [(4, cls.project.id)]})
        cls.task = cls.env["project.task"].create({
            "name": "New login page",
            "project_id": cls.project.id,
            "stage_id": cls.stage_ready.id,
            "user_ids": [(4, cls.user.id)],
        })
        cls.staging = cls._create_app("odoo-staging", "staging")
        cls.production = cls._create_app("odoo-production", "production")

    def setUp(self):
        """Every test gets fresh simulator apps (the simulator outlives transactions)."""
        super().setUp()
        self.sim.reset()
        for app in (self.staging, self.production):
            self._bind(app)

    @classmethod
    def _bind(cls, app, **sim_kwargs):
        sim_app = cls.sim.create_app(demo_spec(app.name), **sim_kwargs)
        for tag in ("v1.1.0", "v1.2.0", "v1.3.0"):
            cls.sim.push_tag("odoo", tag)
        app.write({"do_app_id": sim_app["id"], "ingress_url": False, "live_version": False})

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        """Let the engine's (connect, read) timeout tuples through to the loopback
        simulator: Odoo's test guard compares the timeout with an int."""
        if isinstance(kw.get("timeout"), tuple) and urlsplit(r.url).hostname in (
                common.HOST, "localhost"):
            return common._super_send(s, r, **kw)
        return super()._request_handler(s, r, **kw)

    @classmethod
    def _create_app(cls, name, environment, **sim_kwargs):
        app = cls.env["do.app"].create({
            "name": name,
            "account_id": cls.account.id,
            "do_app_id": name,
            "environment": environment,
            "registry_repository": "odoo",
            "deployed_stage_id": cls.stage_deployed.id,
            "incident_project_id": cls.incident_project.id,
            # Production waits for an approval by default (issue 12); the pipeline's tests
            # deploy at once, test_gates.py switches it back on.
            "approval_required": False,
        })
        cls._bind(app, **sim_kwargs)
        return app

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------

    def deploy(self, tag="v1.1.0", app=None, user=None, start=True, push=True, **values):
        """Create (and start) a deployment as ``user`` (the manager by default);
        the tag is pushed to the registry first unless ``push`` is false."""
        if push:
            self.sim.push_tag("odoo", tag)
        deployment = self.env["do.deployment"].with_user(user or self.manager).create({
            "task_id": self.task.id,
            "app_id": (app or self.staging).id,
            "image_tag": tag,
            **values,
        })
        if start:
            deployment.action_start()
        return deployment.with_env(self.env)

    def run_cron(self):
        """One run of the cron job, through the scheduler."""
        if isinstance(self, HttpCase):  # already in registry test mode
            self.cron.method_direct_trigger()
        else:
            with self.enter_registry_test_mode():
                self.cron.method_direct_trigger()
        self.env.invalidate_all()

    def make_due(self):
        """Skip the wait until the next poll: move the simulator's clock by the
        shortest planned gap and make every running deployment due now."""
        running = self.env["do.deployment"].search([("state", "=", "running")])
        now = fields.Datetime.now()
        gaps = [(d.next_poll_at - now).total_seconds() for d in running if d.next_poll_at]
        if gaps and min(gaps) > 0:
            self.sim.clock.advance(min(gaps))
        running.write({"next_poll_at": now})
        return running

    def run_until_idle(self, max_runs=60):
        """Run the cron until nothing is queued or running; return the number of runs."""
        Deployment = self.env["do.deployment"]
        for runs in range(1, max_runs + 1):
            self.run_cron()
            if not Deployment.search_count([("state", "in", ("queued", "running"))]):
                return runs
            self.make_due()
        stuck = Deployment.search([("state", "in", ("queued", "running"))])
        self.fail(f"deployments still in flight after {max_runs} cron runs: " + "; ".join(
            f"{d.name} at {d.current_step_id.code}: "
            f"{(d.current_step_id.log or '').strip().splitlines()[-1:]}" for d in stuck))

    def step(self, deployment, code):
        return deployment.step_ids.filtered(lambda s: s.code == code)

    def sim_deployments(self, app):
        """The app's deployments as DigitalOcean lists them."""
        client = AppPlatformClient(DEFAULT_TOKEN, self.server.url)
        return client.list_deployments(app.do_app_id, per_page=200)

    def assertStepFailed(self, deployment, code, error_code):
        step = self.step(deployment, code)
        self.assertEqual(step.state, "failed", step.log)
        self.assertEqual(step.error_code_id.code, error_code, step.log)
        self.assertTrue(step.error_message)
        self.assertEqual(step.mitigation, step.error_code_id.mitigation)
        self.assertTrue(step.end_date)

    def patch_step(self, name, **kwargs):
        return patch.object(deployment_class(self.env), name, autospec=True, **kwargs)

    def age(self, deployment, seconds):
        """Pretend the current step started ``seconds`` ago (for deadlines)."""
        step = deployment.current_step_id
        step.start_date = fields.Datetime.now() - timedelta(seconds=seconds)
