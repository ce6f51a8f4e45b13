"""Clocks for the simulator.

Deployment phases are computed from the clock on every read, so tests move
time forward instead of sleeping.
"""

import threading
import time


class ManualClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start=None):
        self._now = float(int(time.time()) if start is None else start)
        self._lock = threading.Lock()

    def now(self):
        return self._now

    def advance(self, seconds):
        """Move the clock forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("the clock cannot go backwards")
        with self._lock:
            self._now += float(seconds)
            return self._now


class OffsetClock:
    """Real time plus an offset, so a running server can still be fast-forwarded."""

    def __init__(self):
        self._offset = 0.0

    def now(self):
        return time.time() + self._offset

    def advance(self, seconds):
        if seconds < 0:
            raise ValueError("the clock cannot go backwards")
        self._offset += float(seconds)
        return self.now()


def rfc3339(epoch):
    """Format an epoch as DigitalOcean does: second precision, ``Z`` suffix."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


ZERO_TIME = "0001-01-01T00:00:00Z"
