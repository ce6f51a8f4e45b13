"""Issue 10: runners on several threads, and the token-wide call budget.

The runner tests need what two Odoo cron threads have: two database
connections that each see the other's commits. They commit their own
fixture (an account, an app per deployment, a task) through real cursors and
delete it afterwards; the simulator is the test class's.
"""

import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from odoo import SUPERUSER_ID, api, fields
from odoo.modules import module
from odoo.tests import tagged
from odoo.tools import config, mute_logger

from odoo.addons.do_deploy.engine import pipeline_policy
from odoo.addons.do_deploy.engine.errors import DeployError
from odoo.addons.do_deploy.models.do_call_budget import token_key

from .common import DeployCommon


@contextmanager
def actions_recorded(env):
    """The (deployment, step code) of every action the runners take, in order."""
    Deployment = type(env["do.deployment"])
    advance = Deployment._advance_safely
    order = []

    def recorded(deployment):
        order.append((deployment.id, deployment._current_step().code))
        return advance(deployment)
    with patch.object(Deployment, "_advance_safely", recorded):
        yield order


def in_a_runner_job(env):
    """As within a runner job with a minute left: ir.cron's _commit_progress, which would
    commit the test's transaction, only answers that the run may go on."""
    return patch.object(type(env["ir.cron"]), "_commit_progress", return_value=60.0)


