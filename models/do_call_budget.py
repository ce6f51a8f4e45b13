"""The token-wide DigitalOcean call budget, kept in the database.

Every cron thread of every Odoo server sharing the database counts its API
calls in one row per token, in a transaction of its own that commits at once:
the count is shared the moment it is taken, and a rolled-back step action does
not give back calls that DigitalOcean did count. That transaction is READ
COMMITTED, not Odoo's REPEATABLE READ: a count that waited for another's row
lock must go on from the count that one committed, where REPEATABLE READ makes
PostgreSQL refuse it with a serialization failure (a crashed step action, its
deployment idle until its retry). The arithmetic is :mod:`engine.call_budget`.
"""

import hashlib
import threading
import time
from contextlib import contextmanager

from odoo import api, models
from odoo.modules import module

from ..engine import call_budget
from ..engine.errors import DeployError

PER_MINUTE_PARAM = "do_deploy.calls_per_minute"
PER_HOUR_PARAM = "do_deploy.calls_per_hour"

# The calls this thread's current step action reserved, per token key: its requests
# take from them before the shared row (:meth:`DoCallBudget._reserved`).
_reservations = threading.local()


def token_key(token):
    """The row of a token: a hash, so that the table never holds the token."""
    return hashlib.sha256(("do_deploy:" + (token or "")).encode()).hexdigest()[:40]


