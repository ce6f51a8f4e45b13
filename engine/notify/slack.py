"""Slack incoming-webhook messages in Block Kit, for deployment events and KPI alerts.

A message is ``{"text": ..., "blocks": [...]}``: ``text`` is the fallback that
notifications and screen readers show, ``blocks`` the layout (section, context,
actions and divider blocks with mrkdwn text objects). Slack's limits are kept by
construction: a section text of at most 3,000 characters, ten fields of at most
2,000, a button label of 75, a URL of 3,000, at most 50 blocks. Everything that
comes from users or DigitalOcean is escaped for mrkdwn (``&``, ``<``, ``>``), so
a tag or message cannot turn into a link or a mention.

The webhook URL is the secret: :func:`send` hands it to
:func:`~.delivery.deliver`, which never shows it.
"""

import calendar
from datetime import timezone

from .. import metrics
from ..error_catalogue import ERROR_CODES
from ..errors import redact
from . import delivery
from .events import (
    DONE,
    FAILED,
    ROLLBACK_FAILED,
    ROLLBACK_STARTED,
    ROLLED_BACK,
    STARTED,
    WAITING_APPROVAL,
)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
# Slack cuts a message's text at 40,000 characters; a notification's fallback is a line.
MAX_FALLBACK_TEXT = 500
ELLIPSIS = "…"
# Names, tags and references in a message are cut at this length; a URL linked in a text
# object (where it counts twice against the limit) at MAX_LINKED_URL.
MAX_NAME = 200
MAX_LINKED_URL = 1000

# Per event: emoji and the headline that starts both the fallback text and the message.
EVENT_HEADLINES = {
    STARTED: (":rocket:", "Deployment started"),
    WAITING_APPROVAL: (":hourglass_flowing_sand:", "Waiting for approval"),
    DONE: (":white_check_mark:", "Deployed"),
    FAILED: (":x:", "Deployment failed"),
    ROLLBACK_STARTED: (":rewind:", "Rollback started"),
    ROLLED_BACK: (":leftwards_arrow_with_hook:", "Rolled back"),
    ROLLBACK_FAILED: (":rotating_light:", "Rollback failed"),
}
# Per alert action: emoji and the words before the metric's label.
ALERT_HEADLINES = {
    metrics.RAISE_WARNING: (":warning:", "Warning"),
    metrics.RAISE_CRITICAL: (":red_circle:", "Critical"),
    metrics.ESCALATE: (":red_circle:", "Now critical"),
    metrics.CLEAR: (":white_check_mark:", "Back to normal"),
}
OPEN_DEPLOYMENT = "Open deployment"
OPEN_ALERT = "Open alert"
OPEN_CHANNEL = "Open channel"
TEST_HEADLINE = (":test_tube:", "Test message")


def escape(text):
    """``text`` safe inside mrkdwn: Slack's three control characters escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text, limit):
    """``text`` escaped and cut so that it holds at most ``limit`` characters (an
    escaped character is never cut in half)."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    room = limit - len(ELLIPSIS)
    low, high = 0, room  # the longest prefix whose escaped text fits: a binary search
    while low < high:
        middle = (low + high + 1) // 2
        if len(escape(text[:middle])) <= room:
            low = middle
        else:
            high = middle - 1
    return escape(text[:low]) + ELLIPSIS


def _link(url, label):
    """A mrkdwn link; the label without the ``|`` that would end it."""
    target = url.replace(" ", "%20").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{escape(target)}|{escape(label.replace('|', '/'))}>"


def _usable_url(url, limit=MAX_URL):
    return bool(url) and url.startswith(("https://", "http://")) and len(url) <= limit


def _mrkdwn(text):
    return {"type": "mrkdwn", "text": text}


def _section(text):
    return {"type": "section", "text": _mrkdwn(text)}


def _fields(pairs):
    """A section of ``*label*\\nvalue`` fields; the values are mrkdwn already."""
    fields = [_mrkdwn(f"*{label}*\n{value}") for label, value in pairs if value][:MAX_FIELDS]
    return {"type": "section", "fields": fields} if fields else None


def _context(texts):
    elements = [_mrkdwn(text) for text in texts if text][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements} if elements else None


def _button(label, url, action_id):
    if not _usable_url(url):
        return None
    return {"type": "actions", "elements": [{
        "type": "button", "text": {"type": "plain_text", "text": label[:MAX_BUTTON_TEXT]},
        "url": url, "action_id": action_id,
    }]}


def _message(fallback, blocks):
    blocks = [block for block in blocks if block][:MAX_BLOCKS - 1]
    return {"text": _fit(fallback, MAX_FALLBACK_TEXT), "blocks": [*blocks, {"type": "divider"}]}


