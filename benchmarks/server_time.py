"""The server-time benchmarks' shared half (bench_history.py, bench_insight.py): each
call timed in-process on a real database as a chosen user, median and worst of N runs
after one warm-up, against a budget."""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from odoo_env import odoo_env


def measure(env, runs, call):
    timings = []
    for run in range(runs + 1):
        env.invalidate_all()
        env.registry.clear_cache()
        started = time.perf_counter()
        call()
        elapsed = (time.perf_counter() - started) * 1000
        if run:  # the first run warms PostgreSQL's buffers and Python's imports
            timings.append(elapsed)
        env.cr.rollback()  # nothing a run created stays for the next
    return statistics.median(timings), max(timings)


def run(description, benchmarks, describe, reference_only=()):
    """Parse the command line, time every ``(label, call)`` of ``benchmarks(env)`` and
    print a table; ``describe(env)`` says what the database holds. Exit status 1 when
    a budgeted call's median is over budget."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("db")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--login", default="admin")
    parser.add_argument("--budget-ms", type=float, default=300.0)
    parser.add_argument("--db-host", default=None)
    args = parser.parse_args()

    over = []
    with odoo_env(args.db, args.db_host) as env:
        user = env["res.users"].search([("login", "=", args.login)], limit=1)
        if not user:
            sys.exit(f"no user {args.login!r} in {args.db}")
        user_env = env(user=user.id)
        print(f"{args.db}: {describe(user_env)}; as {args.login}; "
              f"median and worst of {args.runs} runs (ms of server time)")
        print(f"{'call':<48} {'median':>8} {'worst':>8}")
        for label, call in benchmarks(user_env):
            median, worst = measure(user_env, args.runs, call)
            flag = ("" if median <= args.budget_ms
                    else "  (reference, not budgeted)" if label in reference_only
                    else "  OVER BUDGET")
            print(f"{label:<48} {median:8.1f} {worst:8.1f}{flag}")
            if flag and label not in reference_only:
                over.append(label)
        env.cr.rollback()
    if over:
        print(f"{len(over)} call(s) over {args.budget_ms:.0f} ms: {', '.join(over)}")
        return 1
    print(f"every budgeted call under {args.budget_ms:.0f} ms")
    return 0