class DoCallBudget(models.AbstractModel):
    _name = "do.call.budget"
    _description = "DigitalOcean call budget per token"

    def init(self):
        self.env.cr.execute("""
            CREATE TABLE IF NOT EXISTS do_call_budget (
                token_key varchar(40) PRIMARY KEY,
                minute_start double precision NOT NULL DEFAULT 0,
                minute_count integer NOT NULL DEFAULT 0,
                minute_previous integer NOT NULL DEFAULT 0,
                hour_start double precision NOT NULL DEFAULT 0,
                hour_count integer NOT NULL DEFAULT 0,
                hour_previous integer NOT NULL DEFAULT 0,
                refused integer NOT NULL DEFAULT 0,
                watch_due double precision NOT NULL DEFAULT 0,
                work_start double precision NOT NULL DEFAULT 0,
                work_count integer NOT NULL DEFAULT 0,
                work_previous integer NOT NULL DEFAULT 0
            )
        """)
        # The columns added since the table was first created, on an upgrade.
        self.env.cr.execute("""
            ALTER TABLE do_call_budget
                ADD COLUMN IF NOT EXISTS watch_due double precision NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS work_start double precision NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS work_count integer NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS work_previous integer NOT NULL DEFAULT 0
        """)

    @api.model
    def _limits(self):
        """Calls a minute and an hour each token may make (system parameters
        ``do_deploy.calls_per_minute`` and ``do_deploy.calls_per_hour``; by default
        200 and 4,000, a fifth under DigitalOcean's 250 and 5,000)."""
        params = self.env["ir.config_parameter"].sudo()
        return call_budget.limits(params.get_param(PER_MINUTE_PARAM),
                                  params.get_param(PER_HOUR_PARAM))

    @staticmethod
    def _read_committed(cr):
        """Make the transaction just begun on ``cr`` READ COMMITTED (see the module)."""
        cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    @api.model
    def _take(self, key, per_minute, per_hour, *, now=None, cr=None, calls=1, work_limit=None):
        """Count ``calls`` calls of token ``key`` in a transaction of its own (``cr``,
        at the start of a transaction the caller commits, when given); return 0 when
        they may be made now, else the seconds until they may (none is counted).
        With ``work_limit`` they are steps' calls (:class:`engine.call_budget.Budget`).

        Under Odoo's tests the count goes through the test's own cursor instead:
        their transaction is never committed, so a second connection would wait
        on the row lock that transaction holds until the test ends.
        """
        now = time.time() if now is None else now
        if cr is not None:
            self._read_committed(cr)
            return self._take_on(cr, key, per_minute, per_hour, now=now, calls=calls,
                                 work_limit=work_limit)
        with self._own_cursor() as own_cr:
            return self._take_on(own_cr, key, per_minute, per_hour, now=now, calls=calls,
                                 work_limit=work_limit)

    @contextmanager
    def _own_cursor(self):
        """A READ COMMITTED transaction of its own, committed on leaving; under Odoo's
        tests a savepoint of the test's cursor instead (see :meth:`_take`)."""
        if module.current_test:
            with self.env.cr.savepoint(flush=False):
                yield self.env.cr
            return
        with self.env.registry.cursor() as cr:
            self._read_committed(cr)
            yield cr

    @api.model
    def _take_on(self, cr, key, per_minute, per_hour, *, now, calls, work_limit):
        cr.execute("INSERT INTO do_call_budget (token_key) VALUES (%s) "
                   "ON CONFLICT (token_key) DO NOTHING", [key])
        budget, wait = self._load(cr, key).take(now, per_minute, per_hour, calls, work_limit)
        if wait:
            cr.execute("UPDATE do_call_budget SET refused = refused + 1 "
                       "WHERE token_key = %s", [key])
        else:
            self._store(cr, key, budget)
        return wait

    @api.model
    def _load(self, cr, key):
        """Token ``key``'s budget, its row locked until ``cr`` commits (None: no row)."""
        cr.execute("""
            SELECT minute_start, minute_count, minute_previous,
                   hour_start, hour_count, hour_previous,
                   work_start, work_count, work_previous
              FROM do_call_budget WHERE token_key = %s FOR UPDATE
        """, [key])
        row = cr.fetchone()
        if not row:
            return None
        return call_budget.Budget(call_budget.Window(*row[:3]), call_budget.Window(*row[3:6]),
                                  call_budget.Window(*row[6:]))

    @api.model
    def _store(self, cr, key, budget):
        cr.execute("""
            UPDATE do_call_budget
               SET minute_start = %s, minute_count = %s, minute_previous = %s,
                   hour_start = %s, hour_count = %s, hour_previous = %s,
                   work_start = %s, work_count = %s, work_previous = %s
             WHERE token_key = %s
        """, [budget.minute.start, budget.minute.count, budget.minute.previous,
              budget.hour.start, budget.hour.count, budget.hour.previous,
              budget.work.start, budget.work.count, budget.work.previous, key])

    @api.model
    def _give_back(self, key, calls, now=None, work=False):
        """Count off ``calls`` calls of token ``key`` that were taken but not made
        (steps' calls when ``work``)."""
        now = time.time() if now is None else now
        with self._own_cursor() as cr:
            budget = self._load(cr, key)
            if budget:
                self._store(cr, key, budget.give_back(now, calls, work))

    @api.model
    @contextmanager
    def _reserved(self, token, calls, share=1.0):
        """Take the ``calls`` calls one step action makes from ``token``'s budget at
        once, before the action. Yields 0 when they were taken (the action's requests
        use them first, then take on their own), else the seconds until they fit,
        with nothing taken: the action is then not run, rather than spend part of
        its calls and be refused the rest. Calls left unused are given back.
        A ``share`` under 1 makes them steps' calls, held under that share of the
        minute's limit (:class:`engine.call_budget.Budget`)."""
        if not calls:
            yield 0.0
            return
        key = token_key(token)
        per_minute, per_hour = self._limits()
        work_limit = max(1, int(per_minute * share)) if share < 1 else None
        calls = call_budget.capped_calls(calls, work_limit or per_minute, per_hour)
        wait = self._take(key, per_minute, per_hour, calls=calls, work_limit=work_limit)
        if wait:
            yield wait
            return
        held = _reservations.__dict__.setdefault("calls", {})
        held[key] = calls
        try:
            yield 0.0
        except BaseException:
            # A crashed action keeps what it took: it may have made the calls.
            held.pop(key, None)
            raise
        if left := held.pop(key, 0):
            self._give_back(key, left, work=work_limit is not None)

    @api.model
    def _guard(self, token):
        """The ``before_request`` hook of a token's client: each API request takes
        one call from the budget, or is refused with RATE_LIMIT_EXCEEDED (retryable,
        with the wait as ``retry_after``) so the step polls again later instead of
        sleeping on a cron thread or meeting DigitalOcean's 429."""
        key = token_key(token)
        per_minute, per_hour = self._limits()

        def before_request(operation):
            held = getattr(_reservations, "calls", {})
            if held.get(key):
                held[key] -= 1
                return
            wait = self._take(key, per_minute, per_hour)
            if wait:
                raise DeployError(
                    "RATE_LIMIT_EXCEEDED",
                    f"This DigitalOcean token's call budget ({per_minute} a minute, "
                    f"{per_hour} an hour) is spent for now; {operation} waits "
                    f"{wait:.0f} s.",
                    details={"operation": operation, "retry_after": round(wait, 1),
                             "budget": True},
                    retryable=True)
        return before_request

    @api.model
    def _claim_watch(self, token, interval, now=None):
        """Claim the token's next app-list tick: True for the one runner, of all
        threads and servers, that gets it; the tick after falls ``interval`` s later."""
        now = time.time() if now is None else now
        key = token_key(token)
        query = """
            INSERT INTO do_call_budget (token_key, watch_due) VALUES (%s, %s)
            ON CONFLICT (token_key) DO UPDATE SET watch_due = EXCLUDED.watch_due
             WHERE do_call_budget.watch_due <= %s
            RETURNING 1
        """
        with self._own_cursor() as cr:
            cr.execute(query, [key, now + interval, now])
            return bool(cr.fetchone())

    @api.model
    def _watch_due(self, token):
        """When the token's next app-list tick is due (epoch seconds; 0: now)."""
        self.env.cr.execute("SELECT watch_due FROM do_call_budget WHERE token_key = %s",
                            [token_key(token)])
        row = self.env.cr.fetchone()
        return row[0] if row else 0.0
