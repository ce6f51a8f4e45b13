"""A deployment event as plain data, and where SOP-DEPLOY-001 sends each one.

SOP "Notification Channels": Slack #deployments for all deploys, #incidents for
failures, e-mail for critical failures only, PagerDuty for production rollbacks.
:func:`sop_channels` is that sentence as a function: the default the Odoo side
offers before an app, environment or event is configured otherwise.
"""

import dataclasses
from datetime import datetime

from ..error_catalogue import ERROR_CODES

STARTED = "started"
WAITING_APPROVAL = "waiting_approval"
DONE = "done"
FAILED = "failed"
ROLLBACK_STARTED = "rollback_started"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"
EVENTS = (STARTED, WAITING_APPROVAL, DONE, FAILED, ROLLBACK_STARTED, ROLLED_BACK,
          ROLLBACK_FAILED)
# A channel's test message, asked for by a person: no deployment, never routed.
TEST = "test"
# Events of a rollback: they are about the deployment being reverted.
ROLLBACK_EVENTS = (ROLLBACK_STARTED, ROLLED_BACK, ROLLBACK_FAILED)
# "Failures" for #incidents. A rollback that starts is announced by the failure that
# caused it (or, for a manual one, by its end), so it only pages.
INCIDENT_EVENTS = (FAILED, ROLLED_BACK, ROLLBACK_FAILED)

SLACK_DEPLOYMENTS = "slack_deployments"
SLACK_INCIDENTS = "slack_incidents"
EMAIL = "email"
PAGERDUTY = "pagerduty"
CHANNELS = (SLACK_DEPLOYMENTS, SLACK_INCIDENTS, EMAIL, PAGERDUTY)

PRODUCTION = "production"
CRITICAL = "critical"
# The SOP severity of an event whose error code gives none: a failure stops the
# deployment (high); a rollback that fails leaves the app in doubt (critical).
DEFAULT_SEVERITY = {FAILED: "high", ROLLBACK_STARTED: "high", ROLLED_BACK: "high",
                    ROLLBACK_FAILED: CRITICAL}
INFO_SEVERITY = "low"


@dataclasses.dataclass(frozen=True)
class DeploymentEvent:
    """Something that happened to a deployment, with what a message shows of it.

    ``deployment`` is the deployment's reference (its name in Odoo); for the
    rollback events it is the deployment being reverted, and ``rollback`` the
    rollback run's. ``requested_by`` is who asked for it; ``duration`` the seconds
    it has taken so far; ``code`` an SOP error code and ``message`` its plain
    sentence (already redacted by the caller; redacted again on the way out);
    ``link`` the deployment's URL in Odoo; ``app_url`` the app's public URL;
    ``occurred_at`` a naive UTC or an aware datetime.
    """

    event: str
    deployment: str
    app: str
    environment: str
    tag: str | None = None
    previous_version: str | None = None
    task: str | None = None
    requested_by: str | None = None
    duration: float | None = None
    code: str | None = None
    message: str | None = None
    link: str | None = None
    app_url: str | None = None
    rollback: str | None = None
    occurred_at: datetime | None = None

    def __post_init__(self):
        if self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}; use one of {', '.join(EVENTS)}")
        if self.code is not None and self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")

    @property
    def production(self):
        return self.environment == PRODUCTION

    @property
    def severity(self):
        """The SOP severity (low, medium, high, critical): a rollback that failed is
        critical; else the error code's, or the event's default."""
        if self.event == ROLLBACK_FAILED:
            return CRITICAL
        if self.code:
            return ERROR_CODES[self.code].severity
        return DEFAULT_SEVERITY.get(self.event, INFO_SEVERITY)


def sop_channels(event):
    """The channels SOP-DEPLOY-001 sends ``event`` to, in :data:`CHANNELS` order."""
    channels = []
    if event.event != ROLLBACK_STARTED:
        channels.append(SLACK_DEPLOYMENTS)
    if event.event in INCIDENT_EVENTS:
        channels.append(SLACK_INCIDENTS)
    if event.event in (FAILED, ROLLBACK_FAILED) and event.severity == CRITICAL:
        channels.append(EMAIL)
    if event.event in ROLLBACK_EVENTS and event.production:
        channels.append(PAGERDUTY)
    return tuple(channels)
