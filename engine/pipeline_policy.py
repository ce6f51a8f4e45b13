"""The pure decisions of the deployment pipeline, apart from the Odoo model that records them.

``do.deployment`` (models/) keeps the state: steps, intents, locks, chatter. What
it decides from plain data is decided here, so it is tested without Odoo or a
database:

* which deployment of an app a call made (:func:`new_deployment`), from the
  app as ``GET /v2/apps/{id}`` returns it and the deployment ids known before;
* how long to wait before retrying a retryable error (:func:`retry_delay`), before
  the next poll of a build (:func:`monitor_poll_delay`) and before the next
  health check (:func:`health_retry`);
* when a step that makes no progress has run out of time (:func:`step_limit`,
  :func:`past_deadline`);
* how long the app's builds take, from Odoo's own history of them
  (:func:`expected_from_history`);
* how long one cron run keeps polling and when the cron runs next
  (:func:`cron_run_seconds`, :func:`run_seconds_within_limit`, :func:`cron_pause`,
  :func:`rearm_at`).
"""

import statistics
from datetime import timedelta

from .deployment import SOP_EXPECTED_SECONDS, poll_interval, spec_version

# A retryable error with no retry-after from DigitalOcean is retried after this long,
# and never sooner; a rate-limit reset further away than MAX_RETRY_DELAY is not waited for.
RETRY_DELAY = 10.0
MAX_RETRY_DELAY = 300.0
# Step 5: the next health check after a first failure; the failures that fail the step.
HEALTH_RETRY = 10.0
HEALTH_FAILURES_TO_FAIL = 2
# A step that committed an intent owns its deployment this long (crash recovery delay).
INTENT_LEASE = 30.0
# Cron run: how long one run may keep polling its in-flight deployments.
CRON_RUN_SECONDS = 50.0
# While it advances due deployments, a runner looks at the app list between two
# actions at least this often (seconds): 25 starts in a row held a tick back and
# ACTIVE was seen 13 s late.
WATCH_SLICE = 2.0
# A deployment that is due but locked by another worker is looked at again after this.
LOCKED_RETRY = 1.0
# The steps that follow a DigitalOcean deployment wait for it, whose own limit is the app's
# deploy timeout; they get this much more before the watchdog fails them.
MONITOR_STEPS = ("monitor", "rb_monitor", "rb_revert")
MONITOR_GRACE = 60
# Other steps: twice their budget, and at least a minute more than it.
MIN_STEP_GRACE = 60
# The DigitalOcean calls one action of a step makes, at the most on its usual path:
# the runner takes them from the token's budget together before the action, so that
# an action never spends part of them and is then refused the rest (200 deployments
# sharing a token each read their app again and again). A call beyond them takes
# from the budget on its own; steps not named make none.
ACTION_CALLS = {
    "update_spec": 4,        # app, registry, its tags, propose
    "apply_spec": 2,         # the app again after a lost reply, the update
    "create_deployment": 2,  # the app, the creation
    "monitor": 2,            # the app's history (first poll), the deployment
    "traffic_switch": 1,
    "rb_validate": 2,
    "rb_create": 2,
    "rb_monitor": 2,
    "rb_commit": 3,
    "rb_revert": 3,
}
# The share of the token's budget a deployment's own steps may fill, so that when the
# budget is short the calls that see deployments end or restore an app come first:
# the monitors' reads, the app list and the rollbacks are not held (they have the
# rest), the steps of deployments in flight are held under three quarters of a
# minute's limit, a deployment's first step under half (engine.call_budget.Budget's
# work window). 200 deployments starting together on a budget of 60 a minute then
# neither hold back the reads that see the others end nor the deployments started.
START_STEP = "update_spec"
START_SHARE = 0.5
STEP_SHARE = 0.75
FULL_SHARE_STEPS = (*MONITOR_STEPS, "rb_validate", "rb_create", "rb_commit")
# The app's last successful monitors whose median is the expected build time.
HISTORY_SIZE = 5

# The deployments an app shows, and the order in which a new one is looked for:
# the newest first (pending, then in progress), the live one last.
_APP_DEPLOYMENT_KEYS = ("active_deployment", "in_progress_deployment", "pending_deployment",
                        "pinned_deployment")
_NEWEST_FIRST = ("pending_deployment", "in_progress_deployment", "pinned_deployment",
                 "active_deployment")


def component_names(text):
    """The component names of a comma-separated list ("web, worker"); [] for none."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def deployment_ids_of(app):
    """Ids of every deployment the app shows (active, in progress, pending, pinned)."""
    return [
        (app.get(key) or {}).get("id")
        for key in _APP_DEPLOYMENT_KEYS
        if (app.get(key) or {}).get("id")
    ]


def new_deployment(app, known_ids, version=None, components=None, action=None):
    """The id of the deployment of ``app`` not in ``known_ids``, or None.

    With ``version``, only a deployment whose spec deploys that version on
    ``components`` (names; None: the first image component, see
    :func:`~.deployment.spec_version`) counts; a deployment shown without its
    spec is taken as it is. With ``action`` (``UPDATE_SPEC``, ``CREATE_DEPLOYMENT``),
    only a deployment that DigitalOcean says this user action caused counts; one
    shown without its cause is taken as it is.
    """
    for key in _NEWEST_FIRST:
        deployment = app.get(key) or {}
        if deployment.get("id") and deployment["id"] not in known_ids and (
                version is None or deployment.get("spec") is None
                or spec_version(deployment.get("spec"), components) == version) and (
                action is None or _caused_by(deployment, action)):
            return deployment["id"]
    return None


def _caused_by(deployment, action):
    cause = deployment.get("cause_details")
    if not cause:
        return True
    return (cause.get("digitalocean_user_action") or {}).get("name") == action


def deployment_of_update(app, known_ids):
    """The deployment an app spec update (``PUT /v2/apps/{id}``) created, from its
    answer: the ``pending_deployment``, when it is new and an update made it; None when
    the update created none (the spec did not change). Never another unknown
    deployment (a push to the registry or the console may have started one meanwhile):
    it is not ours.
    """
    pending = app.get("pending_deployment") or {}
    if not pending.get("id") or pending["id"] in known_ids:
        return None
    return pending["id"] if _caused_by(pending, "UPDATE_SPEC") else None


def budget_share(step_code):
    """The share of the token's budget ``step_code``'s action may fill: under 1, its
    calls are steps' calls (see START_SHARE)."""
    if step_code in FULL_SHARE_STEPS:
        return 1.0
    return START_SHARE if step_code == START_STEP else STEP_SHARE