@tagged("post_install", "-at_install")
class TestParallelRunners(DeployCommon):

    def setUp(self):
        """Rows this test's transaction wrote are locked until it ends, so the runners'
        connections must not need them: the simulator is allowed through the server's
        configuration instead of the (uncommitted) system parameter, and the account
        gets a token of its own, so its call budget row is not the test's."""
        super().setUp()
        self.committed = {}
        self.addCleanup(self._delete_committed)
        allowed = patch.dict(config.options, {"do_deploy_allowed_networks": "127.0.0.1"})
        allowed.start()
        self.addCleanup(allowed.stop)
        self.token = f"dop_v1_{uuid.uuid4().hex}"
        self.sim.tokens.add(self.token)
        self.addCleanup(self.sim.tokens.discard, self.token)

    def _commit_deployments(self, count):
        """``count`` running deployments, each to its own app, committed; their ids."""
        tag = uuid.uuid4().hex[:8]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            account = env["do.account"].create({
                "name": f"Runners {tag}", "backend": "simulator",
                "api_url": self.server.url, "token": self.token})
            project = env["project.project"].create({"name": f"Runners {tag}"})
            task = env["project.task"].create({"name": "Parallel", "project_id": project.id})
            apps = env["do.app"]
            for index in range(count):
                name = f"par-{tag}-{index}"
                sim_app = self.sim.create_app(self._spec(name))
                apps |= env["do.app"].create({
                    "name": name, "account_id": account.id, "do_app_id": sim_app["id"],
                    "environment": "staging", "registry_repository": "odoo"})
            deployments = env["do.deployment"].create([{
                "task_id": task.id, "app_id": app.id, "image_tag": "v1.1.0",
            } for app in apps])
            deployments.action_start()
            env["do.deployment"]._promote_queued()
            self.committed = {"deployments": deployments.ids, "apps": apps.ids,
                              "task": task.id, "project": project.id, "account": account.id}
            self.assertEqual(set(deployments.mapped("state")), {"running"})
            return deployments.ids

    @staticmethod
    def _spec(name):
        from odoo.addons.do_deploy.engine.simulator.demo import demo_spec
        return demo_spec(name)

    def _delete_committed(self):
        if not self.committed:
            return
        ids = self.committed
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM do_deployment WHERE id = ANY(%s)", [ids["deployments"]])
            cr.execute("DELETE FROM do_app WHERE id = ANY(%s)", [ids["apps"]])
            cr.execute("DELETE FROM project_task WHERE id = %s", [ids["task"]])
            cr.execute("DELETE FROM project_project WHERE id = %s", [ids["project"]])
            cr.execute("DELETE FROM do_account WHERE id = %s", [ids["account"]])

    def _step_states(self, ids):
        with self.registry.cursor() as cr:
            cr.execute("""
                SELECT d.id, s.state FROM do_deployment d
                  JOIN do_deployment_step s ON s.deployment_id = d.id
                 WHERE d.id = ANY(%s) AND s.code = 'update_spec'
            """, [ids])
            return dict(cr.fetchall())

    def test_two_runners_never_advance_the_same_deployment_at_once(self):
        """Runner A, on its connection, is in the middle of one deployment's action
        (it holds the row lock); runner B, on another, goes over every due deployment:
        it advances all the others and leaves that one alone. Then A advances it."""
        self.sim.push_tag("odoo", "v1.1.0")
        ids = self._commit_deployments(4)
        held, others = ids[0], ids[1:]
        with self.registry.cursor() as cr_a, self.registry.cursor() as cr_b:
            env_a = api.Environment(cr_a, SUPERUSER_ID, {})
            env_b = api.Environment(cr_b, SUPERUSER_ID, {})
            self.assertTrue(env_a["do.deployment"]._try_lock(env_a["do.deployment"].browse(held)))
            processed_b = env_b["do.deployment"]._advance_due()
            states = self._step_states(ids)
            self.assertEqual(processed_b, len(others))
            self.assertEqual(states[held], "pending", "B skipped the row A holds")
            self.assertEqual({states[i] for i in others}, {"done"})
            cr_a.rollback()  # A's action ends
            env_a.invalidate_all()
            processed_a = env_a["do.deployment"]._advance_due()
        self.assertGreaterEqual(processed_a, 1)
        self.assertEqual(self._step_states(ids)[held], "done")

    def test_a_serialization_failure_on_lock_does_not_end_the_run(self):
        """A runner whose snapshot predates another worker's commit on a deployment
        meets PostgreSQL's real serialization failure when it locks that row: it
        skips it and advances the others, and its run goes on."""
        self.sim.push_tag("odoo", "v1.1.0")
        changed, other = self._commit_deployments(2)
        with self.registry.cursor() as cr:
            # The changed deployment comes first in the runner's order.
            cr.execute("UPDATE do_deployment SET next_poll_at = now() at time zone 'UTC'"
                       " - interval '1 minute' WHERE id = %s", [changed])
        with self.registry.cursor() as runner_cr:
            runner_env = api.Environment(runner_cr, SUPERUSER_ID, {})
            runner_cr.execute("SELECT 1 FROM do_deployment LIMIT 1")  # its snapshot
            with self.registry.cursor() as worker_cr:
                worker_cr.execute("UPDATE do_deployment SET progress = progress "
                                  "WHERE id = %s", [changed])
            with mute_logger("odoo.sql_db"):
                processed = runner_env["do.deployment"]._advance_due()
            runner_cr.execute("SELECT 1")  # the cursor is still usable
        self.assertEqual(processed, 1)
        states = self._step_states([changed, other])
        self.assertEqual(states[other], "done")
        self.assertEqual(states[changed], "pending", "taken in a later pass, not this one")

    def test_concurrent_tag_checks_of_one_account_do_not_fail_on_its_row(self):
        """Step 1 of two deployments of one account checks their tags at the same
        moment on two runners: the second, whose snapshot predates the first's commit,
        wrote the account's registry name again and PostgreSQL refused it with a
        serialization failure (it ended a runner run under load). The name is
        written only when it changes, never over another transaction's write."""
        self.sim.push_tag("odoo", "v1.1.0")
        deployment_ids = self._commit_deployments(2)
        # The calls are counted as on a server, in the budget's own transactions
        # (under tests they go through the caller's cursor): only the account row races.
        with patch.object(module, "current_test", None), \
                self.registry.cursor() as first, self.registry.cursor() as second:
            apps = []
            for runner_cr in (first, second):
                env = api.Environment(runner_cr, SUPERUSER_ID, {})
                app = env["do.deployment"].browse(deployment_ids[len(apps)]).app_id
                self.assertFalse(app.account_id.registry_name)  # each one's snapshot
                apps.append(app)
            for app, runner_cr in zip(apps, (first, second), strict=True):
                app._check_tag_in_registry(app.account_id._get_backend(), "v1.1.0")
                app.env.flush_all()
                runner_cr.commit()
            first.execute("SELECT registry_name FROM do_account WHERE id = %s",
                          [self.committed["account"]])
            self.assertTrue(first.fetchone()[0])


