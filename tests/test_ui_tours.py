import importlib.util
import threading
from contextlib import ExitStack
from pathlib import Path
from unittest.mock import patch

from odoo import SUPERUSER_ID, api, fields
from odoo.tests import HttpCase, tagged
from odoo.tests.common import _registry_test_lock

from .common import DeployCommon


class PipelineRunner(threading.Thread):
    """Plays the cron worker while a tour watches: one turn of the cron job's
    loop at a time (``_promote_queued`` and ``_advance_due``: one step action per
    due deployment), then every running deployment is made due and the
    simulator's clock moved, so no pass waits for time.

    It starts only once the browser has read the record the tour watches
    (``start_when``), so a run cannot finish before the page shows it, and it
    can stop in front of a step (``hold_before``) until the browser reads
    another record (``release_when``): the tour then sees that step happen live.
    The pace between passes only gives the browser a chance to see each state.
    """

    def __init__(self, case, *, start_when, hold_before=None, release_when=None, pace=0.25):
        super().__init__(name="do_deploy tour pipeline runner", daemon=True)
        self.case = case
        self.start_when = start_when
        self.hold_before = hold_before
        self.release_when = release_when
        self.pace = pace
        self.started_watching = threading.Event()
        self.holding = threading.Event()
        self.released = threading.Event()
        self.stopping = threading.Event()
        self.passes = 0
        self.error = None

    def on_read(self, records):
        """Called for every ``web_read`` the browser makes."""
        if not self.started_watching.is_set():
            if self.start_when(records):
                self.started_watching.set()
        elif self.release_when and self.release_when(records):
            # Read once watching started: the browser may get there before the hold.
            self.released.set()

    def run(self):
        try:
            while not self.stopping.wait(self.pace):
                if not self.started_watching.is_set():
                    continue
                # The test thread holds the registry lock outside the tour, and each
                # request holds it while it runs: skip the pass rather than wait.
                if not _registry_test_lock.acquire(blocking=False):
                    continue
                try:
                    self.advance_once()
                finally:
                    _registry_test_lock.release()
        except Exception as error:  # reported by the test thread, which fails the test
            self.error = error

    def advance_once(self):
        with self.case.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Deployment = env["do.deployment"]
            if self.hold_before and not self.released.is_set():
                running = Deployment.search([("state", "=", "running")])
                if any(d._current_step().code == self.hold_before for d in running):
                    self.holding.set()
                    return
            # One step action per due deployment, as one turn of the cron job's loop:
            # the whole job would run a zero-time deployment to its end in one go,
            # before the browser could show a single state.
            Deployment._promote_queued()
            Deployment._advance_due()
            self.passes += 1
            env.invalidate_all()
            running = Deployment.search([("state", "=", "running")])
            now = fields.Datetime.now()
            gaps = [(d.next_poll_at - now).total_seconds() for d in running if d.next_poll_at]
            if gaps and min(gaps) > 0:
                self.case.sim.clock.advance(min(gaps))
            running.write({"next_poll_at": now})

    def stop(self):
        self.stopping.set()
        self.join(timeout=60)
        if self.error:
            raise self.error


