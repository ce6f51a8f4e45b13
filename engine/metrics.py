"""Deployment KPIs, alert thresholds, the stage benchmark report and DORA metrics.

SOP-DEPLOY-001's "Monitoring and Alerts" targets and thresholds are defined once
here, as data (:data:`TARGETS`, :data:`THRESHOLDS`), and every function is pure:
it reads plain records (:class:`Deployment`, or dicts with the same keys) and
never a database or a clock, so the Odoo side (dashboard, alert cron, PDF
report) and the tests compute the same numbers from the same definitions.

Which records count:

* a **finished deployment** is a record of kind ``deploy`` in state ``done``,
  ``failed`` or ``rolled_back``. Canceled, draft, queued and running ones are
  in no rate: nobody let them reach an outcome.
* rollback runs (kind ``rollback``) are the remedy, not a change, so they are
  in no rate either; their outcome reaches the metrics through the deployment
  they revert (``rolled_back``, ``restored_at``).
* a record counts at its end (``ended``), or at its start while it has none;
  windows and DORA periods select on that time.

Percentiles are nearest-rank (:func:`percentile`): always an observed value, and
the same as PostgreSQL's ``percentile_disc``, so a figure computed in SQL for a
large history matches the one computed here.
"""

import bisect
import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

DEPLOY = "deploy"
ROLLBACK = "rollback"
SUCCEEDED_STATE = "done"
FINISHED_STATES = ("done", "failed", "rolled_back")
ROLLED_BACK_STATE = "rolled_back"
PRODUCTION = "production"
# The dimensions the dashboard groups by: the app, its environment, the task's project and
# the task's partner (the customer).
DIMENSIONS = ("app", "environment", "project", "customer")

OK = "ok"
WARNING = "warning"
CRITICAL = "critical"
LEVELS = (OK, WARNING, CRITICAL)
RAISE_WARNING = "raise_warning"
RAISE_CRITICAL = "raise_critical"
ESCALATE = "escalate"
CLEAR = "clear"
# The key of the whole-deployment row of the stage benchmark report.
TOTAL_STEP = "total"
# SOP-DEPLOY-001, "Performance Benchmarks": expected seconds of each step, by SOP step
# number (the pipeline's step budgets, an app may override them), and of a whole
# deployment ("Total <10min").
SOP_STEP_BUDGETS = {1: 10, 2: 30, 3: 15, 4: 480, 5: 30, 6: 10, 7: 60, 8: 10}
SOP_TOTAL_BUDGET = 600.0
SECONDS_PER_DAY = 86400.0


@dataclasses.dataclass(frozen=True)
class Threshold:
    """One row of the SOP's "Alert Thresholds" table.

    ``inclusive``: the value crosses a limit when it reaches it (the SOP's counts:
    "1" failure, "2 consecutive"); otherwise only when it exceeds it (">2 %").
    ``unit`` is ``ratio`` (0..1), ``seconds`` or ``count``.
    """

    metric: str
    label: str
    unit: str
    warning: float
    critical: float
    inclusive: bool
    action: str

    def crosses(self, value, limit):
        return value >= limit if self.inclusive else value > limit


@dataclasses.dataclass(frozen=True)
class Target:
    """One of the SOP's "Success Metrics": met when the value is at least (``at_least``)
    or strictly below ``limit``."""

    metric: str
    label: str
    unit: str
    limit: float
    at_least: bool

    def met_by(self, value):
        return value >= self.limit if self.at_least else value < self.limit


# SOP-DEPLOY-001, "Alert Thresholds". Deployment time is the mean of a window's successful
# deployments; health check failures are the longest run of failed checks of one deployment.
THRESHOLDS = {threshold.metric: threshold for threshold in (
    Threshold("failure_rate", "Deployment failure rate", "ratio", 0.02, 0.05, False,
              "Review deployment logs"),
    Threshold("deployment_time", "Deployment time", "seconds", 600.0, 900.0, False,
              "Optimize build process"),
    Threshold("health_check_failures", "Health check failures", "count", 1, 2, True,
              "Automatic rollback"),
    Threshold("rollback_rate", "Rollback rate", "ratio", 0.02, 0.05, False,
              "Review deployment quality"),
)}
# SOP-DEPLOY-001, "Success Metrics". At exactly 10 minutes or 2 % a target is missed
# although no alert is raised: the SOP writes "<" for targets and ">" for alerts.
TARGETS = {target.metric: target for target in (
    Target("success_rate", "Deployment success rate", "ratio", 0.98, True),
    Target("deployment_time", "Average deployment time", "seconds", 600.0, False),
    Target("zero_downtime_share", "Zero downtime", "ratio", 1.0, True),
    Target("rollback_rate", "Rollback rate", "ratio", 0.02, False),
)}


