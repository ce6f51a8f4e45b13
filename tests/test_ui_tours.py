import threading
from contextlib import ExitStack
from datetime import timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, api, fields
from odoo.tests import HttpCase, tagged
from odoo.tests.common import _registry_test_lock

from .common import DeployCommon, load_history_generator


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


class PipelineTourCase:
    """An HttpCase whose tours watch a live pipeline (mixed into an HttpCase)."""

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


@tagged("post_install", "-at_install")
class TestUiTours(PipelineTourCase, DeployCommon, HttpCase):
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


@tagged("post_install", "-at_install")
class TestScreenTours(DeployCommon, HttpCase):
    """What the browser shows of issue 11's defects, as a Deployment User unless a
    Deployment Manager is needed, at 1440 px (the chatter beside the form, as in the
    issue's screenshots). One tour per defect, each run as a subtest."""

    browser_size = "1440x900"

    def run_tours(self, url, tours, login="dep_user"):
        for tour in tours:
            with self.subTest(tour=tour):
                self.start_tour(url, tour, login=login)

    def test_rolled_back_deployment_screen(self):
        """Status bar, duration, reason, whole error codes, phase and the step's detail.

        The pipeline runs on a stopped Odoo clock: start and end fall in the same second,
        as they do by chance for most runs against the simulator, which takes no time. The
        form hid a duration of 0, so the duration tour failed whenever that happened.
        """
        deployment = self.deploy("v1.4.0--health-fail-always")
        stopped = fields.Datetime.now()
        with patch.object(fields.Datetime, "now", lambda *args: stopped):
            self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")
        self.assertEqual((deployment.start_date, deployment.end_date, deployment.duration),
                         (stopped, stopped, 0.0))
        self.run_tours(f"/odoo/do.deployment/{deployment.id}", [
            "do_deploy_rolled_back_statusbar", "do_deploy_rolled_back_duration",
            "do_deploy_rolled_back_reason", "do_deploy_error_code_whole",
            "do_deploy_monitor_phase", "do_deploy_step_detail",
        ])

    def test_failed_deployment_screen(self):
        """A failed deployment's status bar and whole error code; Retry reopens the wizard
        and links the retry."""
        self.account.token = "dop_v1_wrong"
        failed = self.deploy("v1.2.0", user=self.user)
        self.run_until_idle()
        self.assertEqual(failed.state, "failed")
        self.account.token = self.sim_token
        self.assertEqual(failed.error_code_id.code, "UNAUTHORIZED")  # a long word
        self.run_tours(f"/odoo/do.deployment/{failed.id}", [
            "do_deploy_failed_statusbar", "do_deploy_error_code_whole", "do_deploy_retry_wizard"])
        retry = self.env["do.deployment"].search([("retry_of_id", "=", failed.id)])
        self.assertEqual((len(retry), retry.image_tag), (1, "v1.2.0"))

    def test_running_deployment_screens(self):
        """The task's banner while its deployment builds; the monitor card's phase; no
        negative time when the server's clock is ahead of the browser's."""
        self.sim.set_timing(self.staging.do_app_id, build_seconds=600, deploy_seconds=60)
        deployment = self.deploy("v1.2.0")
        monitor = self.step(deployment, "monitor")
        for _run in range(20):
            self.run_cron()
            if monitor.state == "running" and monitor.do_phase:
                break
            deployment.next_poll_at = fields.Datetime.now()
        self.sim.clock.advance(120)  # past PENDING_BUILD
        deployment.next_poll_at = fields.Datetime.now()
        self.run_cron()
        self.assertEqual((monitor.state, monitor.do_phase), ("running", "BUILDING"))
        # The server's clock ten minutes ahead of the browser's.
        monitor.start_date = fields.Datetime.now() + timedelta(minutes=10)
        self.run_tours(f"/odoo/project.task/{self.task.id}", ["do_deploy_running_banner"])
        self.run_tours(f"/odoo/do.deployment/{deployment.id}", [
            "do_deploy_building_phase", "do_deploy_no_negative_time"])

    def test_deploy_wizard_from_a_deployed_task(self):
        """The wizard says where its tag comes from only while it is that tag; the task's
        stat button counts in the singular."""
        self.task.description = "<p>Ship the new login page (image tag v1.2.0).</p>"
        self.deploy("v1.1.0")
        self.run_until_idle()
        self.run_tours(f"/odoo/project.task/{self.task.id}", ["do_deploy_wizard_tag_source"])

    def test_roll_back_from_the_task(self):
        """A live deployment's task offers Roll back; the wizard names both versions."""
        self.deploy("v1.1.0")
        self.run_until_idle()
        live = self.deploy("v1.2.0")
        self.run_until_idle()
        self.assertEqual(live.state, "done")
        self.run_tours(f"/odoo/project.task/{self.task.id}", ["do_deploy_task_rollback"],
                       login="dep_manager")
        self.assertEqual(live.rollback_id.rollback_reason, "Checkout errors after the release")

    def test_history_screens(self):
        """Graph colours by state, history list columns, error codes list."""
        load_history_generator().generate(self.env, 120, 20, 5)
        action = "/odoo/action-do_deploy.do_deployment_action"
        self.run_tours(f"{action}?view_type=graph", ["do_deploy_history_graph_colours"])
        self.run_tours(action, ["do_deploy_history_list_columns"])
        self.run_tours("/odoo/action-do_deploy.do_error_code_action", [
            "do_deploy_error_codes_list", "do_deploy_error_code_resolution"])


@tagged("post_install", "-at_install")
class TestPhoneScreens(DeployCommon, HttpCase):
    """The deployment form, the DORA report and the stage benchmarks on a phone (390 px)."""

    browser_size = "390x844"
    touch_enabled = True

    def test_steps_on_a_phone(self):
        deployment = self.deploy("v1.4.0--health-fail-always")
        self.run_until_idle()
        self.start_tour(f"/odoo/do.deployment/{deployment.id}", "do_deploy_phone_steps",
                        login="dep_user")

    def test_dora_on_a_phone(self):
        self.start_tour("/odoo/action-do_deploy.do_dora_report_action", "do_deploy_dora_phone",
                        login="dep_user")

    def test_stage_benchmarks_on_a_phone(self):
        self.deploy("v1.1.0")
        self.run_until_idle()
        self.start_tour("/odoo/action-do_deploy.do_kpi_stage_benchmark_action",
                        "do_deploy_stage_benchmarks_phone", login="dep_user")
