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
import time

from odoo import api, models
from odoo.modules import module

from ..engine import call_budget
from ..engine.errors import DeployError

PER_MINUTE_PARAM = "do_deploy.calls_per_minute"
PER_HOUR_PARAM = "do_deploy.calls_per_hour"


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
                watch_due double precision NOT NULL DEFAULT 0
            )
        """)
        self.env.cr.execute("ALTER TABLE do_call_budget "
                            "ADD COLUMN IF NOT EXISTS watch_due double precision "
                            "NOT NULL DEFAULT 0")

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
    def _take(self, key, per_minute, per_hour, now=None, cr=None):
        """Count one call of token ``key`` in a transaction of its own (``cr``, at the
        start of a transaction the caller commits, when given); return 0 when it may
        be made now, else the seconds until it may (the call is not counted).

        Under Odoo's tests the count goes through the test's own cursor instead:
        their transaction is never committed, so a second connection would wait
        on the row lock that transaction holds until the test ends.
        """
        now = time.time() if now is None else now
        if cr is not None:
            self._read_committed(cr)
            return self._take_on(cr, key, per_minute, per_hour, now)
        if module.current_test:
            with self.env.cr.savepoint(flush=False):
                return self._take_on(self.env.cr, key, per_minute, per_hour, now)
        with self.env.registry.cursor() as own_cr:
            self._read_committed(own_cr)
            return self._take_on(own_cr, key, per_minute, per_hour, now)

    @api.model
    def _take_on(self, cr, key, per_minute, per_hour, now):
        cr.execute("INSERT INTO do_call_budget (token_key) VALUES (%s) "
                   "ON CONFLICT (token_key) DO NOTHING", [key])
        cr.execute("""
            SELECT minute_start, minute_count, minute_previous,
                   hour_start, hour_count, hour_previous
              FROM do_call_budget WHERE token_key = %s FOR UPDATE
        """, [key])
        row = cr.fetchone()
        budget = call_budget.Budget(call_budget.Window(*row[:3]),
                                    call_budget.Window(*row[3:]))
        budget, wait = budget.take(now, per_minute, per_hour)
        if wait:
            cr.execute("UPDATE do_call_budget SET refused = refused + 1 "
                       "WHERE token_key = %s", [key])
        else:
            cr.execute("""
                UPDATE do_call_budget
                   SET minute_start = %s, minute_count = %s, minute_previous = %s,
                       hour_start = %s, hour_count = %s, hour_previous = %s
                 WHERE token_key = %s
            """, [budget.minute.start, budget.minute.count, budget.minute.previous,
                  budget.hour.start, budget.hour.count, budget.hour.previous, key])
        return wait

    @api.model
    def _guard(self, token):
        """The ``before_request`` hook of a token's client: each API request takes
        one call from the budget, or is refused with RATE_LIMIT_EXCEEDED (retryable,
        with the wait as ``retry_after``) so the step polls again later instead of
        sleeping on a cron thread or meeting DigitalOcean's 429."""
        key = token_key(token)
        per_minute, per_hour = self._limits()

        def before_request(operation):
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
        args = [key, now + interval, now]
        if module.current_test:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(query, args)
                return bool(self.env.cr.fetchone())
        with self.env.registry.cursor() as cr:
            self._read_committed(cr)
            cr.execute(query, args)
            return bool(cr.fetchone())

    @api.model
    def _watch_due(self, token):
        """When the token's next app-list tick is due (epoch seconds; 0: now)."""
        self.env.cr.execute("SELECT watch_due FROM do_call_budget WHERE token_key = %s",
                            [token_key(token)])
        row = self.env.cr.fetchone()
        return row[0] if row else 0.0