def _date(moment):
    """Slack's date token (shown in the reader's time zone), UTC text as its fallback."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    epoch = calendar.timegm(moment.timetuple())
    return (f"<!date^{epoch}^{{date_short_pretty}} {{time}}|"
            f"{moment.strftime('%Y-%m-%d %H:%M')} UTC>")


def deployment_message(event):
    """The Block Kit message of a :class:`~.events.DeploymentEvent`: headline, the
    fields (app, tag, task, who, duration, code), the failure, when, and a button to
    the deployment."""
    emoji, headline = EVENT_HEADLINES[event.event]
    where = f"{event.app} ({event.environment})"
    version = f" {event.tag}" if event.tag else ""
    title = (f"{emoji} *{escape(headline)}: {_fit(where, MAX_NAME)}{_fit(version, MAX_NAME)}* "
             f"· {_fit(event.deployment, MAX_NAME)}")
    fallback = f"{headline}: {where}{version} ({event.deployment})"
    if event.code:
        fallback += f" {event.code}"
    fields = _fields([
        ("App", _fit(where, MAX_NAME)),
        ("Tag", event.tag and f"`{_fit(event.tag, MAX_NAME)}`"),
        ("Previous version", event.previous_version
         and f"`{_fit(event.previous_version, MAX_NAME)}`"),
        ("Task", event.task and _fit(event.task, MAX_NAME)),
        ("By", event.requested_by and _fit(event.requested_by, MAX_NAME)),
        ("Duration", event.duration is not None
         and metrics.format_value("seconds", event.duration)),
        ("Code", event.code and f"`{event.code}` ({event.severity})"),
        ("Rollback", event.rollback and _fit(event.rollback, MAX_NAME)),
    ])
    blocks = [_section(title), fields]
    if event.code or event.message:
        blocks.append(_section(_failure_text(event)))
    blocks.append(_context([
        event.occurred_at and _date(event.occurred_at),
        _usable_url(event.app_url, MAX_LINKED_URL) and _link(event.app_url, "the app"),
    ]))
    blocks.append(_button(OPEN_DEPLOYMENT, event.link, "open_deployment"))
    return _message(fallback, blocks)


def _failure_text(event):
    """The code's description and mitigation, then the event's message on one quoted
    line, within a section's limit."""
    lines = []
    if event.code:
        entry = ERROR_CODES[event.code]
        lines.append(f"*{event.code}*: {escape(entry.description)}")
        lines.append(f"_What to do:_ {escape(entry.mitigation)}")
    if event.message:
        head = len("\n".join(lines)) + len("\n> ")
        lines.append("> " + _fit(" ".join(redact(event.message).split()),
                                 MAX_SECTION_TEXT - head))
    return "\n".join(lines)


def alert_message(decision, *, scope_label, link=None):
    """The Block Kit message of a KPI alert (:class:`~engine.metrics.AlertDecision`
    with an action): the metric, its value, the SOP's limits and action, the scope
    (``scope_label``, e.g. "app shop") and a button to the alert record."""
    if decision.action not in ALERT_HEADLINES:
        raise ValueError("this decision has nothing to notify")
    threshold = metrics.THRESHOLDS[decision.metric]
    emoji, headline = ALERT_HEADLINES[decision.action]
    value = metrics.format_value(threshold.unit, decision.value)
    comparison = "≥" if threshold.inclusive else ">"
    limits = {
        level: f"{comparison} {metrics.format_value(threshold.unit, limit)}"
        for level, limit in (("warning", threshold.warning), ("critical", threshold.critical))
    }
    fallback = f"{headline}: {threshold.label} {value} for {scope_label}"
    title = (f"{emoji} *{escape(headline)}: {escape(threshold.label)} is {escape(value)}* "
             f"for {_fit(scope_label, 500)}")
    blocks = [
        _section(title),
        _fields([("Value", escape(value)), ("Warning", escape(limits["warning"])),
                 ("Critical", escape(limits["critical"])),
                 ("SOP action", escape(threshold.action))]),
        _context([f"State: {decision.previous} → {decision.state}"]),
        _button(OPEN_ALERT, link, "open_alert"),
    ]
    return _message(fallback, blocks)


def test_message(channel, *, requested_by, link=None, occurred_at=None):
    """The message of a channel's test: clearly a test, about no deployment, saying who
    sent it and from which channel, with a button to the channel."""
    emoji, headline = TEST_HEADLINE
    fallback = f"{headline} from do_deploy: {channel} (no deployment)"
    title = f"{emoji} *{escape(headline)} from do_deploy* · {_fit(channel, MAX_NAME)}"
    blocks = [
        _section(title),
        _section(f"{_fit(requested_by, MAX_NAME)} checked that deployment notifications "
                 "reach this channel. No deployment happened; nothing needs doing."),
        _context([occurred_at and _date(occurred_at)]),
        _button(OPEN_CHANNEL, link, "open_channel"),
    ]
    return _message(fallback, blocks)


def send(webhook_url, message, **options):
    """Post ``message`` to a Slack incoming webhook once; a
    :class:`~.delivery.DeliveryResult` (Slack answers 200 ``ok``). ``options`` are
    those of :func:`~.delivery.deliver` (attempt, timeout, session, now, ...)."""
    return delivery.deliver(webhook_url, message, **options)
