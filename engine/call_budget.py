"""A DigitalOcean token's call budget: how many API calls it may still make now.

DigitalOcean allows 250 requests a minute and 5,000 an hour per token. The
pipeline keeps each token under its own, lower budget (headroom for people and
other tools using the same token) so that polling slows down instead of meeting
a 429. Odoo keeps the counters in the database, shared by every cron thread of
every server; this module only does the arithmetic, on plain numbers.

Each window (a minute, an hour) is counted as the current fixed window plus a
share of the previous one, weighted by how much of it still overlaps the last
window's length: a close estimate of a sliding window that needs two counters,
and never lets a burst at a window's end add up with one at the next window's
start.
"""

import math
from dataclasses import dataclass, replace

DO_PER_MINUTE = 250
DO_PER_HOUR = 5000
# The defaults keep a fifth of DigitalOcean's limits free for everything else.
PER_MINUTE = 200
PER_HOUR = 4000
MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class Window:
    """One window's counters: its start (epoch seconds, a multiple of its length),
    the calls counted in it and in the window before it."""

    start: float = 0.0
    count: int = 0
    previous: int = 0

    def at(self, now, length):
        """This window as seen at ``now`` (rolled forward when ``now`` is past it)."""
        start = math.floor(now / length) * length
        if start == self.start:
            return self
        if start - self.start == length:
            return Window(start, 0, self.count)
        return Window(start, 0, 0)

    def used(self, now, length):
        """The estimate of the calls made in the last ``length`` seconds."""
        window = self.at(now, length)
        overlap = 1.0 - (now - window.start) / length
        return window.count + window.previous * overlap

    def wait(self, now, length, limit, calls=1):
        """Seconds until ``calls`` more calls fit under ``limit`` (0: they fit now)."""
        window = self.at(now, length)
        if window.count + calls > limit:
            # Nothing fits before this window ends; in the next one, this window's
            # count weighs less and less: count * (1 - t / length) + calls <= limit.
            return (window.start + length - now
                    + length * (1.0 - (limit - calls) / window.count))
        if self.used(now, length) + calls <= limit:
            return 0.0
        # count + previous * (1 - t / length) + calls <= limit, solved for t.
        elapsed = length * (1.0 - (limit - calls - window.count) / window.previous)
        return max(0.0, window.start + elapsed - now)

    def give_back(self, now, length, calls):
        """This window with ``calls`` counted in it but never made taken off again
        (a window that has rolled on since keeps them: they are past)."""
        window = self.at(now, length)
        if window.start != self.start:
            return window
        return replace(window, count=max(0, window.count - calls))


@dataclass(frozen=True)
class Budget:
    """A token's two windows, and what one more call would do to them.

    ``work`` counts, over the last minute, the calls of the deployments' own
    steps, apart from the watching (the app list, the reads that see deployments
    end) and the rollbacks: those calls can be held under a share of the minute's
    limit (``work_limit``) so that the rest is always there for the watching,
    which counts only in ``minute`` and ``hour``. Held under a share of all calls
    instead, the steps left room to the watching only by starting fewer
    deployments than the budget allowed (three a minute of sixty calls).
    """

    minute: Window = Window()
    hour: Window = Window()
    work: Window = Window()

    def wait(self, now, per_minute=PER_MINUTE, per_hour=PER_HOUR, calls=1, work_limit=None):
        """Seconds until ``calls`` more calls fit in both windows, and in the work
        window under ``work_limit`` when given (0: now)."""
        waits = [self.minute.wait(now, MINUTE, per_minute, calls),
                 self.hour.wait(now, HOUR, per_hour, calls)]
        if work_limit is not None:
            waits.append(self.work.wait(now, MINUTE, work_limit, calls))
        return max(waits)

    def take(self, now, per_minute=PER_MINUTE, per_hour=PER_HOUR, calls=1, work_limit=None):
        """``(budget, wait)``: the budget with ``calls`` more calls counted and 0 when
        they fit now, else the budget unchanged and the seconds until they fit.
        ``calls`` is capped (:func:`capped_calls`). With ``work_limit``, they are
        steps' calls: counted in the work window too, and held under that limit."""
        calls = capped_calls(calls, min(per_minute, work_limit or per_minute), per_hour)
        wait = self.wait(now, per_minute, per_hour, calls, work_limit)
        if wait > 0:
            return self, wait
        minute = self.minute.at(now, MINUTE)
        hour = self.hour.at(now, HOUR)
        work = self.work
        if work_limit is not None:
            work = self.work.at(now, MINUTE)
            work = replace(work, count=work.count + calls)
        return Budget(replace(minute, count=minute.count + calls),
                      replace(hour, count=hour.count + calls), work), 0.0

    def give_back(self, now, calls, work=False):
        """The budget with ``calls`` taken but not made counted off again (from the
        work window too when they were steps' calls)."""
        return Budget(self.minute.give_back(now, MINUTE, calls),
                      self.hour.give_back(now, HOUR, calls),
                      self.work.give_back(now, MINUTE, calls) if work else self.work)

    def used(self, now):
        """``(calls in the last minute, calls in the last hour)``, estimated."""
        return self.minute.used(now, MINUTE), self.hour.used(now, HOUR)


def capped_calls(calls, per_minute=PER_MINUTE, per_hour=PER_HOUR):
    """How many of ``calls`` can be taken at once: at least one, at most a limit
    (a budget of 2 a minute could never fit 4 at once)."""
    return max(1, min(int(calls), per_minute, per_hour))


def limits(per_minute, per_hour):
    """The budget's limits from settings: positive integers; anything else falls back
    to the default. Values above DigitalOcean's own limits only make sense against
    the simulator (whose limits can be raised), and are allowed for it."""
    def clean(value, default):
        try:
            value = int(value)
        except (TypeError, ValueError):
            return default
        return value if value > 0 else default
    return clean(per_minute, PER_MINUTE), clean(per_hour, PER_HOUR)


def poll_interval(watchers_calls_per_tick, per_minute=PER_MINUTE, per_hour=PER_HOUR,
                  minimum=5.0, share=0.5):
    """The shortest tick (seconds) at which ``watchers_calls_per_tick`` calls per tick
    use at most ``share`` of the budget (the rest is left for the steps' own calls):
    the polling slows down as more pages of apps must be read."""
    calls = max(int(watchers_calls_per_tick), 0)
    if not calls:
        return minimum
    by_minute = MINUTE * calls / (per_minute * share)
    by_hour = HOUR * calls / (per_hour * share)
    return max(minimum, by_minute, by_hour)
