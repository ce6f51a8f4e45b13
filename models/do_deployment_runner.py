"""The cron runner of ``do.deployment`` and the step driver it calls.

The runner takes due deployments under row locks that skip locked rows,
promotes queued ones when their app is free, runs one short step action per
deployment, commits after each and re-arms the cron. The driver records what
one action did: a step done, a poll planned, a retry, a failure, the end.
The step handlers themselves are in ``do_deployment_steps.py`` (steps 1-8)
and ``do_deployment_rollback.py`` (rollback steps).
"""

import logging
import time
import traceback
from datetime import datetime, timedelta, timezone

import psycopg2
from markupsafe import Markup
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.tools import SQL, config

from ..engine import app_watch, call_budget
from ..engine import pipeline_policy as policy
from ..engine.errors import DeployError
from .do_deployment import IN_FLIGHT_STATES, STEP_DURATION_FIELDS
from .do_deployment_step import FINISHED_STEP_STATES

_logger = logging.getLogger(__name__)

# The runner jobs (data/ir_cron_data.xml has the first four): how many there are is the
# system parameter RUNNER_JOBS_PARAM, applied when it is set (ir_config_parameter.py).
RUNNER_CODE = "model._cron_advance()"
RUNNER_JOBS_PARAM = "do_deploy.runner_jobs"
RUNNER_JOBS = 4
MAX_RUNNER_JOBS = 32


class _LockLost(Exception):
    """Another worker took the deployment while an intent was being committed."""


class _NotDue(Exception):
    """A deployment locked for a pass turned out not to be due: its lock is released."""


class _FailureHandlingBroke(Exception):
    """Recording a step's failure, or what follows it (rollback, incident, revert),
    raised: the deployment is poison and is failed plainly, on its own."""

    def __init__(self, step, error):
        super().__init__(f"handling {error.code} on {step.name} broke")
        self.step = step
        self.error = error


def lock_skip_locked(records):
    """``records.try_lock_for_update(allow_referencing=True)``, with PostgreSQL's
    refusals left to the caller instead of logged as a bad query."""
    cr = records.env.cr
    cr.execute(SQL("SELECT id FROM %s WHERE id IN %s FOR NO KEY UPDATE SKIP LOCKED",
                   SQL.identifier(records._table), tuple(records.ids)), log_exceptions=False)
    locked = {row[0] for row in cr.fetchall()}
    return records.browse([id_ for id_ in records.ids if id_ in locked])