@tagged("post_install", "-at_install")
class TestRunnerJobs(DeployCommon):
    """``do_deploy.runner_jobs`` is the number of active runner jobs."""

    def runners(self):
        return self.env["do.deployment"]._runner_jobs()

    def test_the_setting_creates_activates_and_archives_runner_jobs(self):
        Param = self.env["ir.config_parameter"].sudo()
        first_four = self.runners()
        self.assertEqual(len(first_four), 4, "four by default (data/ir_cron_data.xml)")
        Param.set_param("do_deploy.runner_jobs", "6")
        six = self.runners()
        self.assertEqual(len(six), 6)
        self.assertEqual(six[:4], first_four)
        self.assertEqual(six[5].name, "Deployments: advance (6)")
        self.assertEqual(set(six.mapped("code")), {"model._cron_advance()"})
        self.assertEqual(six[5].user_id, first_four[0].user_id)
        Param.set_param("do_deploy.runner_jobs", "2")
        self.assertEqual(self.runners(), first_four[:2], "the oldest stay, the others rest")
        Param.set_param("do_deploy.runner_jobs", "5")
        self.assertEqual(self.runners(), six[:5], "archived jobs come back before new ones")
        Param.set_param("do_deploy.runner_jobs", "0")
        self.assertEqual(self.runners(), first_four[:1], "never fewer than one")
        Param.set_param("do_deploy.runner_jobs", "many")
        self.assertEqual(self.runners(), first_four, "not a number: the default")
        Param.set_param("do_deploy.runner_jobs", "3")
        Param.set_param("do_deploy.runner_jobs", False)  # removed: the default again
        self.assertEqual(self.runners(), first_four)

    def test_a_run_ends_at_its_deadline_even_with_work_due(self):
        """Work kept due (100 deployments with checks to run) kept a run going for
        minutes, past Odoo's limit for a cron thread: a run stops taking deployments at
        its deadline and re-arms the runner jobs for now instead."""
        self.env["ir.config_parameter"].sudo().set_param("do_deploy.cron_run_seconds", "0.001")
        other_app = self._create_app("odoo-deadline", "staging")
        deployments = self.deploy("v1.1.0") | self.deploy("v1.1.0", app=other_app)
        self.run_cron()  # promotes both, then advances one action and stops
        steps = deployments.step_ids.filtered(lambda s: s.code == "update_spec")
        self.assertEqual(sorted(steps.mapped("state")), ["done", "pending"])
        self.assertTrue(self.env["ir.cron.trigger"].search_count([
            ("cron_id", "in", self.env["do.deployment"]._runner_jobs().ids),
            ("call_at", "<=", fields.Datetime.now())]), "re-armed for now")

    def test_within_a_run_a_deployment_left_due_is_taken_again(self):
        """Within a run, a deployment goes on from action to action while it stays due
        (each action committed on its own); outside one, one action per pass."""
        deployment = self.deploy("v1.1.0")
        Deployment = self.env["do.deployment"]
        with in_a_runner_job(self.env):
            Deployment._promote_queued()
            Deployment._advance_due()
            self.env.invalidate_all()
            self.assertEqual(deployment.step_ids.filtered(
                lambda s: s.state == "done").mapped("code"), ["update_spec"])
            Deployment._advance_due(deadline=time.monotonic() + 60)
            self.env.invalidate_all()
        done = deployment.step_ids.filtered(lambda s: s.state in ("done", "warning"))
        self.assertEqual(done.mapped("code")[:4],
                         ["update_spec", "apply_spec", "create_deployment", "monitor"],
                         "the next steps followed in the same pass")

    def test_a_look_at_the_app_list_does_not_cut_a_deployments_run_of_actions(self):
        """A run looks at the app list between two actions (here between every two),
        and goes on with the same deployment until it waits: cut at each look, 100
        deployments took turns one action each, and the click-to-done median doubled."""
        self.env["ir.config_parameter"].sudo().set_param("do_deploy.cron_run_seconds", "1")
        first = self.deploy("v1.1.0")
        second = self.deploy("v1.1.0", app=self._create_app("odoo-second", "staging"))
        with in_a_runner_job(self.env), patch.object(pipeline_policy, "WATCH_SLICE", 0.0), \
                actions_recorded(self.env) as order:
            self.env["do.deployment"]._promote_queued()
            # Due for a while: an action's next one, due now, comes after the other.
            (first | second).next_poll_at = fields.Datetime.now() - timedelta(seconds=10)
            self.env["do.deployment"]._cron_advance()
        second_starts = order.index((second.id, "update_spec"))
        self.assertEqual({deployment for deployment, _code in order[:second_starts]},
                         {first.id})
        self.assertEqual([code for _deployment, code in order[:4]],
                         ["update_spec", "apply_spec", "create_deployment", "monitor"])

    def _deployment_between_two_checks(self):
        """A deployment in step 7 with its first endpoint check done and more to run,
        advanced one action at a time as runners take it."""
        deployment = self.deploy("v1.1.0")
        Deployment = self.env["do.deployment"]
        with in_a_runner_job(self.env):
            Deployment._promote_queued()
            for _action in range(40):
                Deployment._advance_due()
                self.env.invalidate_all()
                step = deployment.current_step_id
                if step.code == "validate" and (step.data or {}).get("results"):
                    break
                self.make_due()
        self.assertEqual(step.code, "validate", step.log)
        self.assertEqual(len(step.data["results"]), 1)
        self.assertGreater(len(self.staging._get_endpoint_checks()), 2)
        return deployment, step

    def _take(self, deployment):
        with in_a_runner_job(self.env):
            self.env["do.deployment"]._advance_due()
        self.env.invalidate_all()

    def test_waiting_for_a_free_runner_does_not_count_against_the_step_limit(self):
        """With 100 deployments on few cron threads, step 7's next check was due long
        before a runner took it, and the step failed with DEPLOY_TIMEOUT, then rolled
        back, although every check answered at once: the time a deployment waits, due,
        for a runner is kept off its step's limit."""
        deployment, step = self._deployment_between_two_checks()
        limit = deployment._step_limit(step)
        now = fields.Datetime.now()
        # The step ran one second, then its next check waited for a runner past the limit.
        step.start_date = now - timedelta(seconds=limit + 61)
        deployment.next_poll_at = now - timedelta(seconds=limit + 60)
        self._take(deployment)
        self.assertEqual(step.state, "running", step.log)
        self.assertNotIn("DEPLOY_TIMEOUT", step.log or "")
        self.assertEqual(len(step.data["results"]), 2)
        self.assertGreaterEqual(step.data["queued_seconds"], limit + 60)
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")

    def test_a_step_whose_own_actions_run_past_its_limit_still_times_out(self):
        """The runners' queue aside, a step taken on time that does not finish within
        its limit fails with DEPLOY_TIMEOUT: the time it waited before counts for
        nothing more than it was."""
        deployment, step = self._deployment_between_two_checks()
        limit = deployment._step_limit(step)
        now = fields.Datetime.now()
        # 30 s waiting for a runner, and the step's own time past its limit.
        step.start_date = now - timedelta(seconds=limit + 31)
        step._update_data(queued_seconds=30.0)
        deployment.next_poll_at = now
        self._take(deployment)
        self.assertStepFailed(deployment, "validate", "DEPLOY_TIMEOUT")

    def test_a_runner_job_beyond_the_setting_archives_itself_when_it_runs(self):
        """A job another thread was running when the setting was lowered could not be
        archived then; its next run does nothing but archive it."""
        Param = self.env["ir.config_parameter"].sudo()
        third = self.runners()[2]
        Param.set_param("do_deploy.runner_jobs", "2")
        third.active = True  # as if it had been running, its row locked, during the change
        deployment = self.deploy("v1.1.0")
        with self.enter_registry_test_mode():
            third.method_direct_trigger()
        self.env.invalidate_all()
        self.assertFalse(third.active)
        self.assertEqual(deployment.state, "queued", "an extra job's run advances nothing")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")