def budget_turn(wait, ahead, calls, per_minute):
    """Seconds until an action refused by the token's budget tries again: when its
    ``calls`` first fit (``wait``), plus the time the ``ahead`` actions waiting
    before it take to fit theirs, at ``per_minute`` calls a minute."""
    return wait + ahead * 60.0 * max(calls, 1) / max(per_minute, 1)


def retry_delay(details, now):
    """Seconds before retrying a retryable error: DigitalOcean's ``retry_after`` or the
    rate-limit ``reset`` (epoch seconds, compared with ``now``) when it gives one, within
    [RETRY_DELAY, MAX_RETRY_DELAY] for the reset; else RETRY_DELAY."""
    details = details or {}
    delay = details.get("retry_after")
    if delay is None and details.get("reset"):
        try:
            delay = min(float(details["reset"]) - now, MAX_RETRY_DELAY)
        except (TypeError, ValueError):
            delay = None
    try:
        return max(RETRY_DELAY, float(delay or 0.0))
    except (TypeError, ValueError):
        return RETRY_DELAY


def step_limit(code, budget, deploy_timeout):
    """Seconds after which a step that made no progress is timed out.

    The monitors wait for DigitalOcean: its deploy timeout and a grace. Other
    steps: twice their budget, and at least MIN_STEP_GRACE more than it.
    """
    if code in MONITOR_STEPS:
        return (deploy_timeout or 0) + MONITOR_GRACE
    budget = budget or 0
    return max(budget * 2, budget + MIN_STEP_GRACE)


def past_deadline(elapsed, limit):
    """True once a step that started ``elapsed`` seconds ago (None: not started) is
    past its ``limit``."""
    return elapsed is not None and elapsed > limit


def monitor_poll_delay(phase, elapsed, expected, budget):
    """Seconds until the next poll of a deployment ``elapsed`` seconds into its monitor.

    ``expected`` is how long the app's deployments take (None: unknown); without
    it, the SOP's figure, but no more than the step's ``budget``.
    """
    if not expected:
        expected = min(SOP_EXPECTED_SECONDS, float(budget or SOP_EXPECTED_SECONDS))
    return poll_interval(phase, elapsed, expected)


def health_retry(consecutive_failures):
    """After a failed health check: seconds until the next check, or None when the
    failures are enough to fail the step (two in a row)."""
    if consecutive_failures >= HEALTH_FAILURES_TO_FAIL:
        return None
    return HEALTH_RETRY


def expected_from_history(seconds):
    """The expected build-and-deploy time: the median of the app's last monitors'
    ``active_after`` seconds (newest first; empty and zero values left out); None when
    there is none."""
    values = [value for value in list(seconds)[:HISTORY_SIZE] if value]
    return statistics.median(values) if values else None


def cron_run_seconds(value):
    """The configured run length (``do_deploy.cron_run_seconds``), or CRON_RUN_SECONDS
    when it is not a number; never negative."""
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return CRON_RUN_SECONDS


def run_seconds_within_limit(run_seconds, limit, runner_jobs):
    """A run's length that keeps one cron thread under Odoo's real-time limit.

    One cron thread runs every ready job in a row (``ir.cron._process_jobs``), so
    it may run all ``runner_jobs`` runs and another job at once; past ``limit``
    (``limit_time_real_cron``, else ``limit_time_real``; 0 or less: none) Odoo
    reloads a threaded server and kills a prefork cron worker. The run is
    shortened to ``limit / (runner_jobs + 1)`` when that is less than
    ``run_seconds``.
    """
    if not limit or limit <= 0:
        return run_seconds
    return min(run_seconds, float(limit) / (max(int(runner_jobs), 1) + 1))


def cron_pause(gap, processed):
    """Within a cron run: seconds to wait before the next pass, 0 for at once.

    ``gap`` is the seconds until the next deployment falls due (0 when one is due
    now) and ``processed`` how many this pass advanced. A due deployment that this
    pass did not advance is locked by another worker: look again shortly.
    """
    gap = max(gap, 0.0)
    if not gap and processed:
        return 0.0
    return gap or LOCKED_RETRY


def rearm_at(next_due, now, run_seconds):
    """When the cron should run next for a deployment due at ``next_due`` (datetimes):
    None (now) when it falls due within one run's length of ``now``, since a run
    waits for it; else one run's length before it falls due."""
    if (next_due - now).total_seconds() <= run_seconds:
        return None
    return next_due - timedelta(seconds=run_seconds)
