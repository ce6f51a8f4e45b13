"""engine.metrics on crafted histories whose every figure is worked out by hand."""

import random
from datetime import datetime, timedelta

import pytest

from engine import metrics
from engine.metrics import Deployment

T0 = datetime(2025, 11, 3, 9, 0, 0)


def deployment(number, state="done", seconds=480.0, **values):
    """Deployment ``number`` started ``number`` hours after T0 and lasting ``seconds``."""
    started = T0 + timedelta(hours=number)
    values.setdefault("app", "shop")
    values.setdefault("environment", "production")
    return Deployment(id=number, state=state, started=started,
                      ended=started + timedelta(seconds=seconds), **values)


def history(done=0, failed=0, rolled_back=0, seconds=480.0):
    """done, then failed, then rolled-back deployments, one an hour."""
    states = ["done"] * done + ["failed"] * failed + ["rolled_back"] * rolled_back
    return [deployment(number, state, seconds) for number, state in enumerate(states)]


# --- percentiles -----------------------------------------------------------------------

@pytest.mark.parametrize(("percent", "expected"), [
    (0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (100, 50),
])
def test_percentile_is_nearest_rank(percent, expected):
    # The textbook nearest-rank example: ranks ceil(p/100 * 5).
    assert metrics.percentile([35, 20, 15, 50, 40], percent) == expected


def test_percentile_with_few_points():
    assert metrics.percentile([], 95) is None
    assert metrics.percentile([7.5], 50) == 7.5
    assert metrics.percentile([7.5], 95) == 7.5
    assert metrics.percentile([1, 2, 3, 4], 50) == 2  # lower middle, not 2.5
    assert metrics.percentile(range(1, 20), 95) == 19  # 19 values: p95 is the slowest
    assert metrics.percentile(range(1, 21), 95) == 19  # 20 values: rank 19 exactly
    assert metrics.percentile(range(1, 22), 95) == 20  # 21 values: rank ceil(19.95)


def test_percentile_is_the_smallest_value_covering_the_share():
    """percentile_disc's definition, checked by brute force on random samples."""
    rng = random.Random(13)
    for _sample in range(200):
        values = [rng.randint(0, 30) for _ in range(rng.randint(1, 40))]
        for percent in (1, 50, 90, 95, 99, 99.9):
            covering = [value for value in values
                        if sum(other <= value for other in values) * 100
                        >= percent * len(values)]
            assert metrics.percentile(values, percent) == min(covering)


def test_percentile_refuses_a_share_outside_0_to_100():
    with pytest.raises(ValueError, match="between 0 and 100"):
        metrics.percentile([1], 101)
    with pytest.raises(ValueError, match="between 0 and 100"):
        metrics.percentile([1], -1)


# --- records ---------------------------------------------------------------------------

def test_records_may_be_dicts_with_the_field_names():
    record = metrics.as_deployment({"id": 1, "state": "failed", "duration": 30})
    assert record == Deployment(id=1, state="failed", duration=30)
    assert metrics.as_deployment(record) is record


def test_a_misspelt_field_is_refused():
    with pytest.raises(TypeError, match="rolledback"):
        metrics.as_deployment({"id": 1, "rolledback": True})


def test_duration_comes_from_the_times_when_not_given():
    started = T0
    assert Deployment(started=started, ended=started + timedelta(seconds=90)).seconds == 90.0
    assert Deployment(started=started, ended=started + timedelta(seconds=90),
                      duration=100).seconds == 100.0
    assert Deployment(started=started).seconds is None
    assert Deployment(started=started).at == started


def test_health_check_counts():
    assert metrics.health_check_counts([]) == (0, 0)
    assert metrics.health_check_counts([True, True]) == (0, 0)
    assert metrics.health_check_counts([False, True, False, False]) == (3, 2)
    assert metrics.health_check_counts([False, True, False, True]) == (2, 1)


# --- KPIs ------------------------------------------------------------------------------

def test_kpis_of_a_crafted_history():
    records = history(done=47, failed=1, rolled_back=1)
    records.append(deployment(49, seconds=1200))  # a slow success: 48 done
    records += [
        deployment(50, "canceled"), deployment(51, "running"), deployment(52, "queued"),
        deployment(53, "done", kind="rollback"),  # the rollback run: no change
    ]
    figures = metrics.kpis(records)
    assert (figures.deployments, figures.succeeded, figures.failed) == (50, 48, 2)
    assert figures.rolled_back == 1
    assert figures.success_rate == 0.96
    assert figures.failure_rate == 0.04
    assert figures.rollback_rate == 0.02
    # mean of 47 x 480 s and 1200 s; p95 is rank ceil(0.95 x 48) = 46: still 480 s.
    assert figures.timed == 48
    assert figures.mean_seconds == 495.0
    assert figures.p95_seconds == 480.0
    assert figures.levels() == {"failure_rate": "warning", "deployment_time": "ok",
                                "health_check_failures": "ok", "rollback_rate": "ok"}
    # 2 % rollbacks raises no alert but misses the "<2 %" target.
    assert figures.targets() == {"success_rate": False, "deployment_time": True,
                                 "zero_downtime_share": True, "rollback_rate": False}


def test_a_failed_deployment_with_a_failed_rollback_counts_as_rolled_back():
    figures = metrics.kpis([deployment(0, "failed", rolled_back=True), deployment(1)])
    assert (figures.failed, figures.rolled_back) == (1, 1)
    assert figures.rollback_rate == 0.5


def test_kpis_of_nothing():
    figures = metrics.kpis([deployment(0, "running"), deployment(1, "canceled")])
    assert figures.deployments == 0
    assert figures.success_rate is None
    assert figures.failure_rate is None
    assert figures.rollback_rate is None
    assert figures.mean_seconds is None
    assert figures.p95_seconds is None
    assert figures.max_consecutive_health_failures is None
    assert figures.zero_downtime_share is None
    assert set(figures.levels().values()) == {None}
    assert set(figures.targets().values()) == {None}
    assert metrics.kpis([]) == figures


def test_kpis_of_a_single_deployment():
    figures = metrics.kpis([deployment(0, seconds=300)])
    assert (figures.success_rate, figures.failure_rate, figures.rollback_rate) == (1.0, 0.0, 0.0)
    assert figures.mean_seconds == figures.p95_seconds == 300.0
    assert figures.zero_downtime_share == 1.0


def test_failed_deployments_do_not_count_in_deployment_time():
    figures = metrics.kpis([deployment(0, seconds=300), deployment(1, "failed", seconds=5)])
    assert figures.mean_seconds == 300.0
    assert figures.timed == 1


def test_health_check_failures_and_downtime():
    records = [
        deployment(0, health_check_failures=1, health_check_consecutive=1),
        deployment(1, health_check_failures=2, health_check_consecutive=1),
        deployment(2, "rolled_back", health_check_failures=2, health_check_consecutive=2,
                   downtime_seconds=95.0),
        deployment(3),
    ]
    figures = metrics.kpis(records)
    assert figures.health_check_failures == 5
    assert figures.deployments_with_health_failures == 3
    assert figures.max_consecutive_health_failures == 2
    assert figures.levels()["health_check_failures"] == "critical"
    assert figures.downtime_seconds == 95.0
    assert figures.zero_downtime == 3
    assert figures.zero_downtime_share == 0.75
    assert figures.targets()["zero_downtime_share"] is False
    # Two failures apart from each other only warn.
    assert metrics.kpis(records[:2]).levels()["health_check_failures"] == "warning"


# --- thresholds ------------------------------------------------------------------------

@pytest.mark.parametrize(("metric", "value", "level"), [
    ("failure_rate", 0.0, "ok"),
    ("failure_rate", 0.02, "ok"),          # "> 2 %": the limit itself is fine
    ("failure_rate", 0.0201, "warning"),
    ("failure_rate", 0.05, "warning"),
    ("failure_rate", 0.0501, "critical"),
    ("rollback_rate", 0.02, "ok"),
    ("rollback_rate", 0.03, "warning"),
    ("rollback_rate", 0.05, "warning"),
    ("rollback_rate", 0.06, "critical"),
    ("deployment_time", 600.0, "ok"),
    ("deployment_time", 600.5, "warning"),
    ("deployment_time", 900.0, "warning"),
    ("deployment_time", 900.5, "critical"),
    ("health_check_failures", 0, "ok"),
    ("health_check_failures", 1, "warning"),   # "1": one failure is enough
    ("health_check_failures", 2, "critical"),  # "2 consecutive"
    ("health_check_failures", 3, "critical"),
    ("failure_rate", None, None),
])
def test_classification_at_and_around_each_limit(metric, value, level):
    assert metrics.classify(metric, value) == level


def test_rates_exactly_at_a_limit_from_counts():
    """1 in 50 is exactly 2 % as a float, whatever the counts: a tie, not a crossing."""
    for done, failed in ((49, 1), (98, 2), (147, 3)):
        assert metrics.kpis(history(done=done, failed=failed)).levels()["failure_rate"] == "ok"
    assert metrics.kpis(history(done=95, failed=5)).levels()["failure_rate"] == "warning"
    assert metrics.kpis(history(done=94, failed=6)).levels()["failure_rate"] == "critical"
    assert metrics.kpis(history(done=49, rolled_back=1)).levels()["rollback_rate"] == "ok"
    assert metrics.kpis(history(done=48, rolled_back=2)).levels()["rollback_rate"] == "warning"


def test_mean_deployment_time_exactly_at_ten_minutes():
    figures = metrics.kpis(history(done=3, seconds=600))
    assert figures.levels()["deployment_time"] == "ok"
    assert figures.targets()["deployment_time"] is False  # target "<10 minutes"
    assert metrics.classify("deployment_time", figures.p95_seconds) == "ok"


def test_targets_at_their_limits():
    assert metrics.meets_target("success_rate", 0.98) is True
    assert metrics.meets_target("success_rate", 0.9799) is False
    assert metrics.meets_target("rollback_rate", 0.0199) is True
    assert metrics.meets_target("zero_downtime_share", 1.0) is True
    assert metrics.meets_target("success_rate", None) is None


def test_thresholds_are_the_sops_table():
    table = {metric: (t.warning, t.critical, t.inclusive)
             for metric, t in metrics.THRESHOLDS.items()}
    assert table == {"failure_rate": (0.02, 0.05, False),
                     "deployment_time": (600.0, 900.0, False),
                     "health_check_failures": (1, 2, True),
                     "rollback_rate": (0.02, 0.05, False)}


@pytest.mark.parametrize(("unit", "value", "text"), [
    ("ratio", 0.025, "2.5 %"), ("seconds", 570, "9 min 30 s"), ("seconds", 42.4, "42 s"),
    ("count", 2, "2"), ("ratio", None, "n/a"),
])
def test_format_value(unit, value, text):
    assert metrics.format_value(unit, value) == text


# --- grouping --------------------------------------------------------------------------

def test_kpis_by_each_dimension():
    records = [
        deployment(0, app="shop", project="Web", customer="Acme"),
        deployment(1, "failed", app="shop", project="Web", customer="Acme"),
        deployment(2, app="api", environment="staging", project="Web", customer=None),
        {"id": 3, "app": "api", "environment": "staging", "state": "done", "duration": 60},
    ]
    by_app = metrics.kpis_by(records, "app")
    assert list(by_app) == ["shop", "api"]
    assert by_app["shop"].success_rate == 0.5
    assert by_app["api"].success_rate == 1.0
    assert by_app["api"].mean_seconds == 270.0  # 480 and 60
    assert {key: k.deployments for key, k in metrics.kpis_by(records, "environment").items()} \
        == {"production": 2, "staging": 2}
    assert {key: k.deployments for key, k in metrics.kpis_by(records, "project").items()} \
        == {"Web": 3, None: 1}
    assert {key: k.failed for key, k in metrics.kpis_by(records, "customer").items()} \
        == {"Acme": 1, None: 0}
    by_pair = metrics.kpis_by(records, lambda r: (r.app, r.environment))
    assert list(by_pair) == [("shop", "production"), ("api", "staging")]


def test_an_unknown_dimension_is_refused():
    with pytest.raises(ValueError, match="unknown dimension"):
        metrics.group_by([], "team")


# --- windows ---------------------------------------------------------------------------

def test_window_of_days_includes_now_and_excludes_its_start():
    now = T0 + timedelta(days=7)
    records = [
        Deployment(id=1, ended=now - timedelta(days=7)),           # exactly 7 days: out
        Deployment(id=2, ended=now - timedelta(days=7) + timedelta(seconds=1)),
        Deployment(id=3, started=now - timedelta(days=1)),         # running: at its start
        Deployment(id=4, ended=now),                               # now: in
        Deployment(id=5, ended=now + timedelta(seconds=1)),        # the future: out
        Deployment(id=6),                                          # no time at all: out
    ]
    assert [r.id for r in metrics.select_window(records, days=7, now=now)] == [2, 3, 4]
    assert metrics.select_window([], days=7, now=now) == []


def test_window_of_the_last_deployments():
    same_time = T0 + timedelta(hours=5)
    records = [
        deployment(1), deployment(2, "failed"), deployment(3, "canceled"),
        Deployment(id=9, state="done", ended=same_time),
        Deployment(id=8, state="done", ended=same_time),
        deployment(4, "running"),
    ]
    assert [r.id for r in metrics.select_window(records, last=2)] == [8, 9]
    assert [r.id for r in metrics.select_window(records, last=3)] == [2, 8, 9]
    assert [r.id for r in metrics.select_window(records, last=10)] == [1, 2, 8, 9]
    assert metrics.select_window(records, last=0) == []
    assert metrics.select_window([], last=5) == []


def test_window_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        metrics.select_window([], days=1, last=1)
    with pytest.raises(ValueError, match="exactly one"):
        metrics.select_window([])
    with pytest.raises(ValueError, match="needs now"):
        metrics.select_window([], days=1)
    with pytest.raises(ValueError, match="negative"):
        metrics.select_window([], last=-1)


# --- alerts ----------------------------------------------------------------------------

@pytest.mark.parametrize(("previous", "level", "action", "state"), [
    (None, "ok", None, "ok"),
    ("ok", "ok", None, "ok"),
    ("ok", "warning", "raise_warning", "warning"),
    ("ok", "critical", "raise_critical", "critical"),
    ("warning", "warning", None, "warning"),
    ("warning", "critical", "escalate", "critical"),
    ("warning", "ok", "clear", "ok"),
    ("critical", "critical", None, "critical"),
    ("critical", "warning", None, "critical"),
    ("critical", "ok", "clear", "ok"),
    ("warning", None, None, "warning"),
    (None, None, None, "ok"),
])
def test_alert_transitions(previous, level, action, state):
    assert metrics.decide_alert(previous, level) == (action, state)


def test_an_unknown_alert_level_is_refused():
    with pytest.raises(ValueError, match="unknown alert level"):
        metrics.decide_alert("amber", "ok")
    with pytest.raises(ValueError, match="unknown alert level"):
        metrics.decide_alert("ok", "red")


def test_a_crossing_notifies_once_and_its_clearing_once():
    """A rolling window of the last 50 deployments slides over 300 deployments, five of
    which (120-124) fail. The failure-rate alert is raised when the window holds two of
    them (4 %; one is 2 %, no crossing), escalated at three (6 %), silent while it stays
    crossed, also when it falls back to 4 %, and cleared when one is left (2 % again)."""
    states = ["failed" if 120 <= number < 125 else "done" for number in range(300)]
    records = [deployment(number, state) for number, state in enumerate(states)]
    stored = {}
    actions = []
    for count in range(1, len(records) + 1):
        window = metrics.select_window(records[:count], last=50)
        for decision in metrics.evaluate_alerts(stored, {("app", "shop"): metrics.kpis(window)}):
            stored[(decision.metric, decision.scope)] = decision.state
            if decision.action:
                actions.append((count, decision.metric, decision.action, decision.value))
    assert actions == [
        (122, "failure_rate", "raise_warning", 0.04),  # 2 of 50
        (123, "failure_rate", "escalate", 0.06),       # 3 of 50
        (174, "failure_rate", "clear", 0.02),          # only 124 left in the window
    ]


def test_evaluate_alerts_for_several_scopes():
    scopes = {
        ("app", "shop"): metrics.kpis(history(done=10, rolled_back=1)),
        ("environment", "staging"): metrics.kpis([]),
    }
    decisions = metrics.evaluate_alerts({("rollback_rate", ("app", "shop")): "critical"}, scopes)
    assert len(decisions) == 2 * len(metrics.THRESHOLDS)
    by_key = {(d.metric, d.scope): d for d in decisions}
    shop = by_key[("rollback_rate", ("app", "shop"))]
    assert (shop.previous, shop.level, shop.action, shop.state) == (
        "critical", "critical", None, "critical")
    assert by_key[("failure_rate", ("app", "shop"))].action == "raise_critical"
    staging = [d for d in decisions if d.scope == ("environment", "staging")]
    assert {(d.level, d.action, d.state) for d in staging} == {(None, None, "ok")}


# --- stage benchmarks ------------------------------------------------------------------

BUDGETS = {"update_spec": 10, "monitor": 480, "health_check": 30}


def test_stage_benchmarks_of_a_crafted_history():
    records = [
        deployment(0, seconds=300, steps={"update_spec": 2, "monitor": 240}),
        deployment(1, seconds=500, steps={"update_spec": 4, "monitor": 480}),
        deployment(2, seconds=700, steps={"update_spec": 10, "monitor": 600}),
        deployment(3, "failed", seconds=20, steps={"update_spec": 12}),
        deployment(4, "done", kind="rollback", steps={"update_spec": 99}),  # not a deploy
        deployment(5, "done", steps={"traffic_switch": 3}),                  # not in the report
    ]
    rows = metrics.stage_benchmarks(records, BUDGETS, total_budget=600)
    assert [row.step for row in rows] == ["update_spec", "monitor", "health_check", "total"]
    update, monitor, health, total = rows
    # update_spec: 2, 4, 10, 12 -> p50 rank 2, p95 rank 4; 10 s is within its 10 s budget.
    assert (update.count, update.p50, update.p95) == (4, 4.0, 12.0)
    assert (update.within_budget, update.within_budget_share) == (3, 0.75)
    # monitor: 240, 480, 600 -> p50 rank 2, p95 rank 3.
    assert (monitor.count, monitor.p50, monitor.p95, monitor.within_budget) == (3, 480, 600, 2)
    assert monitor.within_budget_share == 2 / 3
    # No health check recorded: no figures, no share.
    assert (health.count, health.p50, health.p95, health.within_budget_share) == (
        0, None, None, None)
    # total: the done deployments 300, 500, 700 and 480 s (#5) against 600 s.
    assert (total.budget, total.count, total.p50, total.p95) == (600, 4, 480, 700)
    assert total.within_budget_share == 0.75


def test_stage_benchmarks_without_a_total_or_a_budget():
    rows = metrics.stage_benchmarks([deployment(0, steps={"monitor": 100})], {"monitor": None})
    assert len(rows) == 1
    assert (rows[0].p50, rows[0].within_budget, rows[0].within_budget_share) == (100, 0, None)
    assert metrics.stage_benchmarks([], {}) == []


# --- DORA ------------------------------------------------------------------------------

START = datetime(2025, 11, 10)
END = START + timedelta(days=7)


def change(at, app="shop", state="done", **values):
    """A production deployment that ended at ``at`` (a timedelta after START)."""
    values.setdefault("environment", "production")
    ended = START + at
    return Deployment(id=values.pop("id", None), app=app, state=state,
                      started=ended - timedelta(minutes=8), ended=ended, **values)


def dora_history():
    hours = timedelta(hours=1)
    return [
        # Before the period: shop's last change failed, so its first change in the
        # period is rework.
        change(-30 * hours, state="rolled_back", id=1),
        # In the period.
        change(2 * hours, id=2, task_created=START - timedelta(days=2),
               commit_time=START - timedelta(hours=10)),             # lead 12 h (commit)
        change(26 * hours, id=3, task_created=START),                # lead 26 h (task)
        change(50 * hours, id=4, state="rolled_back",
               failed_at=START + 49 * hours,
               restored_at=START + 49 * hours + timedelta(minutes=20)),  # restored in 20 min
        change(74 * hours, id=5, task_created=START + 80 * hours),   # task after end: no lead
        change(98 * hours, id=6, state="failed", rolled_back=True,
               restored_at=None),                                    # rollback failed
        change(100 * hours, id=7, state="failed"),                   # never reached production
        change(3 * hours, app="api", id=8, commit_time=START),       # lead 3 h
        change(5 * hours, app="api", id=9, state="rolled_back",
               restored_at=START + 6 * hours),                       # restored 1 h after end
        change(7 * hours, app="api", id=10, rework=False),           # after a failure, flagged
        change(9 * hours, app="api", id=11, environment="staging"),  # staging: not DORA
        change(7 * 24 * hours, id=12),                               # at the end: next period
        Deployment(id=13, kind="rollback", environment="production", app="shop",
                   state="done", ended=START + 51 * hours),          # a rollback run
    ]


def test_dora_of_a_crafted_history():
    result = metrics.dora(dora_history(), start=START, end=END)
    # Done production deployments in the period: 2, 3, 5, 8, 10.
    assert result.deployments == 5
    assert result.days == 7.0
    assert result.per_day == 5 / 7
    assert result.per_week == 5.0
    # Lead times: 12 h, 26 h, 3 h (#5 has a task created after it ended: left out).
    assert result.lead_times == 3
    assert result.lead_time_median == 12 * 3600
    assert result.lead_time_p95 == 26 * 3600
    # Changes: 2, 3, 4, 5, 6, 8, 9, 10 (7 failed before changing anything).
    assert result.changes == 8
    assert result.change_failures == 3  # 4, 6 and 9
    assert result.change_failure_rate == 3 / 8
    # Restores: #4 in 20 min from its failure, #9 in 1 h from its end; #6 never restored.
    assert result.restores == 2
    assert result.time_to_restore_median == 20 * 60
    # Rework: #2 (after #1) and #5 (after #4); #10 follows #9 but is flagged otherwise; #7
    # (after #6) never reached production.
    assert result.rework == 2
    assert result.rework_rate == 2 / 8


def test_dora_by_app():
    by_app = metrics.dora_by(dora_history(), "app", start=START, end=END)
    assert (by_app["shop"].deployments, by_app["shop"].changes) == (3, 5)
    assert (by_app["api"].deployments, by_app["api"].changes) == (2, 3)
    assert by_app["api"].change_failure_rate == 1 / 3
    assert by_app["api"].time_to_restore_median == 3600


def test_dora_of_an_empty_period():
    result = metrics.dora(dora_history(), start=END + timedelta(days=1),
                          end=END + timedelta(days=8))
    assert (result.deployments, result.changes, result.per_day) == (0, 0, 0.0)
    assert result.lead_time_median is None
    assert result.change_failure_rate is None
    assert result.time_to_restore_median is None
    assert result.rework_rate is None
    instant = metrics.dora([], start=START, end=START)
    assert (instant.per_day, instant.per_week) == (None, None)
    with pytest.raises(ValueError, match="ends before"):
        metrics.dora([], start=END, end=START)


def test_dora_grouped_matches_dora_and_dora_by():
    # Projects and customers that cut across the apps, so that a group's previous
    # change of an app is not the app's previous change (rework per group).
    history = dora_history()
    for number, record in enumerate(history):
        record.project = ("web", "mobile", None)[number % 3]
        record.customer = ("acme", "globex")[number % 2]
    dimensions = ("project", "app", "customer")
    total, by_dimension = metrics.dora_grouped(history, dimensions, start=START, end=END)
    assert total == metrics.dora(history, start=START, end=END)
    assert total.changes == 8
    for dimension in dimensions:
        expected = {key: figures for key, figures in metrics.dora_by(
            history, dimension, start=START, end=END).items()
            if figures.changes or key in by_dimension[dimension]}
        assert by_dimension[dimension] == expected, dimension
        assert list(by_dimension[dimension]) == [
            key for key in metrics.group_by(history, dimension) if key in expected]
    assert by_dimension["project"]["web"].rework != 0