@tagged("post_install", "-at_install")
class TestCallBudget(DeployCommon):

    @contextmanager
    def committed_budget(self):
        """The key of a token of its own: its budget row, which the test's own cursors
        commit, is deleted afterwards."""
        key = token_key(uuid.uuid4().hex)
        try:
            yield key
        finally:
            with self.registry.cursor() as cr:
                cr.execute("DELETE FROM do_call_budget WHERE token_key = %s", [key])

    def fresh_budget(self, per_minute):
        """Every token's budget empty, at ``per_minute`` calls a minute."""
        self.env["ir.config_parameter"].sudo().set_param("do_deploy.calls_per_minute",
                                                         str(per_minute))
        self.env.cr.execute("DELETE FROM do_call_budget")

    def deploy_on_one_call_a_minute(self):
        """A deployment whose step 1 met the spent budget of one call a minute."""
        self.fresh_budget(1)
        deployment = self.deploy("v1.1.0")
        self.run_cron()
        return deployment, self.step(deployment, "update_spec")

    def test_the_token_budget_is_shared_across_two_cursors(self):
        """Two connections count against one row per token: what one committed,
        the other sees, and the third call of a budget of two is refused."""
        Budget = self.env["do.call.budget"]
        now = time.time()
        with self.committed_budget() as key:
            with self.registry.cursor() as first, self.registry.cursor() as second:
                self.assertEqual(Budget._take(key, 2, 100, now=now, cr=first), 0)
                first.commit()
                self.assertEqual(Budget._take(key, 2, 100, now=now, cr=second), 0)
                second.commit()
                wait = Budget._take(key, 2, 100, now=now, cr=first)
                first.commit()
                self.assertGreater(wait, 0)
                self.assertLessEqual(wait, 120)
                second.execute("SELECT minute_count, refused FROM do_call_budget "
                               "WHERE token_key = %s", [key])
                self.assertEqual(second.fetchone(), (2, 1))

    def test_a_count_that_waits_for_another_is_not_refused_by_postgresql(self):
        """Runners on other threads count calls on one row at the same moment. A count
        that waits for another's row lock goes on from that count once it commits;
        under Odoo's REPEATABLE READ, PostgreSQL refused it with a serialization
        failure, which crashed the step action and idled its deployment 30 s (the
        slow deployment of the first 'parallel' benchmark)."""
        Budget = self.env["do.call.budget"]
        now = time.time()
        outcome = {}
        with self.committed_budget() as key:
            with self.registry.cursor() as holder, self.registry.cursor() as counter:
                self.assertEqual(Budget._take(key, 100, 1000, now=now, cr=holder), 0)
                holder.commit()
                counter.execute("SELECT pg_backend_pid()")
                counter_pid = counter.fetchone()[0]
                counter.commit()
                holder.execute("SELECT 1 FROM do_call_budget WHERE token_key = %s FOR UPDATE",
                               [key])

                def count():
                    try:
                        outcome["wait"] = Budget._take(key, 100, 1000, now=now, cr=counter)
                        counter.commit()
                    except Exception as error:  # the assertion below shows it
                        outcome["error"] = error
                        counter.rollback()

                thread = threading.Thread(target=count)
                with mute_logger("odoo.sql_db"):
                    thread.start()
                    for _poll in range(200):  # the count waits on the holder's lock
                        holder.execute("SELECT wait_event_type FROM pg_stat_activity "
                                       "WHERE pid = %s", [counter_pid])
                        if holder.fetchone()[0] == "Lock":
                            break
                        time.sleep(0.02)
                    else:
                        self.fail("the second count never waited for the row lock")
                    holder.execute("UPDATE do_call_budget SET minute_count = minute_count + 1,"
                                   " hour_count = hour_count + 1 WHERE token_key = %s", [key])
                    holder.commit()
                    thread.join(30)
                self.assertNotIn("error", outcome)
                self.assertEqual(outcome["wait"], 0)
                holder.execute("SELECT minute_count, hour_count FROM do_call_budget "
                               "WHERE token_key = %s", [key])
                self.assertEqual(holder.fetchone(), (3, 3))

    def test_a_spent_budget_never_fails_a_step_past_its_limit(self):
        """200 deployments started at once spend the budget for minutes: a step
        refused by the token's own budget is retried past its time limit (it failed
        with RATE_LIMIT_EXCEEDED), since the budget only spaces calls out."""
        deployment, step = self.deploy_on_one_call_a_minute()
        self.assertIn("call budget", step.log)
        step.start_date = fields.Datetime.now() - timedelta(hours=1)  # far past its limit
        deployment.next_poll_at = fields.Datetime.now()
        self.run_cron()
        self.assertEqual(deployment.state, "running", step.log)
        self.assertEqual(step.state, "running")
        self.assertNotIn("Still failing", step.log)

    def test_a_spent_budget_is_a_scheduled_next_poll(self):
        """With a budget of one call a minute, step 1's second call is refused before
        it is sent: RATE_LIMIT_EXCEEDED in the step's log, the deployment still
        running and due again later, no 429 from DigitalOcean."""
        deployment, step = self.deploy_on_one_call_a_minute()
        self.assertEqual(deployment.state, "running")
        self.assertEqual(step.state, "running", step.log)
        self.assertIn("RATE_LIMIT_EXCEEDED", step.log)
        self.assertIn("call budget", step.log)
        self.assertGreaterEqual(
            (deployment.next_poll_at - fields.Datetime.now()).total_seconds(), 9)
        self.env.cr.execute("SELECT sum(refused) FROM do_call_budget")
        self.assertGreaterEqual(self.env.cr.fetchone()[0], 1)

    def test_an_action_whose_calls_do_not_fit_sends_none(self):
        """Step 1 makes three or four calls. With two left in the minute, it used to
        read the app, check the registry and be refused the proposal: two calls
        spent for nothing, again at every retry (200 deployments on one token read
        their apps ~6 times each). Now it takes its calls together or waits."""
        self.fresh_budget(10)
        key = token_key(self.staging.account_id._get_token())
        Budget = self.env["do.call.budget"]
        for _call in range(8):
            self.assertEqual(Budget._take(key, 10, 4000), 0)
        requests = self.sim.stats()["requests"]
        deployment = self.deploy("v1.1.0")
        self.run_cron()
        step = self.step(deployment, "update_spec")
        self.assertEqual(self.sim.stats()["requests"], requests, step.log)
        self.assertEqual((deployment.state, step.state), ("running", "running"))
        self.assertIn("Waiting", step.log)
        self.assertNotIn("RATE_LIMIT_EXCEEDED", step.log)
        self.assertGreater(deployment.next_poll_at, fields.Datetime.now())
        self.env.cr.execute("SELECT minute_count FROM do_call_budget WHERE token_key = %s",
                            [key])
        self.assertEqual(self.env.cr.fetchone()[0], 8, "nothing taken")

    def test_deployments_waiting_for_the_budget_take_turns(self):
        """Refused together, they were all due again when the first could go: 190
        starts waiting on one token were refused 17 times a second. Each now waits
        for the ones before it: on 10 calls a minute (5 for starts, 4 calls each),
        48 s apart."""
        self.fresh_budget(10)
        token_row = token_key(self.staging.account_id._get_token())
        self.assertEqual(self.env["do.call.budget"]._take(
            token_row, 10, 4000, calls=5, work_limit=10), 0)
        deployments = self.deploy("v1.1.0")
        for index in range(2):
            deployments |= self.deploy("v1.1.0", app=self._create_app(f"odoo-turn-{index}",
                                                                      "staging"))
        self.run_cron()
        for deployment in deployments:
            self.assertIn("Waiting", self.step(deployment, "update_spec").log)
        first, second, third = deployments.sorted("id").mapped("next_poll_at")
        self.assertGreaterEqual((second - first).total_seconds(), 47)
        self.assertGreaterEqual((third - second).total_seconds(), 47)

    def test_a_short_budget_goes_to_monitors_then_deployments_in_flight_then_starts(self):
        """Steps' calls are held under a share of the budget, step 1 under half and
        the others under three quarters; the monitors and rollbacks use all of it:
        with 47 steps' calls made of 100 a new deployment waits while a step in
        flight still goes on, and with 74 made a monitor's read still fits."""
        self.fresh_budget(100)
        token = self.staging.account_id._get_token()
        key = token_key(token)
        Budget = self.env["do.call.budget"]
        self.assertEqual(Budget._take(key, 100, 4000, calls=47, work_limit=100), 0)
        deployment = self.deploy("v1.1.0")
        self.run_cron()
        step = self.step(deployment, "update_spec")
        self.assertIn("Waiting", step.log)
        self.assertEqual(step.state, "running")
        share = pipeline_policy.budget_share
        with Budget._reserved(token, 2, share=share("apply_spec")) as wait:
            self.assertEqual(wait, 0)
        self.assertEqual(Budget._take(key, 100, 4000, calls=27, work_limit=100), 0)  # 74
        with Budget._reserved(token, 2, share=share("create_deployment")) as wait:
            self.assertGreater(wait, 0)
        for code in ("monitor", "rb_create"):
            with Budget._reserved(token, 1, share=share(code)) as wait:
                self.assertEqual(wait, 0, code)
        self.env.cr.execute("SELECT minute_count, work_count FROM do_call_budget "
                            "WHERE token_key = %s", [key])
        self.assertEqual(self.env.cr.fetchone(), (74, 74), "unused calls given back")

    def test_a_doctl_account_takes_every_run_from_the_budget_and_never_retries_in_it(self):
        """doctl made its calls outside the token's budget, and retried a 429 or a 5xx
        five times itself, up to 30 s apart, on the cron thread."""
        account = self.staging.account_id.sudo()
        account.write({"backend": "doctl", "api_url": self.server.url,
                       "doctl_path": str(Path(__file__).parents[1] / "engine/tests/bin/doctl")})
        self.fresh_budget(100)
        key = token_key(account._get_token())
        backend = account._get_backend()
        backend.get_app(self.staging.do_app_id)
        self.env.cr.execute("SELECT minute_count FROM do_call_budget WHERE token_key = %s",
                            [key])
        self.assertEqual(self.env.cr.fetchone()[0], 1)
        self.sim.set_scenario("server-error", app_id=self.staging.do_app_id, count=100)
        requests = self.sim.stats()["requests"]
        with self.assertRaises(DeployError) as failed:
            backend.get_app(self.staging.do_app_id)
        self.assertEqual((failed.exception.code, self.sim.stats()["requests"]),
                         ("SERVICE_UNAVAILABLE", requests + 1))
        self.sim.set_scenario(None, app_id=self.staging.do_app_id)
        Budget = self.env["do.call.budget"]
        for _call in range(100):
            if Budget._take(key, 100, 4000):
                break  # spent
        with self.assertRaises(DeployError) as refused:
            backend.get_app(self.staging.do_app_id)
        self.assertEqual((refused.exception.code, self.sim.stats()["requests"]),
                         ("RATE_LIMIT_EXCEEDED", requests + 1))

    def test_reserved_calls_an_action_did_not_make_are_given_back(self):
        """Every action takes its usual calls at once; those it did not make (step 3
        adopts its deployment without a call) are counted off again: the budget
        counts exactly what DigitalOcean received."""
        self.env.cr.execute("DELETE FROM do_call_budget")
        requests = self.sim.stats()["requests"]
        deployment = self.deploy("v1.1.0")
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        self.env.cr.execute("SELECT minute_count FROM do_call_budget WHERE token_key = %s",
                            [token_key(self.staging.account_id._get_token())])
        self.assertEqual(self.env.cr.fetchone()[0], self.sim.stats()["requests"] - requests)