class DoDeployment(models.Model):
    # One model over several files, one per concern (DESIGN.md), as Odoo splits account.move.
    _inherit = "do.deployment"  # pylint: disable=consider-merging-classes-inherited

    # ------------------------------------------------------------------
    # The runner (cron)
    # ------------------------------------------------------------------

    @api.model
    def _runner_jobs(self, active_only=True):
        """The cron jobs that run the runner, oldest first (active ones only unless
        ``active_only`` is false).

        Odoo runs one row of ir.cron at a time per database; several jobs let
        every cron thread of every server advance deployments at the same time.
        """
        return self.env["ir.cron"].sudo().with_context(active_test=active_only).search([
            ("model_id.model", "=", "do.deployment"), ("code", "=", RUNNER_CODE),
        ], order="id")

    @api.model
    def _runner_count(self):
        """How many runner jobs there should be: the system parameter
        ``do_deploy.runner_jobs``, between 1 and MAX_RUNNER_JOBS (RUNNER_JOBS, 4,
        when it is unset or not a number)."""
        value = self.env["ir.config_parameter"].sudo().get_param(RUNNER_JOBS_PARAM)
        try:
            count = int(value) if value else RUNNER_JOBS  # unset: False, which int() takes
        except (TypeError, ValueError):
            return RUNNER_JOBS
        return min(max(count, 1), MAX_RUNNER_JOBS)

    @api.model
    def _sync_runner_jobs(self):
        """Make the oldest ``_runner_count()`` runner jobs active, creating the missing
        ones like the first, and archive the others. A job another thread is running
        now holds its row: it is left to archive itself when it next runs
        (:meth:`_cron_advance`)."""
        jobs = self._runner_jobs(active_only=False)
        count = self._runner_count()
        if len(jobs) < count:
            first = self.env.ref("do_deploy.ir_cron_deployment_advance").sudo()
            jobs |= jobs.create([{
                "name": f"{first.with_context(lang='en_US').name} ({number})",
                "model_id": first.model_id.id, "state": "code", "code": RUNNER_CODE,
                "interval_number": first.interval_number, "interval_type": first.interval_type,
                "priority": first.priority, "user_id": first.user_id.id,
            } for number in range(len(jobs) + 1, count + 1)])
        wanted, extra = jobs[:count], jobs[count:]
        self._try_lock(wanted.filtered(lambda job: not job.active)).write({"active": True})
        self._try_lock(extra.filtered("active")).write({"active": False})

    @api.model
    def _is_extra_runner(self):
        """True in a run of a runner job beyond ``_runner_count()`` (the setting was
        lowered while it ran)."""
        job_id = self.env.context.get("cron_id")
        if not job_id:
            return False
        return job_id not in self._runner_jobs(active_only=False)[:self._runner_count()].ids

    def _wake_runner(self):
        """Ask the cron threads to run now (NOTIFY after commit: about a second)."""
        for job in self._runner_jobs():
            job._trigger()

    @api.model
    def _cron_advance(self):
        """Advance every due deployment by one step action, committing after each.

        Odoo's cron threads only look at future triggers about once a minute, so
        a run keeps polling its in-flight deployments for up to
        ``do_deploy.cron_run_seconds`` (50 s), sleeping between polls with no
        transaction open, and then re-arms itself: now if a poll falls due
        within a run's length, else shortly before the next one.
        """
        runner = self.sudo()
        if runner._is_extra_runner():
            self.env["ir.cron"]._commit_progress(deactivate=True)
            return
        run_seconds = runner._get_cron_run_seconds()
        deadline = time.monotonic() + run_seconds
        while True:
            runner._promote_queued()
            runner._watch_accounts()
            processed = runner._advance_due(
                deadline=deadline, watch_every=policy.WATCH_SLICE if run_seconds else None)
            next_due = runner._next_due_at()
            if next_due is None:
                break
            wait = policy.cron_pause(
                (next_due - fields.Datetime.now()).total_seconds(), processed)
            if run_seconds and time.monotonic() >= deadline:
                # Even with work due (re-armed for now): a run that went on while work
                # was due outlived Odoo's cron limit. A zero run length (the tests') is
                # one pass until nothing is due, with no wait.
                break
            if not wait:
                continue
            if time.monotonic() + wait > deadline:
                break
            runner._cron_wait(wait)
        runner._rearm(run_seconds)

    @api.model
    def _get_cron_run_seconds(self):
        """``do_deploy.cron_run_seconds`` (50 s), shortened so that a cron thread that
        runs every runner job in a row stays under Odoo's real-time limit for cron
        threads: with four jobs of 50 s, one thread ran 200 s and Odoo reloaded the
        whole threaded server at 120 s (``limit_time_real``)."""
        configured = policy.cron_run_seconds(self.env["ir.config_parameter"].sudo().get_param(
            "do_deploy.cron_run_seconds", policy.CRON_RUN_SECONDS))
        limit = config["limit_time_real_cron"]
        if not limit or limit <= 0:
            limit = config["limit_time_real"]
        return policy.run_seconds_within_limit(configured, limit, len(self._runner_jobs()))

    @api.model
    def _cron_wait(self, seconds):
        """Sleep up to ``seconds`` between polls, waking early when new work appears.

        The transaction is committed first, so nothing is held while waiting.
        """
        self.env["ir.cron"]._commit_progress()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))
            if self._has_new_work():
                return

    @api.model
    def _has_new_work(self):
        """A queued deployment whose app is free (one cheap query, then commit)."""
        self.env.cr.execute("""
            SELECT 1 FROM do_deployment q
             WHERE q.state = 'queued'
               AND NOT EXISTS (SELECT 1 FROM do_deployment r
                                WHERE r.app_id = q.app_id
                                  AND r.state IN ('running', 'rolling_back'))
             LIMIT 1
        """)
        found = bool(self.env.cr.fetchone())
        self.env["ir.cron"]._commit_progress()
        return found

    @api.model
    def _next_due_at(self):
        """The next deployment's poll, or the next app-list tick if that is sooner."""
        deployment = self.search(
            [("state", "=", "running"), ("next_poll_at", "!=", False)],
            order="next_poll_at", limit=1)
        next_due = deployment.next_poll_at or None
        watch = self._next_watch_at()
        if watch is not None and (next_due is None or watch < next_due):
            return watch
        return next_due

    # ------------------------------------------------------------------
    # Watching monitored deployments through the app list
    # ------------------------------------------------------------------

    @api.model
    def _watched_monitors(self):
        """Deployments following a DigitalOcean deployment: step 4, the rollback's
        wait (``rb_monitor``) and the revert's follow-up (``rb_revert``)."""
        return self.search([
            ("state", "=", "running"), ("current_step_id.code", "in", policy.MONITOR_STEPS),
        ]).filtered(lambda deployment: deployment._watched_do_deployment())

    def _watched_do_deployment(self):
        """The DigitalOcean deployment the current step follows (None: none yet)."""
        step = self.current_step_id
        if step.code == "rb_revert":
            return (step.data or {}).get("revert_deployment_id")
        return self.do_deployment_id or None

    @api.model
    def _watch_interval(self, account):
        """Seconds between two app-list ticks of ``account``'s token: 5, or longer
        when the pages of its apps would take more than half its call budget."""
        per_minute, per_hour = self.env["do.call.budget"]._limits()
        pages = app_watch.pages_needed(len(account.with_context(active_test=False).app_ids))
        return call_budget.poll_interval(pages, per_minute, per_hour)

    @api.model
    def _next_watch_at(self):
        monitors = self._watched_monitors()
        if not monitors:
            return None
        Budget = self.env["do.call.budget"]
        due = min(Budget._watch_due(account._get_token())
                  for account in monitors.app_id.account_id)
        return max(datetime.fromtimestamp(due, timezone.utc).replace(tzinfo=None, microsecond=0),
                   fields.Datetime.now())

    @api.model
    def _watch_accounts(self):
        """One tick of ``GET /v2/apps`` per account whose tick is due, for all its
        monitored deployments at once (one call per page of apps, claimed by one
        runner of all threads and servers). A deployment the list shows in the same
        phase keeps waiting; one that changed phase or ended is made due, and its
        monitor reads it on its own. Returns the number of deployments made due."""
        monitors = self._watched_monitors()
        made_due = 0
        Budget = self.env["do.call.budget"]
        for account, deployments in monitors.grouped(lambda d: d.app_id.account_id).items():
            if not Budget._claim_watch(account._get_token(), self._watch_interval(account)):
                continue
            try:
                apps = account._get_backend().list_apps()
            except DeployError as error:
                _logger.info("App list of %s not read (%s): its monitors poll on their own.",
                             account.name, error.code)
                continue
            plan = app_watch.plan(apps, {
                deployment.id: (deployment.app_id.do_app_id, deployment._watched_do_deployment(),
                                (deployment.current_step_id.data or {}).get("phase"))
                for deployment in deployments})
            now = fields.Datetime.now()
            for deployment in deployments:
                sighting = plan[deployment.id]
                if not self._try_lock(deployment):
                    continue
                deployment.invalidate_recordset()
                step = deployment.current_step_id
                if deployment.state != "running" or step.code not in policy.MONITOR_STEPS:
                    continue
                if sighting.read:
                    if not deployment.next_poll_at or deployment.next_poll_at > now:
                        deployment.next_poll_at = now
                        made_due += 1
                else:
                    step._record_phase(sighting.phase, sighting.progress)
                    deployment._defer_own_read(now)
            self.env["ir.cron"]._commit_progress()
        return made_due

    def _defer_own_read(self, now):
        """The list shows this deployment in the same phase: its own read, the fallback
        for a list that cannot be read, moves on to a minute from now. Without this,
        200 monitors each read their deployment once a minute: 200 calls a minute
        on one token. Never past the step's time limit, which only that read checks;
        and only when the read is due or it gains more than half that minute, so that
        a tick writes each row at most every 30 s."""
        step = self.current_step_id
        latest = step.start_date + timedelta(seconds=self.app_id.deploy_timeout + 1)
        later = min(now + timedelta(seconds=app_watch.FALLBACK_POLL), latest)
        planned = self.next_poll_at
        if planned and planned < later and (
                planned <= now
                or (later - planned).total_seconds() > app_watch.FALLBACK_POLL / 2):
            self.next_poll_at = later

    @api.model
    def _rearm(self, run_seconds):
        """Trigger every runner job for the next poll, so that all threads share it."""
        next_due = self._next_due_at()
        if next_due is None:
            return
        at = policy.rearm_at(next_due, fields.Datetime.now(), run_seconds)
        for job in self._runner_jobs():
            job._trigger(at=at)

    @api.model
    def _promote_queued(self):
        """Start the oldest queued deployment of every app that has none in flight.

        The unique index on running deployments makes this safe between workers:
        a second promotion for the same app fails and is skipped.
        """
        queued = self.search([("state", "=", "queued")], order="id")
        if not queued:
            return
        busy = set(self.search([
            ("state", "in", IN_FLIGHT_STATES), ("app_id", "in", queued.app_id.ids),
        ]).app_id.ids)
        now = fields.Datetime.now()
        started = self.browse()
        for deployment in queued:
            if deployment.app_id.id in busy:
                continue
            busy.add(deployment.app_id.id)
            # Serialize promotions per app between workers; the index stays the guarantee.
            locked = self._try_lock(deployment.app_id) and self._try_lock(deployment)
            if not locked or self.search_count([
                    ("app_id", "=", deployment.app_id.id), ("state", "in", IN_FLIGHT_STATES)]):
                continue
            deployment.invalidate_recordset(["state"])
            if deployment.state != "queued":
                continue
            try:
                with self.env.cr.savepoint():
                    deployment.write({"state": "running", "start_date": now, "next_poll_at": now})
                    deployment.flush_recordset()
            except pg_errors.UniqueViolation:
                deployment.invalidate_recordset()
                continue
            started |= deployment
        started._notify_clients()
        self.env["ir.cron"]._commit_progress(len(started))

    @api.model
    def _advance_due(self, limit=200, deadline=None, watch_every=None):
        """One step action for each due deployment, each under its own row lock.

        Runners on other threads take the same deployments in the same order and
        skip the ones locked here: each deployment is advanced by one runner at a
        time, and they share the others. Past ``deadline`` (``time.monotonic()``)
        the run stops taking new ones; they stay due for the next run. Monitors
        come first: their read ends a wait, where the others' actions go on.

        Within a run (``deadline`` given), a deployment whose action leaves it due
        at once (the next step, the next endpoint check) is taken again, each action
        still in its own transaction, until it waits or the deadline: taken in turn
        with all the others, 100 deployments in step 7 each waited for 99 others
        between two checks, and ran past the step's limit (DEPLOY_TIMEOUT).

        Every ``watch_every`` seconds, between two actions, the app list is looked
        at (:meth:`_watch_accounts`) without cutting that deployment's run of
        actions; when the list made monitors due, the pass ends once it waits, for
        the caller to take them. Cut at each look instead, 100 deployments took
        turns one action each, and every click-to-done lasted nearly the whole run.
        """
        now = fields.Datetime.now()
        due = self.search(
            [("state", "=", "running"), ("next_poll_at", "<=", now)],
            order="next_poll_at, id", limit=limit,
        ).sorted(lambda deployment: deployment.current_step_id.code not in policy.MONITOR_STEPS)
        processed = 0
        made_due = 0
        watch_at = None if watch_every is None else time.monotonic() + watch_every
        IrCron = self.env["ir.cron"]
        for deployment in due:
            if made_due or (deadline is not None and processed
                            and time.monotonic() > deadline):
                break
            taken = self._take_due(deployment, now)
            while taken:
                deployment._advance_safely()
                processed += 1
                IrCron._commit_progress(1)
                if watch_at is not None and time.monotonic() >= watch_at:
                    made_due += self._watch_accounts()
                    watch_at = time.monotonic() + watch_every
                taken = deadline is not None and time.monotonic() <= deadline \
                    and self._take_due(deployment, fields.Datetime.now())
        return processed

    @api.model
    def _take_due(self, deployment, now):
        """Lock ``deployment`` if it is still running and due. One that is not (another
        runner advanced it, or it holds a lease) is released at once, by rolling back
        the savepoint its lock was taken in, rather than held until this run's next
        commit while that runner waits to take it back."""
        try:
            with self.env.cr.savepoint(flush=False):
                if not self._try_lock(deployment):
                    return False
                deployment.invalidate_recordset()
                if deployment.state != "running" or (deployment.next_poll_at or now) > now:
                    raise _NotDue()
                return True
        except _NotDue:
            deployment.invalidate_recordset()
            return False

    @api.model
    def _try_lock(self, records):
        """``try_lock_for_update``, where a row changed since this transaction's snapshot
        counts as locked.

        Such a row makes PostgreSQL raise a serialization failure instead of skipping
        it (Odoo's ir_cron documents the same for its jobs) and aborts the
        transaction; rolled back to a savepoint, the run goes on with the other
        rows and takes this one in a later pass, after a commit. PostgreSQL's
        refusal is expected, so the query does not log it (``log_exceptions``, not
        ``mute_logger``, which swaps the logger's handlers for every thread of the
        server and, with runners on several threads, could leave it muted).
        """
        if not records.ids:
            return records.browse()
        try:
            with self.env.cr.savepoint(flush=False):
                return lock_skip_locked(records)
        except psycopg2.extensions.TransactionRollbackError:
            _logger.info("%s changed since this run's snapshot: taken in a later pass.",
                         records)
            return records.browse()

    def _advance_safely(self):
        """``_advance``, but nothing that goes wrong with one deployment stops the others.

        An unexpected error rolls the transaction back (as if the process had
        died there) and the deployment is retried later from what was committed;
        past its step's deadline the watchdog fails it with DEPLOY_TIMEOUT. When
        handling a failure breaks itself, the deployment is failed on its own
        with PIPELINE_ERROR (:meth:`_fail_poisoned`): it must not stay due and
        break every later run.
        """
        try:
            self._advance()
        except _LockLost:
            self.env.cr.rollback()
            return
        except _FailureHandlingBroke as broke:
            self._fail_broken_handling(broke)
        except Exception as exc:
            self._log_crash("unexpected error")
            try:
                self._retry_after_crash(exc)
            except _FailureHandlingBroke as broke:
                self._fail_broken_handling(broke)
            except Exception as inner:
                self._log_crash("handling an unexpected error broke")
                self._fail_poisoned("Handling an unexpected error broke", inner)
        self._notify_clients()

    def _fail_broken_handling(self, broke):
        """Fail the deployment alone with PIPELINE_ERROR; called in the ``except`` of a
        :class:`_FailureHandlingBroke`, whose traceback it logs."""
        self._log_crash("handling a failure broke")
        self._fail_poisoned(f"Handling {broke.error.code} on {broke.step.name} broke",
                            broke.__cause__)

    def _log_crash(self, what):
        """Roll back, then log the traceback, redacted like every step log."""
        self.env.cr.rollback()
        self.env.invalidate_all()
        _logger.error("Deployment %s: %s\n%s", self.name, what,
                      self.app_id.account_id._redact(traceback.format_exc()))

    def _retry_after_crash(self, exc):
        """After an unexpected error: retry later, or fail the step past its deadline."""
        if not self._try_lock(self) or self.state != "running":
            return
        step = self._current_step()
        message = f"Unexpected error: {type(exc).__name__}: {exc}"
        if step and step.state == "pending":
            # Its start was rolled back too: keep it, so the deadline runs.
            self._start_step(step)
        if step and self._past_deadline(step):
            self._fail_step(step, DeployError(
                "DEPLOY_TIMEOUT",
                f"{step.name} made no progress within its time limit. {message}"))
        else:
            if step:
                step._append_log(message + " (retrying)")
            self._schedule(policy.INTENT_LEASE)

    def _fail_poisoned(self, what, exc):
        """Fail a deployment whose failure handling broke, in a transaction of its own.

        Only this deployment, its steps and the deployment it rolls back are
        written: no rollback, incident or DigitalOcean call, since any of them may
        be what broke. PIPELINE_ERROR tells a person to look at the app. If even
        this fails, the error is logged and the run goes on with the others.
        """
        self.env.cr.rollback()
        self.env.invalidate_all()
        try:
            if not self._try_lock(self) or self.state != "running":
                return
            account = self.app_id.account_id
            message = account._redact(f"{what}: {type(exc).__name__}: {exc}")
            error_code = self.env["do.error.code"]._get_by_code("PIPELINE_ERROR")
            now = fields.Datetime.now()
            step = self._current_step()
            if step:
                duration = (now - step.start_date).total_seconds() if step.start_date else 0.0
                step.write({"state": "failed", "end_date": now, "duration": duration,
                            "over_budget": duration > step.budget,
                            "error_code_id": error_code.id, "error_message": message})
                self._record_step_duration(step, duration)
                step._append_log(f"FAILED PIPELINE_ERROR: {message}")
                step._append_log(f"Mitigation: {error_code.mitigation}")
            self.step_ids.filtered(lambda s: s.state == "pending").write({"state": "skipped"})
            self.write({"error_code_id": error_code.id, "error_message": message})
            self._update_progress()
            self._finish("failed")
            target = self.rollback_of_id
            if target.state == "rolling_back":
                target._finish("failed")
            try:
                with self.env.cr.savepoint():
                    self.message_post(body=Markup(
                        "<p><b>PIPELINE_ERROR</b> %s</p><p>%s</p>") % (
                        message, error_code.mitigation))
            except Exception:  # the chatter may be what broke: the failure stands
                _logger.error("Deployment %s: no chatter note of its failure\n%s", self.name,
                              account._redact(traceback.format_exc()))
        except Exception:  # never stop the other deployments
            self.env.cr.rollback()
            self.env.invalidate_all()
            _logger.critical("Deployment %s could not even be failed\n%s", self.id,
                             self.app_id.account_id._redact(traceback.format_exc()))

    # ------------------------------------------------------------------
    # The step driver
    # ------------------------------------------------------------------

    def _current_step(self):
        """The first step still to run (a failed step is over too: after a failed
        rollback step, ``rb_revert`` is the one still to run)."""
        self.ensure_one()
        return self.step_ids.filtered(
            lambda s: s.state not in (*FINISHED_STEP_STATES, "failed")).sorted("sequence")[:1]

    def _schedule(self, delay):
        self.next_poll_at = fields.Datetime.now() + timedelta(seconds=delay)

    def _step_limit(self, step):
        """Seconds after which a step that made no progress is timed out."""
        return policy.step_limit(step.code, step.budget, self.app_id.deploy_timeout)

    def _past_deadline(self, step):
        elapsed = None
        if step.start_date:
            elapsed = (fields.Datetime.now() - step.start_date).total_seconds() \
                - (step.data or {}).get("queued_seconds", 0)
        return policy.past_deadline(elapsed, self._step_limit(step))

    def _stop_queue_clock(self, step):
        """Keep the time this deployment waited, due, for a free runner off its step's
        limit (``queued_seconds``, subtracted by :meth:`_past_deadline`).

        With 100 deployments on few cron threads, step 7's next check waited for the
        others and the step failed with DEPLOY_TIMEOUT although no check was slow. The
        limit measures the step's own actions and the waits it asked for (polls of
        DigitalOcean, retries, the checks' timeouts); the step's duration, and its
        budget, stay wall-clock time. A deployment is due from ``next_poll_at``; the
        first action of a step starts its clock, so only later actions wait here.
        """
        due = self.next_poll_at
        if not due or not step.start_date:
            return
        waited = (fields.Datetime.now() - max(due, step.start_date)).total_seconds()
        if waited > 0:
            step._update_data(
                queued_seconds=(step.data or {}).get("queued_seconds", 0) + waited)

    def _advance(self):
        """Run one short action of the current step and record its outcome."""
        self.ensure_one()
        step = self._current_step()
        if not step:
            if self.kind == "rollback":
                self._end_rollback()
            else:
                self._finish("done")
            return
        if step.state == "pending":
            self._start_step(step)
        else:
            self._stop_queue_clock(step)
        with self.env["do.call.budget"]._reserved(
                self.app_id.account_id._get_token(), policy.ACTION_CALLS.get(step.code, 0),
                share=policy.budget_share(step.code),
        ) as budget_wait:
            if budget_wait:
                self._wait_for_budget(step, budget_wait)
                return
            self._run_step_action(step)

    def _run_step_action(self, step):
        """One action of ``step`` and what follows from its outcome."""
        step.attempt += 1
        try:
            delay = getattr(self, f"_step_{step.code}")(step)
        except DeployError as error:
            # The token's own call budget only spaces calls out: never a reason to fail.
            if error.retryable and (error.details.get("budget")
                                    or not self._past_deadline(step)):
                step._append_log(f"{error.code}: {error.message} Retrying.")
                self._schedule(policy.retry_delay(error.details, time.time()))
                return
            if error.retryable:
                error = DeployError(error.code, f"{error.message} Still failing after "
                                    f"{self._step_limit(step)} s of retries.")
            self._fail_step(step, error)
            return
        if delay is not None:
            if self._past_deadline(step):
                self._fail_step(step, DeployError(
                    "DEPLOY_TIMEOUT",
                    f"{step.name} did not finish within {self._step_limit(step)} s."))
            else:
                self._schedule(delay)
            return
        self._complete_step(step)
        if next_step := self._current_step():
            self.current_step_id = next_step
            self._schedule(0)
        elif self.kind == "rollback":
            self._end_rollback()
        else:
            self._finish("done")

    def _wait_for_budget(self, step, wait):
        """The token's budget has no room for the action's calls now: nothing was
        sent, and the deployment is due again at its turn (said once in the log).

        Its turn comes after the deployments of the same account waiting in the same
        step before it, each given the time its calls take to fit
        (:func:`~engine.pipeline_policy.budget_turn`). Due again all together when
        the calls first fit, 190 starts waiting for a budget of 60 a minute were
        refused 17 times a second, each a transaction and a write for nothing.
        """
        ahead = self.search_count([
            ("state", "=", "running"), ("id", "<", self.id),
            ("app_id.account_id", "=", self.app_id.account_id.id),
            ("current_step_id.code", "=", step.code),
            ("next_poll_at", ">", fields.Datetime.now()),
        ])
        per_minute = self.env["do.call.budget"]._limits()[0]
        wait = policy.budget_turn(wait, ahead, policy.ACTION_CALLS.get(step.code, 1),
                                  per_minute * policy.budget_share(step.code))
        if not (step.data or {}).get("budget_waits"):
            step._append_log(
                f"Waiting {wait:.0f} s for this DigitalOcean token's call budget: other "
                "deployments on the same token are using it.")
        step._update_data(budget_waits=(step.data or {}).get("budget_waits", 0) + 1)
        self._schedule(wait)

    def _start_step(self, step):
        step.write({"state": "running", "start_date": fields.Datetime.now()})
        self.current_step_id = step

    def _complete_step(self, step):
        now = fields.Datetime.now()
        if (step.data or {}).get("skipped"):
            # The step had nothing to do: no duration, so that the averages and the
            # stage benchmarks leave it out, as they do the steps that never ran.
            step.write({"state": "skipped", "end_date": now})
            self._update_progress()
            return
        duration = (now - step.start_date).total_seconds()
        warned = bool((step.data or {}).get("warning"))
        step.write({
            "state": "warning" if warned else "done",
            "end_date": now,
            "duration": duration,
            "over_budget": duration > step.budget,
        })
        self._record_step_duration(step, duration)
        if duration > step.budget:
            step._append_log(f"Took {duration:.1f} s, over its budget of {step.budget} s.")
        self._update_progress()

    def _record_step_duration(self, step, duration):
        """Copy a finished deploy step's duration onto its deployment (rollback steps have
        no column), the figure the duration pivot averages."""
        if field_name := STEP_DURATION_FIELDS.get(step.code):
            self[field_name] = duration

    def _update_progress(self):
        steps = self.step_ids
        finished = steps.filtered(lambda s: s.state in FINISHED_STEP_STATES)
        self.progress = 100.0 * len(finished) / len(steps) if steps else 0.0

    def _fail_step(self, step, error):
        """Record the failure on the step and decide what happens to the app.

        If that raises, the deployment is poison: see :meth:`_advance_safely`.
        """
        try:
            self._record_failure(step, error)
        except _LockLost:
            raise
        except Exception as exc:
            raise _FailureHandlingBroke(step, error) from exc

    def _record_failure(self, step, error):
        now = fields.Datetime.now()
        account = self.app_id.account_id
        message = account._redact(error.message)
        error_code = self.env["do.error.code"]._get_by_code(error.code)
        duration = (now - step.start_date).total_seconds() if step.start_date else 0.0
        step.write({
            "state": "failed",
            "end_date": now,
            "duration": duration,
            "over_budget": duration > step.budget,
            "error_code_id": error_code.id,
            "error_message": message,
        })
        self._record_step_duration(step, duration)
        step._append_log(f"FAILED {error.code}: {message}")
        if error_code.mitigation:
            step._append_log(f"Mitigation: {error_code.mitigation}")
        # A failed rollback step leaves the revert to run; everything else is skipped.
        revert = self._step_by_code("rb_revert") if self.kind == "rollback" else None
        self.step_ids.filtered(lambda s: s.state == "pending" and s != revert).write(
            {"state": "skipped"})
        self.write({"error_code_id": error_code.id, "error_message": message})
        self._update_progress()
        self.message_post(body=Markup(
            "<p><b>%s</b> failed: <b>%s</b> %s</p><p>%s</p>") % (
            step.name, error.code, message, error_code.mitigation or ""))
        if self.kind == "rollback":
            if revert and revert.state == "pending":
                self._start_revert(revert)
            else:
                self._fail_rollback()
        elif step.code == "update_task":
            # The app is deployed; only the task could not be told.
            self._finish("done")
        elif self._app_changed() and self.previous_do_deployment_id:
            self._start_automatic_rollback(error)
        else:
            self._finish("failed")
            if self._app_changed():
                self._create_incident(self, self.env["do.deployment"], critical=True)

    def _app_changed(self):
        """True once DigitalOcean accepted our spec or created a deployment for us."""
        self.ensure_one()
        apply_step = self.step_ids.filtered(lambda s: s.code == "apply_spec")
        return bool(self.do_deployment_id or (apply_step.data or {}).get("applied"))

    def _finish(self, state):
        self.ensure_one()
        now = fields.Datetime.now()
        start = self.start_date or now
        self.write({
            "state": state,
            "end_date": now,
            "duration": (now - start).total_seconds(),
            "next_poll_at": False,
            "current_step_id": False,
        })
        if state == "done":
            self._update_progress()
            self.message_post(body=self.env._(
                "Deployed %(tag)s to %(app)s in %(seconds)s s.",
                tag=self.image_tag, app=self.app_id.name, seconds=round(self.duration, 1)))
        # The app's slot is free: the next queued deployment can start.
        self._wake_runner()

    def _commit_intent(self, step, **intent):
        """Write the intent of a mutating call and commit it before the call.

        With the intent committed, a crash between the call and the commit of
        its result is recognised on resume (the step re-reads the app instead of
        calling again). The lease keeps other workers off until we are done.
        """
        step._update_data(intent_at=fields.Datetime.now().isoformat(), **intent)
        self._schedule(policy.INTENT_LEASE)
        self.env["ir.cron"]._commit_progress()
        if not self._relock():
            raise _LockLost()

    def _relock(self):
        """Take this deployment's row lock again right after a commit, waiting up to
        two seconds: another runner may hold it for the instant it takes to see the
        lease and skip it. Giving up at once left the deployment idle for the whole
        lease (30 s) whenever runners on other threads met it there."""
        cr = self.env.cr
        try:
            with cr.savepoint(flush=False):
                cr.execute("SET LOCAL lock_timeout = '2s'")
                cr.execute("SELECT id FROM do_deployment WHERE id = %s FOR NO KEY UPDATE",
                           [self.id], log_exceptions=False)
                locked = bool(cr.fetchone())
                cr.execute("SET LOCAL lock_timeout TO DEFAULT")
                return locked
        except (pg_errors.LockNotAvailable, psycopg2.extensions.TransactionRollbackError):
            return False

    def _call_once(self, step, what, *, call, find, adopt, intent=None):
        """Commit an intent, call DigitalOcean once, adopt on a lost reply.

        For the calls that create a DigitalOcean deployment (apply the spec,
        create a deployment, create or revert a rollback). ``call()`` makes the
        call and returns what it made; ``find(app)`` tells, from the app as
        DigitalOcean shows it now, what an earlier call made (None: it never
        arrived); ``adopt(result)`` records either. ``what`` names the call in
        the step's log; ``intent`` is stored with the intent.

        When the step committed its intent and then died, or the call got no
        reliable reply (``maybe_created``: a 5xx, a timeout, a dropped
        connection), the next run reads the app and adopts what the call made
        instead of calling again. Returns what ``adopt`` returns, or the delay
        before that read.
        """
        if (step.data or {}).get("intent_at"):
            found = find(self._client().get_app(self.app_id.do_app_id))
            if found is not None:
                step._append_log(f"Resumed: {what} had reached DigitalOcean; "
                                 "not sending it again.")
                return adopt(found)
            step._append_log(f"Resumed: {what} had not reached DigitalOcean; sending it again.")
        self._commit_intent(step, **(intent or {}))
        try:
            result = call()
        except DeployError as error:
            if error.details.get("maybe_created"):
                step._append_log(f"{error.code}: {error.message} {what.capitalize()} may have "
                                 "reached DigitalOcean; the app is read again before anything "
                                 "else.")
                return policy.RETRY_DELAY
            raise
        return adopt(result)

    def _notify_clients(self):
        """Tell open forms to reload (ids and states only), on the personal channel of
        each Deployment User of the deployment's company: not the group's channel, which
        Deployment Users of every company listen to."""
        if not self:
            return
        users = self.env.ref("do_deploy.group_do_deploy_user").sudo().all_user_ids
        for deployment in self:
            users.filtered(lambda user, company=deployment.company_id: (
                company in user.company_ids))._bus_send("do_deploy/updated", {
                    "id": deployment.id, "state": deployment.state,
                    "progress": deployment.progress, "task_id": deployment.task_id.id,
                })
