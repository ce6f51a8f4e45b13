import json
from contextlib import contextmanager
from unittest.mock import patch

from psycopg2.errors import UniqueViolation

from odoo import fields
from odoo.tests import RecordCapturer, tagged
from odoo.tools import mute_logger

from odoo.addons.do_deploy.engine.client import AppPlatformClient
from odoo.addons.do_deploy.engine.deployment import MAX_EARLY_POLL
from odoo.addons.do_deploy.models import do_deployment
from odoo.addons.do_deploy.models import do_deployment_runner as runner
from odoo.addons.do_deploy.models.do_deployment import STEP_DURATION_FIELDS

from .common import RUNNER_LOGGER, DeployCommon, deployment_class


@tagged("post_install", "-at_install")
class TestPipeline(DeployCommon):
    @contextmanager
    def crashing_once(self, method, message):
        """The deployment's ``method(step, value)`` raises ``message`` at its first call, as
        if the worker died there, and runs at the next ones; yields the values it got."""
        Deployment = deployment_class(self.env)
        original = getattr(Deployment, method)
        values = []

        def crash_once(record, step, value):
            values.append(value)
            if len(values) == 1:
                raise RuntimeError(message)
            return original(record, step, value)

        with patch.object(Deployment, method, crash_once), mute_logger(RUNNER_LOGGER):
            yield values

    def test_full_successful_run(self):
        before = self.sim.stats()["requests"]
        deployment = self.deploy("v1.1.0")
        self.assertEqual(deployment.state, "queued")
        self.assertEqual(len(deployment.step_ids), 8)
        self.assertTrue(deployment.name.startswith("DEP/"))
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertEqual(deployment.progress, 100.0)
        self.assertEqual(set(deployment.step_ids.mapped("state")), {"done"})
        self.assertTrue(deployment.do_deployment_id)
        self.assertTrue(deployment.previous_do_deployment_id)
        self.assertEqual(deployment.previous_version, "v1.0.0")
        self.assertEqual(self.staging.live_version, "v1.1.0")
        self.assertGreaterEqual(deployment.duration, 0.0)
        for step in deployment.step_ids:
            self.assertTrue(step.start_date and step.end_date, step.name)
            self.assertGreater(step.budget, 0)
        # The PUT created the deployment; step 3 adopted it: one new DO deployment.
        self.assertEqual(len(self.sim_deployments(self.staging)), 2)
        self.assertIn("Adopted", self.step(deployment, "create_deployment").log)
        traffic = self.step(deployment, "traffic_switch").data
        self.assertTrue(traffic["served"]["ok"])
        self.assertTrue(traffic["tls"]["skipped"])
        self.assertEqual(len(self.step(deployment, "validate").data["results"]), 3)
        # Step 8: stage, facts and chatter on the task.
        self.assertEqual(self.task.stage_id, self.stage_deployed)
        self.assertEqual(self.task.deployed_version, "v1.1.0")
        self.assertEqual(self.task.deployed_by, self.manager)
        self.assertEqual(self.task.deploy_state, "deployed")
        self.assertEqual(self.task.last_deployment_id, deployment)
        self.assertTrue(any("v1.1.0" in (m.body or "") for m in self.task.message_ids))
        self.assertLessEqual(self.sim.stats()["requests"] - before, 12)

    def test_redeploy_same_spec_creates_one_deployment(self):
        """The PUT of an unchanged spec deploys nothing: step 3 creates the deployment."""
        self.deploy("v1.1.0")
        self.run_until_idle()
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        self.assertEqual(len(self.sim_deployments(self.staging)), 3)
        self.assertFalse(self.step(deployment, "apply_spec").data["applied"])
        self.assertIn("Created deployment", self.step(deployment, "create_deployment").log)

    def test_build_polling_and_expected_duration_from_history(self):
        app = self._create_app("odoo-slow", "staging", build_seconds=60, deploy_seconds=20)
        first = self.deploy("v1.1.0", app=app)
        self.run_until_idle()
        self.assertEqual(first.state, "done")
        monitor = self.step(first, "monitor")
        self.assertEqual(monitor.data["active_after"], 80)
        self.assertGreater(monitor.data["polls"], 1)
        self.assertIn("Phase PENDING_BUILD", monitor.log)
        second = self.deploy("v1.2.0", app=app)
        self.run_until_idle()
        self.assertEqual(self.step(second, "monitor").data["expected_seconds"], 80)

    def test_second_deployment_of_an_app_waits(self):
        self.sim.set_timing(self.staging.do_app_id, build_seconds=30)
        first = self.deploy("v1.1.0")
        second = self.deploy("v1.2.0")
        self.assertTrue(any("Queued behind" in (m.body or "") for m in second.message_ids))
        other = self.deploy("v1.1.0", app=self.production)
        self.run_cron()
        self.assertEqual(first.state, "running")
        self.assertEqual(second.state, "queued")
        self.assertEqual(other.state, "done", "other apps are not blocked")
        self.run_until_idle()
        self.assertEqual((first | second | other).mapped("state"), ["done"] * 3)
        self.assertLessEqual(first.end_date, second.start_date)
        self.assertEqual(self.staging.live_version, "v1.2.0")

    def test_database_allows_one_running_deployment_per_app(self):
        first, second = self.deploy("v1.1.0"), self.deploy("v1.2.0")
        first.sudo().write({"state": "running"})
        with mute_logger("odoo.sql_db"), self.assertRaises(UniqueViolation), \
                self.env.cr.savepoint():
            second.sudo().write({"state": "running"})
            second.flush_recordset()

    def test_crash_between_update_and_commit(self):
        """The PUT reached DigitalOcean but its result was never committed."""
        deployment = self.deploy("v1.1.0")
        count = len(self.sim_deployments(self.staging))
        with self.crashing_once("_store_applied", "worker killed"):
            self.run_cron()  # steps 1 and 2: PUT, then the crash
            apply_step = self.step(deployment, "apply_spec")
            self.assertEqual(apply_step.state, "running")
            self.assertTrue(apply_step.data.get("intent_at"))
            self.assertNotIn("applied", apply_step.data)
            self.assertIn("worker killed", apply_step.log)
            self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertIn("not sending it again", self.step(deployment, "apply_spec").log)
        self.assertEqual(len(self.sim_deployments(self.staging)), count + 1)

    def test_crash_between_create_deployment_and_commit(self):
        self.deploy("v1.1.0")
        self.run_until_idle()
        deployment = self.deploy("v1.1.0")  # unchanged spec: step 3 creates the deployment
        count = len(self.sim_deployments(self.staging))
        with self.crashing_once("_store_created_deployment", "database restarted") as calls:
            self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        # Recorded twice: the crash lost the first record; the resume adopted the same one.
        self.assertEqual(len(calls), 2)
        self.assertEqual(calls[0], calls[1])
        self.assertIn("the deployment had reached DigitalOcean; not sending it again",
                      self.step(deployment, "create_deployment").log)
        self.assertEqual(deployment.do_deployment_id, calls[0])
        self.assertEqual(len(self.sim_deployments(self.staging)), count + 1)

    def test_crash_after_intent_before_call(self):
        """Killed after committing the intent, before the PUT: the PUT is sent on resume."""
        deployment = self.deploy("v1.1.0")
        count = len(self.sim_deployments(self.staging))
        original = deployment_class(self.env)._commit_intent
        calls = []

        def die_after_intent(record, step, **intent):
            original(record, step, **intent)
            calls.append(step.code)
            if len(calls) == 1:
                raise RuntimeError("killed")

        with patch.object(deployment_class(self.env), "_commit_intent", die_after_intent), \
                mute_logger(RUNNER_LOGGER):
            self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        self.assertIn("had not reached", self.step(deployment, "apply_spec").log)
        self.assertEqual(len(self.sim_deployments(self.staging)), count + 1)

    def test_maybe_created_update_is_not_sent_twice(self):
        """A 500 after DigitalOcean applied the update: the app is read, not updated again."""
        deployment = self.deploy("v1.1.0")
        count = len(self.sim_deployments(self.staging))
        self.sim.set_scenario("server-error", operation="apps_update", apply=True, count=10)
        self.run_cron()
        self.sim.set_scenario(None)
        self.assertIn("The spec update may have reached DigitalOcean",
                      self.step(deployment, "apply_spec").log)
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertEqual(len(self.sim_deployments(self.staging)), count + 1)

    def test_rate_limit_is_retried(self):
        deployment = self.deploy("v1.1.0")
        self.sim.set_scenario("rate-limit-burst", count=4, retry_after=0)
        self.run_cron()
        step = self.step(deployment, "update_spec")
        self.assertEqual(step.state, "running")
        self.assertIn("RATE_LIMIT_EXCEEDED", step.log)
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")

    def test_watchdog_fails_a_stuck_monitor(self):
        self.sim.set_timing(self.staging.do_app_id, build_seconds=3600)
        deployment = self.deploy("v1.1.0")
        for _run in range(4):
            self.run_cron()
            self.make_due()
        self.assertEqual(deployment.current_step_id.code, "monitor")
        self.age(deployment, self.staging.deploy_timeout + 1)
        self.sim.set_timing(self.staging.do_app_id, build_seconds=0)
        self.run_until_idle()
        self.assertStepFailed(deployment, "monitor", "DEPLOY_TIMEOUT")
        self.assertIn("Canceled the deployment", self.step(deployment, "monitor").log)
        self.assertEqual(deployment.state, "rolled_back")

    def test_watchdog_fails_a_step_that_keeps_crashing(self):
        deployment = self.deploy("v1.1.0")
        with patch.object(deployment_class(self.env), "_step_health_check",
                          side_effect=RuntimeError("bug")), \
                mute_logger(RUNNER_LOGGER):
            for _run in range(8):
                self.run_cron()
                self.make_due()
            self.assertEqual(deployment.current_step_id.code, "health_check")
            self.assertEqual(deployment.state, "running")
            self.age(deployment, 3600)
            self.make_due()
            self.run_cron()
        self.assertStepFailed(deployment, "health_check", "DEPLOY_TIMEOUT")
        self.run_until_idle()
        self.assertEqual(deployment.state, "rolled_back")

    def test_cron_rearms_itself_and_waits_between_polls(self):
        """With a run length, the cron sleeps until the next poll instead of re-running."""
        self.env["ir.config_parameter"].sudo().set_param("do_deploy.cron_run_seconds", "50")
        app = self._create_app("odoo-wait", "staging", build_seconds=20, deploy_seconds=0)
        deployment = self.deploy("v1.1.0", app=app)
        waits = []

        def fake_wait(record, seconds):
            waits.append(seconds)
            self.sim.clock.advance(seconds)
            record.search([("state", "=", "running")]).write(
                {"next_poll_at": do_deployment.fields.Datetime.now()})

        with patch.object(deployment_class(self.env), "_cron_wait", fake_wait):
            self.run_cron()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertTrue(waits)
        self.assertTrue(all(0 < wait <= MAX_EARLY_POLL for wait in waits), waits)

    def test_start_and_polls_trigger_the_cron(self):
        Trigger = self.env["ir.cron.trigger"].sudo()
        with RecordCapturer(Trigger, [("cron_id", "=", self.cron.id)]) as capture:
            deployment = self.deploy("v1.1.0")
        self.assertTrue(capture.records)
        self.assertLessEqual(max(capture.records.mapped("call_at")), fields.Datetime.now())
        self.sim.set_timing(self.staging.do_app_id, build_seconds=300)
        with RecordCapturer(Trigger, [("cron_id", "=", self.cron.id)]) as capture:
            self.run_cron()
        self.assertEqual(deployment.current_step_id.code, "monitor")
        # The app list's next tick comes before the monitor's own next read; a run may
        # wait 0 s here: re-armed for the tick.
        next_due = self.env["do.deployment"]._next_due_at()
        self.assertLess(next_due, deployment.next_poll_at)
        self.assertEqual(capture.records[-1:].call_at, next_due)
        self.env["ir.config_parameter"].sudo().set_param("do_deploy.cron_run_seconds", "50")
        with RecordCapturer(Trigger, [("cron_id", "=", self.cron.id)]) as capture:
            self.env["do.deployment"]._rearm(50.0)
        # Within a run's length: re-armed for now, the next run waits inside.
        self.assertLessEqual(capture.records.call_at, fields.Datetime.now())

    def assertStepDurationsCopied(self, deployment):
        """Each deploy step's duration is on the deployment; steps that never ran stay
        NULL there, so the duration pivot's averages leave them out as the steps' do."""
        self.env.flush_all()
        self.env.cr.execute(
            f"SELECT {', '.join(STEP_DURATION_FIELDS.values())} FROM do_deployment WHERE id = %s",
            [deployment.id])
        copied = dict(zip(STEP_DURATION_FIELDS, self.env.cr.fetchone(), strict=True))
        ran = {step.code: step.duration for step in deployment.step_ids
               if step.state in ("done", "warning", "failed")}
        self.assertEqual(copied, {code: ran.get(code) for code in STEP_DURATION_FIELDS})

    def test_step_durations_are_copied_to_the_deployment(self):
        self.sim.set_timing(self.staging.do_app_id, build_seconds=60)
        deployment = self.deploy("v1.1.0")
        self.run_cron()
        self.assertEqual(deployment.current_step_id.code, "monitor")
        self.age(deployment, 90)  # a step that took a while, not 0 s like the others here
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertGreaterEqual(deployment.duration_monitor, 90.0)
        self.assertStepDurationsCopied(deployment)

    def test_failed_step_duration_is_copied_to_the_deployment(self):
        deployment = self.deploy("v9.9.9", push=False)  # not in the registry: step 1 fails
        self.run_until_idle()
        self.assertEqual(deployment.state, "failed", deployment.step_ids.mapped("log"))
        self.assertStepDurationsCopied(deployment)

    # Deploys that retag some components only (issue 9, defect 2) ---------------------

    def test_deploy_of_one_component_follows_that_components_version(self):
        """Only the worker gets the tag: the web service keeps serving its own version,
        and the version recorded before and after is the worker's."""
        self.staging.component_names = "worker"
        first = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(first.state, "done", first.step_ids.mapped("log"))
        spec = self.sim.get_app(self.staging.do_app_id)["spec"]
        self.assertEqual(spec["workers"][0]["image"]["tag"], "v1.1.0")
        self.assertEqual(spec["services"][0]["image"]["tag"], "v1.0.0")
        self.assertEqual(first.previous_version, "v1.0.0")
        self.assertEqual(self.staging.live_version, "v1.1.0")
        second = self.deploy("v1.2.0")
        self.run_until_idle()
        self.assertEqual(second.state, "done", second.step_ids.mapped("log"))
        self.assertEqual(second.previous_version, "v1.1.0", "the worker's, not the web's")
        self.assertEqual(self.staging.live_version, "v1.2.0")
        self.assertEqual(len(self.sim_deployments(self.staging)), 3)

    def test_crash_after_the_put_of_one_component_does_not_send_it_again(self):
        """Step 2 resumed after a crash recognises its PUT by the retagged component."""
        self.staging.component_names = "worker"
        deployment = self.deploy("v1.1.0")
        count = len(self.sim_deployments(self.staging))
        with self.crashing_once("_store_applied", "worker killed") as calls:
            self.run_cron()  # steps 1 and 2: PUT, then the crash
            self.make_due()
            self.run_cron()  # step 2 resumed
        apply_log = self.step(deployment, "apply_spec").log
        self.assertIn("had reached DigitalOcean; not sending it again", apply_log)
        self.assertEqual(calls[1], calls[0], "the deployment the first PUT made is adopted")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertEqual(deployment.do_deployment_id, calls[0])
        self.assertEqual(len(self.sim_deployments(self.staging)), count + 1)

    # One broken deployment must not stall the others (issue 9, defect 3) --------------

    def test_a_deployment_whose_failure_handling_breaks_is_failed_alone(self):
        """Its health check fails past its deadline and starting the rollback raises:
        it is failed with PIPELINE_ERROR in its own transaction, and the others go on."""
        poison = self.deploy("v1.4.0--health-fail-always", app=self.production)
        for _run in range(10):
            if poison.current_step_id.code == "health_check":
                break
            self.run_cron()
            self.make_due()
        self.assertEqual(poison.current_step_id.code, "health_check")
        self.age(poison, 3600)
        healthy = self.deploy("v1.1.0")
        Deployment = deployment_class(self.env)
        original = Deployment._start_automatic_rollback

        def broken(record, error):
            if record == poison:
                raise RuntimeError(f"incident project archived (token {self.sim_token})")
            return original(record, error)

        with patch.object(Deployment, "_start_automatic_rollback", broken), \
                mute_logger(RUNNER_LOGGER):
            self.run_until_idle(max_runs=10)
        self.assertEqual(healthy.state, "done", healthy.step_ids.mapped("log"))
        self.assertEqual(poison.state, "failed", poison.step_ids.mapped("log"))
        self.assertEqual(poison.error_code_id.code, "PIPELINE_ERROR")
        self.assertFalse(poison.next_poll_at)
        self.assertIn("HEALTH_CHECK_FAIL", poison.error_message)
        self.assertIn("RuntimeError", poison.error_message)
        self.assertNotIn(self.sim_token, poison.error_message)
        self.assertStepFailed(poison, "health_check", "PIPELINE_ERROR")
        self.assertEqual(set(poison.step_ids.filtered(
            lambda s: s.sequence > poison.step_ids.filtered(
                lambda s: s.code == "health_check").sequence).mapped("state")), {"skipped"})
        self.assertTrue(any("PIPELINE_ERROR" in (m.body or "") for m in poison.message_ids))
        # The app's slot is free again.
        after = self.deploy("v1.1.0", app=self.production)
        self.run_until_idle()
        self.assertEqual(after.state, "done")

    def test_a_serialization_failure_taking_a_lock_skips_only_that_deployment(self):
        """A row changed since the run's snapshot makes try_lock_for_update raise a
        serialization failure (PostgreSQL 40001, as ir_cron documents for its jobs):
        that deployment waits for the next pass, the run and the others go on."""
        first = self.deploy("v1.1.0")
        second = self.deploy("v1.1.0", app=self.production)
        original = runner.lock_skip_locked
        raised = []

        def stale_snapshot(records, **kwargs):
            if records == first and records.state == "running" and not raised:
                raised.append(records.id)
                # The error PostgreSQL raises, with its effect on the transaction.
                records.env.cr.execute("""
                    DO $$ BEGIN RAISE EXCEPTION 'could not serialize access due to '
                        'concurrent update' USING ERRCODE = 'serialization_failure'; END $$
                """)
            return original(records, **kwargs)

        with patch.object(runner, "lock_skip_locked", stale_snapshot), \
                mute_logger("odoo.sql_db"), self.enter_registry_test_mode():
            result = self.cron.method_direct_trigger()
        self.env.invalidate_all()
        self.assertEqual(raised, [first.id])
        self.assertIs(result, True, "the run ended without an error")
        self.assertEqual(self.step(second, "update_spec").state, "done")
        self.assertEqual(self.step(first, "update_spec").state, "done",
                         "retried in a later pass of the same run")
        self.run_until_idle()
        self.assertEqual((first | second).mapped("state"), ["done", "done"])

    def test_step_2_adopts_only_the_deployment_its_update_created(self):
        """Issue 9, defect 8: a deployment someone else started (deploy on push, the
        console) while step 2 runs is not taken as ours. Redeploying the live tag, the
        PUT changes nothing and creates no deployment: step 3 creates ours."""
        self.deploy("v1.1.0")
        self.run_until_idle()
        client = AppPlatformClient(self.sim_token, self.server.url)
        app_id = self.staging.do_app_id
        original = deployment_class(self.env)._step_apply_spec
        others = []

        def someone_deploys_then_apply(deployment, step):
            if not others:
                others.append(client.create_deployment(app_id)["id"])
            return original(deployment, step)

        deployment = self.deploy("v1.1.0", push=False)
        with self.patch_step("_step_apply_spec", side_effect=someone_deploys_then_apply):
            self.run_until_idle()
        self.assertTrue(others)
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertFalse(self.step(deployment, "apply_spec").data.get("created_deployment_id"),
                         f"the console's deployment is {others[0]}")
        self.assertTrue(deployment.do_deployment_id)
        self.assertNotEqual(deployment.do_deployment_id, others[0])
        self.assertEqual(self.step(deployment, "create_deployment").data.get("deployment_id"),
                         deployment.do_deployment_id)

    def test_step_8_leaves_a_stage_of_another_project_alone(self):
        """Issue 9, defect 8: the app's deployed stage is not added to the task's project
        behind anyone's back; the task keeps its stage and its chatter says why."""
        other_project = self.env["project.project"].create({"name": "Mobile app"})
        todo = self.env["project.task.type"].create(
            {"name": "To do", "project_ids": [(4, other_project.id)]})
        task = self.env["project.task"].create(
            {"name": "Push notifications", "project_id": other_project.id,
             "stage_id": todo.id})
        deployment = self.deploy("v1.1.0", task_id=task.id)
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertEqual(task.stage_id, todo)
        self.assertNotIn(other_project, self.stage_deployed.project_ids)
        self.assertEqual(task.deployed_version, "v1.1.0")
        said = " ".join(task.message_ids.mapped(lambda message: str(message.body)))
        self.assertIn("not a stage of Mobile app", said)
        self.assertIn("not a stage of Mobile app", self.step(deployment, "update_task").log)

    def test_step_8_without_a_task_is_skipped(self):
        """A deployment started without a task (Deployments menu, API, promotion) has no
        task to update: step 8 is skipped, not failed with TASK_NOT_FOUND, and the
        deployment is done with no error; the figures leave the skipped step out."""
        deployment = self.deploy("v1.1.0", task_id=False)
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertFalse(deployment.error_code_id)
        self.assertEqual(deployment.progress, 100.0)
        step = self.step(deployment, "update_task")
        self.assertEqual(step.state, "skipped", step.log)
        self.assertFalse(step.error_code_id)
        self.assertFalse(step.over_budget)
        self.assertTrue(step.end_date)
        self.assertIn("No task is linked to this deployment: nothing to update.", step.log)
        self.assertFalse(step.log_excerpt)
        self.assertEqual(set((deployment.step_ids - step).mapped("state")), {"done"})
        self.assertStepDurationsCopied(deployment)
        self.assertEqual(self.staging.live_version, "v1.1.0")

    def test_secrets_go_back_encrypted_and_reach_no_log(self):
        """DigitalOcean returns SECRET values encrypted: step 1 sets the tag on the spec it
        read and step 2 PUTs the encrypted value back unchanged, so the new deployment runs
        with the original secret; the plain value reaches no step log or data, no stored
        spec and no chatter message."""
        plain = "hunter2-admin-passwd"
        client = AppPlatformClient(self.sim_token, self.server.url)
        spec = client.get_app(self.staging.do_app_id)["spec"]
        spec["services"][0]["envs"].append(
            {"key": "ADMIN_PASSWD", "value": plain, "type": "SECRET", "scope": "RUN_TIME"})
        app = client.update_app(self.staging.do_app_id, spec)
        sealed = app["spec"]["services"][0]["envs"][-1]["value"]
        self.assertTrue(sealed.startswith("EV[1:"), sealed)
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertEqual(self.sim.plain_envs(self.staging.do_app_id)["web"]["ADMIN_PASSWD"],
                         plain)
        target_envs = deployment.sudo().target_spec["services"][0]["envs"]
        self.assertIn({"key": "ADMIN_PASSWD", "value": sealed, "type": "SECRET",
                       "scope": "RUN_TIME"}, target_envs)
        traces = [json.dumps(deployment.sudo().target_spec)]
        for step in deployment.step_ids:
            traces += [step.log or "", json.dumps(step.data or {}), step.error_message or ""]
        traces += [str(message.body) for message in deployment.message_ids | (
            self.task.message_ids)]
        for trace in traces:
            self.assertNotIn(plain, trace)

    def test_force_rebuild_refreshes_images_in_the_update_and_makes_one_deployment(self):
        """Issue 9, defect 8: "force rebuild" goes with the PUT as update_all_source_versions
        (every component's image resolved again); step 3 adopts the update's deployment
        and creates no second one."""
        before = {d["id"] for d in self.sim_deployments(self.staging)}
        creates = self.sim.stats()["by_operation"].get("apps_create_deployment", 0)
        with patch.object(AppPlatformClient, "update_app", autospec=True,
                          side_effect=AppPlatformClient.update_app) as update_app:
            deployment = self.deploy("v1.1.0", force_rebuild=True)
            self.run_until_idle()
        self.assertEqual(deployment.state, "done", deployment.step_ids.mapped("log"))
        self.assertTrue(update_app.call_args.kwargs["update_all_source_versions"])
        created = {d["id"] for d in self.sim_deployments(self.staging)} - before
        self.assertEqual(created, {deployment.do_deployment_id})
        self.assertEqual(self.sim.stats()["by_operation"].get("apps_create_deployment", 0),
                         creates)
