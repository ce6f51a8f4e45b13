"""Freeze windows: the periods in which deployments wait or are refused.

Two kinds, each scoped to a company, an environment, an app, or any mix of them:

* :class:`WeeklyWindow`: recurring every week in wall-clock time of a time zone,
  e.g. Friday 16:00 - Monday 08:00 Europe/Paris. It follows the zone's daylight
  saving time: that weekend's freeze lasts 63 hours in March and 65 in October.
* :class:`OneOffWindow`: one period, e.g. a month-end close.

Each window says what a deployment meets in it: it waits until the freeze ends
(:data:`WAIT`) or is refused (:data:`REFUSE`). An :class:`EmergencyOverride`
(who, why, when) lets one deployment through anyway; the gate flags it.

Wall times that DST makes odd are read so that a freeze covers every instant
whose local wall time lies in its window and stays one unbroken period: a wall
time that happens twice (the hour repeated in autumn) starts a freeze at its
first occurrence and ends one at its second; a wall time that never happens (the
hour skipped in spring) is the moment the clocks jump. The only instants frozen
beyond the wall clock's reading are thus in a repeated hour.

Instants are ``datetime`` objects; a naive one is UTC (as Odoo stores them) and
every instant returned is aware, in UTC. Time zones are IANA names read with
:mod:`zoneinfo` (the system's zone database, or the ``tzdata`` package where
the system has none).
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WAIT, REFUSE = "wait", "refuse"
MODES = (WAIT, REFUSE)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# How far ahead "next unfrozen" looks before it says there is none (freezes back to back).
HORIZON = timedelta(days=366)
_INSTANT = timedelta(microseconds=1)
_WEEK = timedelta(days=7)


def as_utc(moment):
    """An aware UTC datetime; a naive one is taken as UTC (Odoo's convention)."""
    if not isinstance(moment, datetime):
        raise TypeError(f"an instant is a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def check_signed(record, unsigned):
    """A decision a person gave (``by``, ``at``): ValueError ``unsigned`` unless ``by`` names
    someone; ``at`` is set to UTC in place (for frozen dataclasses, from ``__post_init__``)."""
    if not isinstance(record.by, str) or not record.by.strip():
        raise ValueError(unsigned)
    object.__setattr__(record, "at", as_utc(record.at))


def zone(name):
    """The ZoneInfo of an IANA name; ValueError naming it when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris; "
                         "install the tzdata package where the system has no zone database)"
                         ) from None


def _wall(instant, tz):
    return instant.astimezone(tz).replace(tzinfo=None)


def instant_of(wall, tz, *, latest):
    """The UTC instant of a naive wall time in ``tz``, read as the module doc says.

    ``latest`` chooses the second of two instants (a freeze's end) over the
    first (a freeze's start) in a repeated hour.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
    exists = [moment for moment in {first, second} if _wall(moment, tz) == wall]
    if exists:
        return max(exists) if latest else min(exists)
    # Skipped by the clocks: the moment they jumped, the first instant whose wall time
    # is past ``wall``. It lies between the two readings; halve (whole seconds, as zone
    # transitions are) until it is found.
    before, after = int(min(first, second).timestamp()), int(max(first, second).timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if _wall(datetime.fromtimestamp(middle, timezone.utc), tz) < wall:
            before = middle
        else:
            after = middle
    return datetime.fromtimestamp(after, timezone.utc)


def time_of(value):
    """A ``time`` from a ``time``, ``"HH:MM"`` or Odoo's float hours (16.5 is 16:30)."""
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        hours, _, minutes = value.strip().partition(":")
        try:
            return time(int(hours), int(minutes or 0))
        except ValueError:
            raise ValueError(f"a time of day is HH:MM, not {value!r}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 24:
        minutes = round(value * 60)
        return time(*divmod(minutes, 60)) if minutes < 24 * 60 else time(23, 59)
    raise ValueError(f"a time of day is a time, 'HH:MM' or hours from 0 to 24, not {value!r}")


def weekday_of(value):
    """0 (Monday) to 6 (Sunday) from that number or an English day name."""
    if isinstance(value, str) and value.strip().lower() in WEEKDAYS:
        return WEEKDAYS.index(value.strip().lower())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    raise ValueError(f"a weekday is 0 (Monday) to 6 or a day name, not {value!r}")


@dataclass(frozen=True)
class Scope:
    """What a window applies to, or what a deployment is: each field set must match.

    A window with no field set applies everywhere. Keys are whatever the caller
    uses consistently (Odoo: record ids or codes as text).
    """

    company: str | None = None
    environment: str | None = None
    app: str | None = None

    def covers(self, target):
        return all(mine is None or mine == theirs for mine, theirs in (
            (self.company, target.company), (self.environment, target.environment),
            (self.app, target.app)))


@dataclass(frozen=True)
class Freeze:
    """One concrete frozen period, [start, end) in UTC, of the window ``name``."""

    name: str
    start: datetime
    end: datetime
    mode: str = WAIT

    def to_dict(self):
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "mode": self.mode}


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"a freeze window's mode is one of {', '.join(MODES)}, not {mode!r}")


@dataclass(frozen=True)
class WeeklyWindow:
    """Every week from ``start_day start_time`` to the next ``end_day end_time``, wall
    clock of ``timezone``; the two ends may be any days, at most a week apart."""

    name: str
    start_day: int | str
    start_time: time | str | float
    end_day: int | str
    end_time: time | str | float
    timezone: str = "UTC"
    scope: Scope = field(default_factory=Scope)
    mode: str = WAIT

    def __post_init__(self):
        set_field = object.__setattr__
        set_field(self, "start_day", weekday_of(self.start_day))
        set_field(self, "end_day", weekday_of(self.end_day))
        set_field(self, "start_time", time_of(self.start_time))
        set_field(self, "end_time", time_of(self.end_time))
        zone(self.timezone)
        _check_mode(self.mode)
        if (self.start_day, self.start_time) == (self.end_day, self.end_time):
            raise ValueError(f"the freeze window {self.name!r} ends when it starts")

    @property
    def span_days(self):
        """Days from the start's date to the end's date (0 to 7)."""
        days = (self.end_day - self.start_day) % 7
        return 7 if days == 0 and self.end_time < self.start_time else days

    def freezes(self, start, end):
        """The occurrences that overlap [start, end)."""
        start, end = as_utc(start), as_utc(end)
        tz = zone(self.timezone)
        first = _wall(start, tz).date() - _WEEK
        day = first + timedelta(days=(self.start_day - first.weekday()) % 7)
        last = _wall(end, tz).date()
        found = []
        while day <= last:
            begin = instant_of(datetime.combine(day, self.start_time), tz, latest=False)
            finish = instant_of(datetime.combine(day + timedelta(days=self.span_days),
                                                 self.end_time), tz, latest=True)
            if begin < end and finish > start:
                found.append(Freeze(self.name, begin, finish, self.mode))
            day += _WEEK
        return found


@dataclass(frozen=True)
class OneOffWindow:
    """One period; naive ``start`` and ``end`` are wall times of ``timezone``."""

    name: str
    start: datetime
    end: datetime
    timezone: str = "UTC"
    scope: Scope = field(default_factory=Scope)
    mode: str = WAIT

    def __post_init__(self):
        _check_mode(self.mode)
        period = self.period()
        if period.start >= period.end:
            raise ValueError(f"the freeze window {self.name!r} does not end after it starts")

    def period(self):
        tz = zone(self.timezone)

        def utc_of(moment, latest):
            if moment.tzinfo is None:
                return instant_of(moment, tz, latest=latest)
            return as_utc(moment)

        return Freeze(self.name, utc_of(self.start, False), utc_of(self.end, True), self.mode)

    def freezes(self, start, end):
        """[the period] when it overlaps [start, end), else []."""
        start, end = as_utc(start), as_utc(end)
        period = self.period()
        return [period] if period.start < end and period.end > start else []


class FreezeCalendar:
    """All freeze windows of an installation; questions are asked for one scope."""

    def __init__(self, windows=()):
        self.windows = tuple(windows)

    def freezes(self, start, end, scope):
        """Freezes of windows covering ``scope`` that overlap [start, end), by start."""
        start, end = as_utc(start), as_utc(end)
        found = [freeze for window in self.windows if window.scope.covers(scope)
                 for freeze in window.freezes(start, end)]
        return sorted(found, key=lambda freeze: (freeze.start, freeze.end, freeze.name))

    def active(self, at, scope):
        """Freezes in force at ``at``."""
        at = as_utc(at)
        return self.freezes(at, at + _INSTANT, scope)

    def is_frozen(self, at, scope):
        return bool(self.active(at, scope))

    def next_unfrozen(self, at, scope, duration=timedelta(0), horizon=HORIZON):
        """The first instant from ``at`` on that starts ``duration`` without any freeze
        (``at`` itself when it does); None when freezes fill the whole ``horizon``."""
        moment = as_utc(at)
        limit = moment + horizon
        while moment < limit:
            overlapping = self.freezes(moment, moment + max(duration, _INSTANT), scope)
            if not overlapping:
                return moment
            # Any start before the end of an overlapping freeze still meets it.
            moment = max(freeze.end for freeze in overlapping)
        return None

    def next_freeze(self, at, scope, horizon=HORIZON):
        """The next freeze that starts after ``at`` (to say "deploy before Friday 16:00")."""
        at = as_utc(at)
        later = [freeze for freeze in self.freezes(at, at + horizon, scope) if freeze.start > at]
        return later[0] if later else None


@dataclass(frozen=True)
class EmergencyOverride:
    """A manager letting one deployment through a freeze: recorded and flagged.

    ``binding`` (if set) is what it was given for (see :func:`engine.gates.binding_of`):
    a deployment whose tag or spec changed since is not covered any more.
    """

    by: str
    reason: str
    at: datetime
    binding: object = None

    def __post_init__(self):
        check_signed(self, "an emergency override names who gave it")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError("an emergency override needs a reason")

    def to_dict(self):
        return {"by": self.by, "reason": self.reason, "at": self.at.isoformat()}