@tagged("post_install", "-at_install")
class TestUiTours(DeployCommon, HttpCase):
    """The three journeys of the issue, in headless Chromium, with a live pipeline."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.release_task = cls.env["project.task"].create({
            "name": "Release v1.2.0: new login page",
            "project_id": cls.project.id,
            "stage_id": cls.stage_ready.id,
            "user_ids": [(4, cls.user.id)],
        })

    def watch_tour(self, url, tour, login, **runner_kwargs):
        """Run ``tour`` while a PipelineRunner advances the deployments."""
        runner = PipelineRunner(self, **runner_kwargs)
        with ExitStack() as stack:
            for model in ("do.deployment", "project.task"):
                model_class = type(self.env[model])
                original = model_class.web_read

                def web_read(records, *args, _original=original, **kwargs):
                    result = _original(records, *args, **kwargs)
                    runner.on_read(records)
                    return result

                stack.enter_context(patch.object(model_class, "web_read", web_read))
            runner.start()
            try:
                self.start_tour(url, tour, login=login, timeout=240)
            finally:
                runner.stop()
        self.env.invalidate_all()
        return runner

    def finish_in_test(self, deployment, max_passes=80):
        """Run the pipeline to the end from the test thread (no browser involved)."""
        runner = PipelineRunner(self, start_when=lambda records: True)
        for _pass in range(max_passes):
            self.env.flush_all()
            runner.advance_once()
            self.env.invalidate_all()
            if deployment.state not in ("queued", "running", "rolling_back"):
                return
        self.fail(f"{deployment.name} still {deployment.state} after {max_passes} passes")

    def test_deploy_from_task(self):
        """Open a task, Deploy, confirm, watch the steps complete live; the task follows."""
        task = self.release_task
        self.watch_tour(
            f"/odoo/project.task/{task.id}", "do_deploy_task_deploy", "dep_user",
            start_when=lambda records: records._name == "do.deployment",
            hold_before="update_task",
            release_when=lambda records: records._name == "project.task" and task in records,
        )
        deployment = task.deployment_ids
        self.assertEqual(len(deployment), 1)
        self.assertEqual(deployment.state, "done")
        self.assertEqual(deployment.image_tag, "v1.2.0")
        self.assertEqual(deployment.requested_by_id, self.user)
        self.assertEqual(task.stage_id, self.stage_deployed)

    def test_failed_health_check_rolls_back(self):
        """A failing health check shows its code and mitigation, the rollback, the incident."""
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.watch_tour(
            f"/odoo/do.deployment/{deployment.id}", "do_deploy_health_check_rollback",
            "dep_manager",
            start_when=lambda records: records._name == "do.deployment" and deployment in records,
        )
        self.assertEqual(deployment.state, "rolled_back")
        self.assertEqual(self.step(deployment, "health_check").error_code_id.code,
                         "HEALTH_CHECK_FAIL")
        self.assertEqual(deployment.rollback_id.state, "done")
        self.assertTrue(deployment.incident_task_id)

    def test_manual_rollback_from_form(self):
        """Roll back a finished deployment from its form, with a reason."""
        deployment = self.deploy("v1.1.0")
        self.finish_in_test(deployment)
        self.assertEqual(deployment.state, "done")
        self.watch_tour(
            f"/odoo/do.deployment/{deployment.id}", "do_deploy_manual_rollback", "dep_manager",
            start_when=lambda records: records._name == "do.deployment" and any(
                d.kind == "rollback" for d in records.sudo()),
        )
        self.assertEqual(deployment.state, "rolled_back")
        self.assertEqual(deployment.rollback_id.state, "done")
        self.assertEqual(deployment.rollback_id.rollback_reason,
                         "Checkout errors after the release")


def load_history_generator():
    """tools/generate_history.py, the demo's history maker, imported by path."""
    path = Path(__file__).resolve().parent.parent / "tools" / "generate_history.py"
    spec = importlib.util.spec_from_file_location("do_deploy_generate_history", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@tagged("post_install", "-at_install")
class TestScreenWalk(DeployCommon, HttpCase):
    """Every menu, view, filter and group-by of the app opens without a client error,
    for a Deployment Manager and a Deployment User, over a history of a few hundred
    deployments (tools/generate_history.py: done, failed, rolled back with their
    rollbacks, canceled) besides this class's apps and tasks.

    Run on the demo database (``--test-tags /do_deploy:TestScreenWalk -d <demo db>``)
    it walks the demo data as well; the test's transaction leaves it unchanged.
    """

    HISTORY = 300

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        generator = load_history_generator()
        generator.generate(cls.env, cls.HISTORY, 60, 11)
        # One of each kind the pipeline leaves in flight or unfinished, too.
        cls.env["do.deployment"].with_user(cls.manager).create({
            "task_id": cls.task.id, "app_id": cls.staging.id, "image_tag": "v1.1.0"})

    def walk(self, login):
        self.start_tour("/odoo/action-do_deploy.do_app_action", "do_deploy_walk_all_screens",
                        login=login, timeout=900)

    def test_walk_as_deployment_manager(self):
        self.walk("dep_manager")

    def test_walk_as_deployment_user(self):
        self.walk("dep_user")
