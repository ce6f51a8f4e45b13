"""Which configured channels get an event: the SOP's default, then the rules that override it.

A channel plays one SOP role (:data:`~.events.CHANNELS`: Slack #deployments,
Slack #incidents, critical e-mail, PagerDuty) or none (a channel only rules send
to). By default a channel gets what :func:`~.events.sop_channels` sends to its
role. A rule narrows or widens that for an app, an environment and an event
(each empty = any): the most specific rule that matches decides (app before
environment before event); between equally specific rules that disagree, "don't
send" wins, so a mute is never undone by accident.

KPI alerts are routed the same way under the event :data:`ALERT`: by default to
#incidents, and to the critical e-mail when the alert is (or was) critical.
"""

import dataclasses
from typing import Any

from .. import metrics
from .events import EMAIL, EVENTS, SLACK_INCIDENTS

ALERT = "kpi_alert"
ROUTED_EVENTS = (*EVENTS, ALERT)
# Alert actions that concern a critical level: raising it, escalating to it, or clearing
# an alert that was critical (the people told of it are told it is over).
_CRITICAL_ACTIONS = (metrics.RAISE_CRITICAL, metrics.ESCALATE)


@dataclasses.dataclass(frozen=True)
class Channel:
    """A configured channel: ``id`` (anything hashable) and its SOP ``role`` (None: none)."""

    id: Any
    role: str | None = None


@dataclasses.dataclass(frozen=True)
class Rule:
    """Send (``send``) or don't send ``channel``'s events for ``app``, ``environment``
    and ``event``; None matches any."""

    channel: Any
    send: bool
    app: Any = None
    environment: str | None = None
    event: str | None = None

    def __post_init__(self):
        if self.event is not None and self.event not in ROUTED_EVENTS:
            raise ValueError(f"unknown event {self.event!r}")

    def matches(self, *, app, environment, event):
        return (self.app in (None, app) and self.environment in (None, environment)
                and self.event in (None, event))

    @property
    def specificity(self):
        """App before environment before event; a mute wins a tie."""
        return (self.app is not None, self.environment is not None, self.event is not None,
                not self.send)


def alert_roles(action, previous):
    """The SOP roles a KPI alert's ``action`` goes to by default (``previous``: the alert
    state before it): #incidents always; the critical e-mail when it concerns a
    critical level."""
    roles = [SLACK_INCIDENTS]
    if action in _CRITICAL_ACTIONS or (action == metrics.CLEAR and previous == metrics.CRITICAL):
        roles.append(EMAIL)
    return tuple(roles)


def route(channels, rules, *, default_roles, app, environment, event):
    """The ids of ``channels`` that get ``event`` of ``app`` in ``environment``, in
    the order of ``channels``; ``default_roles`` are the SOP roles it goes to when no
    rule says otherwise (:func:`~.events.sop_channels` or :func:`alert_roles`)."""
    if event not in ROUTED_EVENTS:
        raise ValueError(f"unknown event {event!r}")
    chosen = []
    for channel in channels:
        matching = [rule for rule in rules if rule.channel == channel.id
                    and rule.matches(app=app, environment=environment, event=event)]
        if matching:
            send = max(matching, key=lambda rule: rule.specificity).send
        else:
            send = channel.role is not None and channel.role in default_roles
        if send:
            chosen.append(channel.id)
    return chosen
