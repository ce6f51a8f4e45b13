"""The SOP's default routing and the rules that override it per app, environment, event."""

import pytest

from engine import metrics
from engine.notify import events, routing
from engine.notify.routing import Channel, Rule

DEPLOYMENTS = Channel(1, events.SLACK_DEPLOYMENTS)
INCIDENTS = Channel(2, events.SLACK_INCIDENTS)
MAIL = Channel(3, events.EMAIL)
PAGER = Channel(4, events.PAGERDUTY)
EXTRA = Channel(5, None)
ALL = (DEPLOYMENTS, INCIDENTS, MAIL, PAGER, EXTRA)


def _route(event_name, rules=(), app="shop", environment="production", code=None):
    event = events.DeploymentEvent(event_name, "DEP/1", app, environment, code=code)
    return routing.route(ALL, rules, default_roles=events.sop_channels(event), app=app,
                         environment=environment, event=event_name)


def test_sop_default_routing():
    assert _route(events.DONE) == [1]
    assert _route(events.FAILED) == [1, 2]
    assert _route(events.ROLLBACK_STARTED) == [4]
    assert _route(events.ROLLED_BACK) == [1, 2, 4]
    assert _route(events.ROLLBACK_FAILED) == [1, 2, 3, 4]
    assert _route(events.ROLLED_BACK, environment="staging") == [1, 2]


def test_most_specific_rule_decides_and_mute_wins_a_tie():
    rules = [Rule(1, False, environment="staging"), Rule(1, True, app="shop"),
             Rule(5, True, event=events.DONE), Rule(2, True), Rule(2, False)]
    # The app rule beats the environment rule; channel 5 (no role) only by its rule.
    assert _route(events.DONE, rules, environment="staging") == [1, 5]
    assert _route(events.DONE, rules, app="blog", environment="staging") == [5]
    # Two rules for any event of channel 2 that disagree: the mute wins.
    assert _route(events.FAILED, rules, app="blog") == [1]


def test_alert_roles():
    assert routing.alert_roles(metrics.RAISE_WARNING, metrics.OK) == (events.SLACK_INCIDENTS,)
    assert routing.alert_roles(metrics.ESCALATE, metrics.WARNING) == (
        events.SLACK_INCIDENTS, events.EMAIL)
    assert routing.alert_roles(metrics.CLEAR, metrics.CRITICAL) == (
        events.SLACK_INCIDENTS, events.EMAIL)
    assert routing.alert_roles(metrics.CLEAR, metrics.WARNING) == (events.SLACK_INCIDENTS,)
    assert routing.route(ALL, [], default_roles=routing.alert_roles(
        metrics.RAISE_CRITICAL, metrics.OK), app=None, environment=None,
        event=routing.ALERT) == [2, 3]


def test_unknown_events_are_refused():
    with pytest.raises(ValueError):
        Rule(1, True, event="deployed")
    with pytest.raises(ValueError):
        routing.route(ALL, [], default_roles=(), app=None, environment=None, event="x")
