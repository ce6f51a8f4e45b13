"""Deployment events and the SOP's routing of each to its channels."""

import pytest

from engine.notify.events import DeploymentEvent, sop_channels


def event(kind, environment="production", code=None):
    return DeploymentEvent(kind, deployment="DEP/1", app="shop", environment=environment,
                           code=code)


@pytest.mark.parametrize(("kind", "environment", "code", "channels"), [
    ("started", "production", None, ("slack_deployments",)),
    ("waiting_approval", "production", None, ("slack_deployments",)),
    ("done", "production", None, ("slack_deployments",)),
    # A failure: #incidents too; e-mail only when its code is critical.
    ("failed", "staging", "BUILD_FAILED", ("slack_deployments", "slack_incidents")),
    ("failed", "staging", "DEPLOY_ERROR", ("slack_deployments", "slack_incidents", "email")),
    ("failed", "production", None, ("slack_deployments", "slack_incidents")),
    # Production rollbacks page; a starting rollback only pages.
    ("rollback_started", "production", "HEALTH_CHECK_FAIL", ("pagerduty",)),
    ("rollback_started", "staging", "HEALTH_CHECK_FAIL", ()),
    ("rolled_back", "production", "HEALTH_CHECK_FAIL",
     ("slack_deployments", "slack_incidents", "pagerduty")),
    ("rolled_back", "staging", None, ("slack_deployments", "slack_incidents")),
    # A failed rollback is always critical.
    ("rollback_failed", "production", "TRAFFIC_SWITCH_FAILED",
     ("slack_deployments", "slack_incidents", "email", "pagerduty")),
    ("rollback_failed", "staging", None, ("slack_deployments", "slack_incidents", "email")),
])
def test_sop_routing(kind, environment, code, channels):
    assert sop_channels(event(kind, environment, code)) == channels


@pytest.mark.parametrize(("kind", "code", "severity"), [
    ("done", None, "low"),
    ("started", None, "low"),
    ("failed", None, "high"),
    ("failed", "RATE_LIMIT_EXCEEDED", "medium"),
    ("failed", "HEALTH_CHECK_FAIL", "critical"),
    ("rollback_started", None, "high"),
    ("rollback_failed", "RATE_LIMIT_EXCEEDED", "critical"),
])
def test_severity(kind, code, severity):
    assert event(kind, code=code).severity == severity


def test_unknown_events_and_codes_are_refused():
    with pytest.raises(ValueError, match="unknown event 'exploded'"):
        event("exploded")
    with pytest.raises(ValueError, match="unknown error code 'OOPS'"):
        event("failed", code="OOPS")