@dataclasses.dataclass(slots=True)
class Deployment:
    """One deployment (or rollback run) as the metrics read it.

    ``app``, ``environment``, ``project`` and ``customer`` are whatever identifies
    them for grouping (ids or names). ``duration`` is seconds from start to end;
    when None it is taken from ``started`` and ``ended``. ``steps`` maps a step
    code (``update_spec``, ``monitor``, ...) to the seconds that step took.

    ``rolled_back``: a rollback was run for this deployment, automatic or manual,
    whatever its outcome (state ``rolled_back`` implies it). ``failed_at``: when
    the failure that led to the rollback was seen (the failed step's end; for a
    manual rollback of a done deployment, its end); ``restored_at``: when the
    rollback that restored service ended, None when none did.

    ``health_check_failures``: failed checks of step 5 in all;
    ``health_check_consecutive``: the longest run of them (see
    :func:`health_check_counts`). ``downtime_seconds``: how long the app served
    errors because of this deployment (0 with blue-green unless a live version
    failed its checks). ``rework``: this deployment was made to fix a failed change;
    None lets :func:`dora` decide from the app's previous change.

    Not frozen: a frozen dataclass takes three times as long to build, which shows
    on a history of 100,000 deployments.
    """

    id: Any = None
    app: Any = None
    environment: Any = None
    project: Any = None
    customer: Any = None
    kind: str = DEPLOY
    state: str = SUCCEEDED_STATE
    started: datetime | None = None
    ended: datetime | None = None
    duration: float | None = None
    steps: Mapping[str, float] = dataclasses.field(default_factory=dict)
    task_created: datetime | None = None
    commit_time: datetime | None = None
    rolled_back: bool = False
    failed_at: datetime | None = None
    restored_at: datetime | None = None
    health_check_failures: int = 0
    health_check_consecutive: int = 0
    downtime_seconds: float = 0.0
    rework: bool | None = None

    @property
    def at(self):
        """The time this record counts at: its end, or its start while it has none."""
        return self.ended or self.started

    @property
    def seconds(self):
        """Seconds from start to end, None when unknown."""
        if self.duration is not None:
            return float(self.duration)
        if self.started and self.ended:
            return (self.ended - self.started).total_seconds()
        return None

    @property
    def finished(self):
        return self.kind == DEPLOY and self.state in FINISHED_STATES

    @property
    def succeeded(self):
        return self.kind == DEPLOY and self.state == SUCCEEDED_STATE

    @property
    def was_rolled_back(self):
        return self.kind == DEPLOY and (self.rolled_back or self.state == ROLLED_BACK_STATE)

    @property
    def reached_production(self):
        """A production deployment that changed what the app serves: done, or rolled back."""
        return (self.kind == DEPLOY and self.environment == PRODUCTION
                and (self.succeeded or self.was_rolled_back))


_FIELDS = frozenset(field.name for field in dataclasses.fields(Deployment))


def as_deployment(record):
    """A :class:`Deployment` from a Deployment or a mapping of its field names.

    An unknown key is a TypeError: a misspelt ``rolledback`` would otherwise
    silently count as False.
    """
    if isinstance(record, Deployment):
        return record
    if not _FIELDS.issuperset(record):
        unknown = ", ".join(sorted(set(record) - _FIELDS))
        raise TypeError(f"unknown deployment fields: {unknown}")
    return Deployment(**record)


def as_deployments(records):
    return [as_deployment(record) for record in records]


def health_check_counts(results):
    """(failed checks, longest run of consecutive failed checks) of step 5's checks in
    order, each true when that check passed; e.g. [False, True, False, False] -> (3, 2)."""
    failures = run = longest = 0
    for passed in results:
        if passed:
            run = 0
            continue
        failures += 1
        run += 1
        longest = max(longest, run)
    return failures, longest