@tagged("post_install", "-at_install")
class TestAppWatch(DeployCommon):

    def watch(self):
        """One pass of the app-list watcher (it commits: a savepoint here)."""
        with in_a_runner_job(self.env):
            made_due = self.env["do.deployment"]._watch_accounts()
        self.env.invalidate_all()
        return made_due

    def run_until_phase(self, monitor):
        """Run the cron until ``monitor`` has read its deployment's phase; when the last
        run began."""
        for _run in range(10):
            polled_after = fields.Datetime.now()
            self.run_cron()
            if (monitor.data or {}).get("phase"):
                break
            self.make_due()
        return polled_after

    def test_the_app_list_wakes_only_the_monitor_whose_deployment_ended(self):
        app = self._create_app("odoo-watch", "staging", build_seconds=120, deploy_seconds=0)
        deployment = self.deploy("v1.1.0", app=app)
        other = self.deploy("v1.1.0")  # staging: built in the simulator's default time
        monitor = self.step(deployment, "monitor")
        polled_after = self.run_until_phase(monitor)
        phase = monitor.data["phase"]
        self.assertIn(phase, ("PENDING_BUILD", "BUILDING"))
        # Its own next read is only the fallback, a minute away.
        self.assertGreaterEqual((deployment.next_poll_at - polled_after).total_seconds(), 59)
        planned = deployment.next_poll_at
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.watch()
        self.assertEqual(deployment.next_poll_at, planned, "same phase in the list: no read")
        self.sim.clock.advance(300)  # the build is over: ACTIVE
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.assertGreaterEqual(self.watch(), 1)
        self.assertLessEqual(deployment.next_poll_at, fields.Datetime.now())
        # The tick is claimed: a second runner does not list the apps again now.
        deployment.next_poll_at = planned
        self.assertEqual(self.watch(), 0)
        self.assertEqual(deployment.next_poll_at, planned)
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.watch()
        self.run_cron()
        self.assertEqual(monitor.state, "done", monitor.log)
        self.assertIn("is ACTIVE", monitor.log)
        self.run_until_idle()
        self.assertEqual((deployment | other).mapped("state"), ["done", "done"])

    def test_a_new_phase_in_the_list_is_recorded_without_a_read(self):
        """BUILDING to DEPLOYING is taken from the list (phase, progress, a log line);
        only the end is read on its own: two reads fewer per deployment."""
        app = self._create_app("odoo-phase", "staging", build_seconds=120, deploy_seconds=120)
        deployment = self.deploy("v1.1.0", app=app)
        monitor = self.step(deployment, "monitor")
        self.run_until_phase(monitor)
        self.assertIn(monitor.data["phase"], ("PENDING_BUILD", "BUILDING"))
        reads = self.sim.stats()["by_operation"].get("apps_get_deployment", 0)
        self.sim.clock.advance(150)  # built: deploying
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.assertEqual(self.watch(), 0)
        self.assertEqual(monitor.data["phase"], "DEPLOYING")
        self.assertIn("Phase DEPLOYING", monitor.log)
        self.assertEqual(self.sim.stats()["by_operation"].get("apps_get_deployment", 0), reads)
        self.sim.clock.advance(150)  # deployed: ACTIVE, read on its own
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.assertEqual(self.watch(), 1)

    def test_the_list_seeing_a_monitor_unchanged_defers_its_own_read(self):
        """A monitor's own read is the fallback for a list that cannot be read: while
        the list shows it in the same phase, that read keeps moving a minute on (200
        monitors read themselves once a minute: 200 calls a minute on one token),
        but never past the step's time limit, which only that read checks."""
        app = self._create_app("odoo-defer", "staging", build_seconds=600, deploy_seconds=0)
        deployment = self.deploy("v1.1.0", app=app)
        monitor = self.step(deployment, "monitor")
        self.run_until_phase(monitor)
        self.assertEqual(deployment.current_step_id, monitor)
        now = fields.Datetime.now()
        deployment.next_poll_at = now + timedelta(seconds=10)
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.watch()
        self.assertGreaterEqual((deployment.next_poll_at - now).total_seconds(), 59)
        # Twenty seconds before the step's limit, the read stays at the limit.
        now = fields.Datetime.now()
        monitor.start_date = now - timedelta(seconds=app.deploy_timeout - 20)
        deployment.next_poll_at = now - timedelta(seconds=1)
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.watch()
        self.assertEqual(deployment.next_poll_at,
                         monitor.start_date + timedelta(seconds=app.deploy_timeout + 1))

    def test_a_tick_due_between_two_actions_is_taken_and_its_monitor_goes_first(self):
        """A run looks at the app list between two actions once a tick is due; the
        monitor it makes due is taken before deployments due for longer, whose actions
        only go on where its read ends a wait."""
        app = self._create_app("odoo-first", "staging", build_seconds=120, deploy_seconds=0)
        watched = self.deploy("v1.1.0", app=app)
        monitor = self.step(watched, "monitor")
        self.run_until_phase(monitor)
        planned = watched.next_poll_at
        self.sim.clock.advance(300)  # its build is over: ACTIVE
        started = self.deploy("v1.1.0")
        Deployment = self.env["do.deployment"]
        lists = self.sim.stats()["by_operation"].get("apps_list", 0)
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        earlier = fields.Datetime.now() - timedelta(seconds=10)
        with in_a_runner_job(self.env), actions_recorded(self.env) as order:
            Deployment._promote_queued()
            started.next_poll_at = earlier
            Deployment._advance_due(deadline=time.monotonic() + 60, watch_every=0.0)
            self.env.invalidate_all()
            self.assertEqual(self.sim.stats()["by_operation"].get("apps_list", 0), lists + 1)
            self.assertLess(watched.next_poll_at, planned, "made due by the list")
            self.assertNotIn(watched.id, [deployment for deployment, _code in order])
            self.assertEqual(order[0], (started.id, "update_spec"))
            order.clear()
            later = self.deploy("v1.1.0")  # the app is free again
            Deployment._promote_queued()
            later.next_poll_at = earlier
            Deployment._advance_due()
        self.assertEqual(order, [(watched.id, "monitor"), (later.id, "update_spec")])
        self.assertEqual(monitor.state, "done", monitor.log)

    def test_the_app_list_wakes_the_rollback_monitor(self):
        """The rollback's wait for its DigitalOcean deployment is watched through the app
        list too: its own read falls back to a minute, the list in the same phase leaves
        it waiting, and the list showing it ACTIVE makes it due."""
        app = self._create_app("odoo-watch-rb", "staging", build_seconds=120, deploy_seconds=0)
        deployment = self.deploy("v1.1.0", app=app)
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        action = deployment.action_rollback(reason="Watched by the app list")
        rollback = self.env["do.deployment"].browse(action["res_id"])
        monitor = self.step(rollback, "rb_monitor")
        polled_after = self.run_until_phase(monitor)
        self.assertIn(monitor.data["phase"], ("PENDING_BUILD", "BUILDING"))
        self.assertEqual(rollback.current_step_id, monitor)
        self.assertGreaterEqual((rollback.next_poll_at - polled_after).total_seconds(), 59,
                                "the rollback's own read is only the fallback")
        planned = rollback.next_poll_at
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.watch()
        self.assertEqual(rollback.next_poll_at, planned, "same phase in the list: no read")
        self.sim.clock.advance(300)  # the rollback's build is over: ACTIVE
        self.env.cr.execute("UPDATE do_call_budget SET watch_due = 0")
        self.assertEqual(self.watch(), 1)
        self.assertLessEqual(rollback.next_poll_at, fields.Datetime.now())
        self.run_cron()
        self.assertEqual(monitor.state, "done", monitor.log)
        self.run_until_idle()
        self.assertEqual(rollback.state, "done", rollback.step_ids.mapped("log"))
        self.assertEqual(deployment.state, "rolled_back")