def percentile(values, percent):
    """The nearest-rank ``percent`` percentile of ``values``; None when there are none.

    The smallest value with at least ``percent`` % of the values at or below it:
    the value of rank ceil(percent/100 * n) (at least 1) in ascending order. It is
    always one of the values (no interpolation), equals PostgreSQL's
    ``percentile_disc(percent / 100)``, and is the maximum whenever n is small:
    p95 of 19 values or fewer is the slowest, p50 of an even count is the lower
    middle value (p50 of 1, 2, 3, 4 is 2).
    """
    return _sorted_percentile(sorted(values), percent)


def _sorted_percentile(ordered, percent):
    if not 0 <= percent <= 100:
        raise ValueError(f"percentile {percent} is not between 0 and 100")
    if not ordered:
        return None
    rank = math.ceil(Fraction(str(percent)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


def _mean(values):
    return sum(values) / len(values) if values else None


def _ratio(part, whole):
    return part / whole if whole else None


def classify(metric, value):
    """``ok``, ``warning`` or ``critical`` for ``value`` of an alert ``metric`` (a key
    of :data:`THRESHOLDS`); None for no value (no deployment to judge)."""
    threshold = THRESHOLDS[metric]
    if value is None:
        return None
    if threshold.crosses(value, threshold.critical):
        return CRITICAL
    if threshold.crosses(value, threshold.warning):
        return WARNING
    return OK


def meets_target(metric, value):
    """Whether ``value`` meets the SOP's success target ``metric`` (a key of
    :data:`TARGETS`); None for no value."""
    return None if value is None else TARGETS[metric].met_by(value)


def format_value(unit, value):
    """A value for people: ``ratio`` as "2.5 %", ``seconds`` as "9 min 30 s", ``count``
    as "2"; "n/a" for None."""
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "seconds":
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    return f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Kpis:
    """The SOP's success metrics of a set of deployments.

    Over finished deployments (see the module docstring):

    * ``success_rate`` = done / finished; ``failure_rate`` = (failed + rolled back)
      / finished, so the two add up to 1.
    * ``rollback_rate`` = deployments a rollback was run for / finished.
    * ``mean_seconds`` and ``p95_seconds``: start-to-end time of the *done* ones
      (the time it takes to ship a change; a failure is counted by the failure
      rate, and one that fails fast would flatter the mean).
    * ``health_check_failures``: failed step-5 checks in all;
      ``max_consecutive_health_failures``: the longest run within one deployment
      (the SOP's "1" warns, "2 consecutive" is critical);
      ``deployments_with_health_failures``: deployments with at least one.
    * ``zero_downtime_share`` = deployments with no downtime / finished;
      ``downtime_seconds``: their downtime in all.

    Rates, times and the health-check figure are None when nothing finished.

    :func:`kpis` computes it from records; over a large history the same fields
    may come from SQL aggregates instead (counts, ``avg``, ``percentile_disc(0.95)``,
    ``max``), and :meth:`levels`, :meth:`targets` and :func:`evaluate_alerts` judge
    it the same way.
    """

    deployments: int = 0
    succeeded: int = 0
    failed: int = 0
    rolled_back: int = 0
    timed: int = 0
    mean_seconds: float | None = None
    p95_seconds: float | None = None
    health_check_failures: int = 0
    max_consecutive_health_failures: int | None = None
    deployments_with_health_failures: int = 0
    zero_downtime: int = 0
    downtime_seconds: float = 0.0

    @property
    def success_rate(self):
        return _ratio(self.succeeded, self.deployments)

    @property
    def failure_rate(self):
        return _ratio(self.failed, self.deployments)

    @property
    def rollback_rate(self):
        return _ratio(self.rolled_back, self.deployments)

    @property
    def zero_downtime_share(self):
        return _ratio(self.zero_downtime, self.deployments)

    def value(self, metric):
        """The value of an alert metric (a key of :data:`THRESHOLDS`) or a target
        (a key of :data:`TARGETS`)."""
        return {
            "failure_rate": self.failure_rate,
            "deployment_time": self.mean_seconds,
            "health_check_failures": self.max_consecutive_health_failures,
            "rollback_rate": self.rollback_rate,
            "success_rate": self.success_rate,
            "zero_downtime_share": self.zero_downtime_share,
        }[metric]

    def levels(self):
        """Each alert metric's level: {metric: ok / warning / critical / None}. Colour the
        p95 with ``classify("deployment_time", kpis.p95_seconds)``."""
        return {metric: classify(metric, self.value(metric)) for metric in THRESHOLDS}

    def targets(self):
        """Each success target: {metric: met (bool) / None}."""
        return {metric: meets_target(metric, self.value(metric)) for metric in TARGETS}


def kpis(records):
    """The :class:`Kpis` of ``records`` (Deployments or dicts), in one pass."""
    deployments = succeeded = failed = rolled_back = 0
    health_failures = with_health_failures = zero_downtime = 0
    longest = None
    downtime = 0.0
    durations = []
    for record in map(as_deployment, records):
        if not record.finished:
            continue
        deployments += 1
        if record.succeeded:
            succeeded += 1
            seconds = record.seconds
            if seconds is not None:
                durations.append(seconds)
        else:
            failed += 1
        rolled_back += record.was_rolled_back
        health_failures += record.health_check_failures
        with_health_failures += record.health_check_failures > 0
        longest = max(longest or 0, record.health_check_consecutive)
        downtime += record.downtime_seconds
        zero_downtime += not record.downtime_seconds
    durations.sort()
    return Kpis(
        deployments=deployments, succeeded=succeeded, failed=failed, rolled_back=rolled_back,
        timed=len(durations), mean_seconds=_mean(durations),
        p95_seconds=_sorted_percentile(durations, 95),
        health_check_failures=health_failures, max_consecutive_health_failures=longest,
        deployments_with_health_failures=with_health_failures, zero_downtime=zero_downtime,
        downtime_seconds=downtime,
    )


def _key_function(dimension):
    if callable(dimension):
        return dimension
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; use one of {', '.join(DIMENSIONS)}")
    return lambda record: getattr(record, dimension)


def group_by(records, dimension):
    """{key: [Deployment, ...]} by one of :data:`DIMENSIONS` or a function of a Deployment;
    keys in order of first appearance (None: the records without one)."""
    key_of = _key_function(dimension)
    groups = {}
    for record in map(as_deployment, records):
        groups.setdefault(key_of(record), []).append(record)
    return groups


def kpis_by(records, dimension):
    """{key: Kpis} per group of :func:`group_by`."""
    return {key: kpis(group) for key, group in group_by(records, dimension).items()}


def select_window(records, *, days=None, last=None, now=None):
    """The records of a rolling window, oldest first: exactly one of

    * ``days``: every record counted (see :attr:`Deployment.at`) in the ``days``
      days up to ``now``, i.e. at > now - days and at <= now (``now`` required:
      nothing here reads a clock);
    * ``last``: the ``last`` most recent finished deployments (ties on time broken
      by id), the population of every rate; all of them when there are fewer.
    """
    if (days is None) == (last is None):
        raise ValueError("give exactly one of days and last")
    records = [record for record in as_deployments(records) if record.at is not None]
    records.sort(key=_chronological)
    if days is not None:
        if now is None:
            raise ValueError("a window of days needs now")
        since = now - timedelta(days=days)
        return [record for record in records if since < record.at <= now]
    if last < 0:
        raise ValueError("last must not be negative")
    finished = [record for record in records if record.finished]
    return finished[-last:] if last else []


def _chronological(record):
    """Oldest first; records at the same time in order of id (ids of one type)."""
    return record.at, record.id is not None, record.id


@dataclasses.dataclass(frozen=True)
class AlertDecision:
    """What to do about one alert metric of one scope after an evaluation.

    ``level`` is this evaluation's level (None: no deployment to judge);
    ``state`` the alert state to store for next time: the highest level reached
    since the metric crossed, until it clears. ``action`` is None, or one of
    ``raise_warning``, ``raise_critical``, ``escalate`` (warning to critical) and
    ``clear``: notify exactly when it is not None.
    """

    metric: str
    scope: Any
    value: float | None
    level: str | None
    previous: str
    state: str
    action: str | None


def decide_alert(previous, level):
    """(action, state) for an alert whose stored state is ``previous`` (None: never
    evaluated, as ``ok``) and whose new level is ``level``.

    Notify once when the metric crosses (``raise_warning`` / ``raise_critical``),
    once more if a warning turns critical (``escalate``), and once when it is back
    to ok (``clear``); nothing while it stays crossed, including critical falling
    back to warning (the state keeps ``critical`` until it clears, so a metric
    hovering at the critical limit does not notify on every evaluation). No level
    (an empty window) changes nothing.
    """
    previous = previous or OK
    if previous not in LEVELS or (level is not None and level not in LEVELS):
        raise ValueError(f"unknown alert level {previous!r} or {level!r}")
    if level is None:
        return None, previous
    if previous == OK:
        action = {OK: None, WARNING: RAISE_WARNING, CRITICAL: RAISE_CRITICAL}[level]
        return action, level
    if level == OK:
        return CLEAR, OK
    if previous == WARNING and level == CRITICAL:
        return ESCALATE, CRITICAL
    return None, previous


def evaluate_alerts(previous_states, kpis_by_scope):
    """An :class:`AlertDecision` for every alert metric of every scope.

    ``kpis_by_scope`` maps a scope (anything hashable the caller stores, e.g.
    ``("app", 7)``) to the :class:`Kpis` of its window; ``previous_states`` maps
    ``(metric, scope)`` to the stored state (missing: ``ok``). Store each
    decision's ``state`` and notify for those with an ``action``.
    """
    decisions = []
    for scope, figures in kpis_by_scope.items():
        for metric in THRESHOLDS:
            value = figures.value(metric)
            level = classify(metric, value)
            previous = previous_states.get((metric, scope)) or OK
            action, state = decide_alert(previous, level)
            decisions.append(AlertDecision(metric, scope, value, level, previous, state, action))
    return decisions


@dataclasses.dataclass(frozen=True)
class StageBenchmark:
    """One row of the SOP's "Performance Benchmarks" table, from history.

    ``count`` durations of the step; ``p50`` and ``p95`` nearest-rank
    percentiles of them; ``within_budget`` how many took at most ``budget``
    seconds (the pipeline marks a step over budget only above it).
    """

    step: str
    budget: float | None
    count: int
    p50: float | None
    p95: float | None
    within_budget: int

    @property
    def within_budget_share(self):
        return _ratio(self.within_budget, self.count) if self.budget is not None else None


def stage_benchmarks(records, budgets, *, total_budget=None):
    """The stage benchmark report: one :class:`StageBenchmark` per step of ``budgets``.

    ``budgets`` maps each step code to its budget in seconds, in report order.
    The budgets are :data:`SOP_STEP_BUDGETS` by SOP step number (mapped to step
    codes through ``DEPLOY_STEPS`` of models/do_deployment_step.py), or one app's
    own budgets for that app's report.
    Every duration a deployment (kind deploy, any outcome) recorded for a step
    counts. With ``total_budget``, a last row ``total``: the start-to-end time of
    the done deployments against it (the SOP's "Total <10min").
    """
    durations = {step: [] for step in budgets}
    columns = list(durations.items())
    totals = []
    for record in map(as_deployment, records):
        if record.kind != DEPLOY:
            continue
        recorded = record.steps
        for step, values in columns:
            seconds = recorded.get(step)
            if seconds is not None:
                values.append(seconds)
        if record.state == SUCCEEDED_STATE:
            seconds = record.seconds
            if seconds is not None:
                totals.append(seconds)
    rows = [_benchmark(step, budget, durations[step]) for step, budget in budgets.items()]
    if total_budget is not None:
        rows.append(_benchmark(TOTAL_STEP, total_budget, totals))
    return rows


def _benchmark(step, budget, values):
    values.sort()
    within = bisect.bisect_right(values, budget) if budget is not None else 0
    return StageBenchmark(step, budget, len(values), _sorted_percentile(values, 50),
                          _sorted_percentile(values, 95), within)


@dataclasses.dataclass(frozen=True)
class Dora:
    """DORA's four keys and rework rate for production, over ``[start, end)``.

    * **deployment frequency**: ``deployments`` = done production deployments
      counted in the period; ``per_day`` = deployments / the period's days,
      ``per_week`` = 7 x per_day.
    * **lead time for changes**: for each of those, its end minus the commit time
      when known, else the task's creation; ``lead_time_median`` and
      ``lead_time_p95`` in seconds over ``lead_times`` deployments that have one
      (nearest rank; a start after the end is left out as bad data).
    * **change failure rate** = ``change_failures`` / ``changes``: of the
      production deployments that changed what the app serves (done, or rolled
      back), those that had to be rolled back. A deployment that failed before
      the app changed is no change to production.
    * **time to restore**: for each change failure whose rollback restored
      service, ``restored_at`` minus ``failed_at`` (its end when no failed_at);
      ``time_to_restore_median`` over ``restores``.
    * **rework rate** = ``rework`` / ``changes``: changes made to fix a failed
      change: flagged ``rework`` by the caller, or, when the flag is None, the
      next change of the same app after a change failure.
    """

    start: datetime
    end: datetime
    deployments: int = 0
    lead_times: int = 0
    lead_time_median: float | None = None
    lead_time_p95: float | None = None
    changes: int = 0
    change_failures: int = 0
    restores: int = 0
    time_to_restore_median: float | None = None
    rework: int = 0

    @property
    def days(self):
        return (self.end - self.start).total_seconds() / SECONDS_PER_DAY

    @property
    def per_day(self):
        return self.deployments / self.days if self.days > 0 else None

    @property
    def per_week(self):
        per_day = self.per_day
        return None if per_day is None else per_day * 7

    @property
    def change_failure_rate(self):
        return _ratio(self.change_failures, self.changes)

    @property
    def rework_rate(self):
        return _ratio(self.rework, self.changes)


def dora(records, *, start, end):
    """The :class:`Dora` metrics of the production deployments counted in [start, end).

    Pass the records before ``start`` too (at least each app's last change before
    it): the rework of a change depends on the app's previous change, which may
    lie before the period.
    """
    return dora_grouped(records, (), start=start, end=end)[0]


def dora_grouped(records, dimensions, *, start, end):
    """(the :class:`Dora` of all ``records``, {dimension: {key: Dora}}) in one pass.

    The same figures as :func:`dora` and :func:`dora_by` of each dimension, but the
    records are converted, filtered and sorted once instead of once per grouping and
    per group; only keys with at least one change (in the period or before) are there.
    """
    if end < start:
        raise ValueError("the period ends before it starts")
    changes = [record for record in as_deployments(records)
               if record.reached_production and record.at is not None]
    keyed = [(dimension, _key_function(dimension)) for dimension in dimensions]
    tallies = {dimension: {} for dimension in dimensions}
    for record in changes:  # keys in order of first appearance, as group_by has them
        for dimension, key_of in keyed:
            groups = tallies[dimension]
            key = key_of(record)
            if key not in groups:
                groups[key] = _DoraTally()
    total = _DoraTally()
    changes.sort(key=_chronological)
    for record in changes:
        failed = record.was_rolled_back
        in_period = start <= record.at < end
        total.add(record, failed, in_period)
        for dimension, key_of in keyed:
            tallies[dimension][key_of(record)].add(record, failed, in_period)
    return total.result(start, end), {
        dimension: {key: tally.result(start, end) for key, tally in groups.items()}
        for dimension, groups in tallies.items()}


class _DoraTally:
    """The running counts of one group's :class:`Dora`, fed its changes oldest first."""

    __slots__ = ("change_failures", "counted", "deployments", "lead_times",
                 "previous_failed", "restore_times", "rework")

    def __init__(self):
        self.counted = self.deployments = self.change_failures = self.rework = 0
        self.lead_times, self.restore_times = [], []
        self.previous_failed = {}

    def add(self, record, failed, in_period):
        after_failure = self.previous_failed.get(record.app, False)
        self.previous_failed[record.app] = failed
        if not in_period:
            return
        self.counted += 1
        self.rework += after_failure if record.rework is None else record.rework
        if failed:
            self.change_failures += 1
            restore = _seconds_between(record.failed_at or record.ended, record.restored_at)
            if restore is not None:
                self.restore_times.append(restore)
        else:
            self.deployments += 1
            lead = _seconds_between(record.commit_time or record.task_created, record.ended)
            if lead is not None:
                self.lead_times.append(lead)

    def result(self, start, end):
        lead_times, restore_times = sorted(self.lead_times), sorted(self.restore_times)
        return Dora(
            start=start, end=end, deployments=self.deployments, lead_times=len(lead_times),
            lead_time_median=_sorted_percentile(lead_times, 50),
            lead_time_p95=_sorted_percentile(lead_times, 95), changes=self.counted,
            change_failures=self.change_failures, restores=len(restore_times),
            time_to_restore_median=_sorted_percentile(restore_times, 50),
            rework=self.rework,
        )


def _seconds_between(since, until):
    if since is None or until is None or until < since:
        return None
    return (until - since).total_seconds()


def dora_by(records, dimension, *, start, end):
    """{key: Dora} per group of :func:`group_by` (``project``, ``app``, ``customer``)."""
    return {key: dora(group, start=start, end=end)
            for key, group in group_by(records, dimension).items()}

