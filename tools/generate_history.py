#!/usr/bin/env python3
"""Fill a do_deploy database with a realistic deployment history, fast.

    python3 tools/generate_history.py DB [--count 100000] [--days 365] [--seed 1]

Writes ``--count`` deployments (about 94 % done, 3 % failed, 2 % rolled back
with their rollback deployments, 1 % canceled) spread over the last ``--days``
days, each with the pipeline's steps and the app's step budgets (eight steps, six
for a rollback, whose ``rb_revert`` runs only when the rollback failed: one in ten
here, which then fails the deployment it rolled back) and, on the deployment, the
duration of each of its deploy steps as the pipeline records it, with PostgreSQL
COPY in a single transaction: 100,000 deployments and about 800,000 steps take
well under a minute. The apps, users and tasks it spreads them over are the
database's own; it creates four apps on a simulator account when there is
none. Nothing runs against DigitalOcean: this is history only, for
the history screens and benchmarks/bench_history.py.
"""

import argparse
import io
import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from odoo_env import odoo_env

# Typical seconds of each step in this history (the steps, their names and budgets are
# the pipeline's: models/do_deployment_step.py and the app's budgets).
TYPICAL_SECONDS = {
    "update_spec": 2.5, "apply_spec": 4.0, "create_deployment": 3.0, "monitor": 240.0,
    "health_check": 6.0, "traffic_switch": 2.0, "validate": 12.0, "update_task": 0.8,
    "rb_validate": 1.5, "rb_create": 3.0, "rb_monitor": 90.0, "rb_health_check": 5.0,
    "rb_commit": 1.5, "rb_revert": 90.0,
}
# Where failures happen, and with which SOP code (step code, error code).
FAILURES = [
    ("update_spec", "PLACEHOLDER_VALUES"), ("apply_spec", "SPEC_VALIDATION_FAILED"),
    ("apply_spec", "RATE_LIMIT_EXCEEDED"), ("create_deployment", "IMAGE_PULL_FAILURE"),
    ("monitor", "BUILD_FAILED"), ("monitor", "DEPLOY_TIMEOUT"), ("monitor", "DEPLOY_ERROR"),
]
ROLLBACK_FAILURES = [
    ("health_check", "HEALTH_CHECK_FAIL"), ("health_check", "DATABASE_CONNECTION_ERROR"),
    ("traffic_switch", "TRAFFIC_SWITCH_FAILED"), ("validate", "ENDPOINT_404"),
    ("validate", "API_ERROR"),
]
# Rollbacks that fail after pinning the app, and are reverted (rb_revert runs).
FAILED_ROLLBACK_SHARE = 0.1
FAILED_ROLLBACK_STEPS = [
    ("rb_monitor", "DEPLOY_ERROR"), ("rb_health_check", "HEALTH_CHECK_FAIL"),
    ("rb_commit", "TRAFFIC_SWITCH_FAILED"),
]
REVERT_STEP = "rb_revert"

DEPLOYMENT_COLUMNS = (
    "id", "name", "task_id", "project_id", "app_id", "company_id", "environment", "image_tag",
    "kind", "state", "progress", "requested_by_id", "queued_at", "start_date", "end_date",
    "duration", "do_deployment_id", "previous_do_deployment_id", "previous_version",
    "error_code_id", "error_message", "rollback_of_id", "rollback_id", "rollback_reason",
    "force_rebuild", "create_uid", "create_date", "write_uid", "write_date",
)
STEP_COLUMNS = (
    "deployment_id", "company_id", "app_id", "environment", "sequence", "code", "name", "state",
    "start_date", "end_date",
    "duration", "budget", "over_budget", "error_code_id", "error_message", "attempt", "data",
    "create_uid", "create_date", "write_uid", "write_date",
)


def copy_value(value):
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        value = json.dumps(value)
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


class Buffer:
    """Rows in PostgreSQL's COPY text format."""

    def __init__(self):
        self.io = io.StringIO()
        self.rows = 0

    def add(self, row):
        self.io.write("\t".join(copy_value(value) for value in row) + "\n")
        self.rows += 1

    def copy_to(self, cr, table, columns):
        self.io.seek(0)
        cr._obj.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", self.io)


def ensure_apps(env, rng):
    apps = env["do.app"].search([])
    if apps:
        return apps
    account = env["do.account"].search([], limit=1) or env["do.account"].create({
        "name": "History simulator", "backend": "simulator"})
    for name, environment in (("shop", "production"), ("shop-staging", "staging"),
                              ("api", "production"), ("api-staging", "staging")):
        apps |= env["do.app"].create({
            "name": f"{name} (history)", "account_id": account.id, "environment": environment,
            "do_app_id": f"hist-{name}-{rng.randrange(10**8):08x}"})
    return apps


def step_rows(plan, budgets, start, rng, *, failed=None, skipped=()):
    """The steps of one run of ``plan`` (DEPLOY_STEPS or ROLLBACK_STEPS) as the pipeline
    leaves them: the step ``failed`` failed, those in ``skipped`` never ran, the others
    ran one after the other. Yields ``(code, name, state, start, end, duration, budget)``."""
    clock = start
    for code, name, number in plan:
        if code in skipped:
            yield code, name, "skipped", None, None, None, budgets[number]
            continue
        typical = TYPICAL_SECONDS[code]
        if code == failed:
            state, duration = "failed", rng.uniform(0.3, 1.4) * typical
        else:
            state = "warning" if rng.random() < 0.01 else "done"
            duration = rng.lognormvariate(0, 0.35) * typical
        end = clock + timedelta(seconds=duration)
        yield code, name, state, clock, end, round(duration, 2), budgets[number]
        clock = end


def generate(env, count, days, seed):
    # The addon is importable once odoo_env has loaded the registry.
    from odoo.addons.do_deploy.models.do_deployment import STEP_DURATION_FIELDS
    from odoo.addons.do_deploy.models.do_deployment_step import (
        DEPLOY_STEPS,
        FINISHED_STEP_STATES,
        ROLLBACK_STEPS,
    )

    rng = random.Random(seed)
    cr = env.cr
    apps = ensure_apps(env, rng)
    users = env["res.users"].search([("share", "=", False)]).ids
    tasks = env["project.task"].search_read([("project_id", "!=", False)], ["project_id"],
                                            limit=500)
    error_ids = dict(env["do.error.code"].search([]).mapped(lambda e: (e.code, e.id)))
    app_rows = [(app.id, app.company_id.id, app.environment) for app in apps]
    # Each app's step budgets, as the pipeline gives its steps (the SOP's unless overridden).
    budgets = {app.id: {number: app._get_step_budget(number)
                        for _code, _name, number in DEPLOY_STEPS + ROLLBACK_STEPS}
               for app in apps}
    deploy_codes = [code for code, _name, _number in DEPLOY_STEPS]
    rollback_codes = [code for code, _name, _number in ROLLBACK_STEPS]
    names = {code: name for code, name, _number in DEPLOY_STEPS + ROLLBACK_STEPS}

    def error_message(failure):
        return f"{failure[1]} on {names[failure[0]].lower()}." if failure else None

    total = count
    cr.execute("SELECT nextval('do_deployment_id_seq')")
    first_id = cr.fetchone()[0]
    cr.execute("SELECT setval('do_deployment_id_seq', %s)", [first_id + total + 1])
    deployments, steps = Buffer(), Buffer()
    now = datetime.now().replace(microsecond=0)
    start_window = now - timedelta(days=days)
    versions = {app_id: [1, 0, 0] for app_id, _c, _e in app_rows}

    def add_steps(deployment_id, app_row, plan, start, *, user, failure=None, skipped=(),
                  data=None):
        """Write the step rows of one run (``failure``: its failed step's code and error
        code); return the end of its last step, its durations by code and its progress
        as the pipeline computes it."""
        app_id, company_id, environment = app_row
        last_end, durations, finished = start, {}, 0
        rows = list(step_rows(plan, budgets[app_id], start, rng,
                              failed=failure and failure[0], skipped=skipped))
        for sequence, (code, name, state, begin, end, duration, budget) in enumerate(rows, 1):
            failed = failure if state == "failed" else None
            steps.add((deployment_id, company_id, app_id, environment, sequence, code, name,
                       state, begin, end, duration, budget, bool(duration and duration > budget),
                       error_ids.get(failed[1]) if failed else None, error_message(failed),
                       1 if duration else 0, (data or {}).get(code), user, start, user,
                       end or start))
            last_end = end or last_end
            durations[code] = duration
            finished += state in FINISHED_STEP_STATES
        return last_end, durations, round(100.0 * finished / len(rows), 1)

    next_id = first_id
    made = 0
    # Deployments are made in time order so that ids and dates grow together, as in real life.
    gap = days * 86400 / max(count, 1)
    while made < count:
        clock = start_window + timedelta(seconds=(made + rng.random()) * gap)
        app_row = rng.choice(app_rows)
        app_id, company_id, environment = app_row
        version = versions[app_id]
        version[2] += 1
        if rng.random() < 0.08:
            version[1] += 1
            version[2] = 0
        tag = f"v{version[0]}.{version[1]}.{version[2]}"
        previous_tag = f"v{version[0]}.{version[1]}.{max(version[2] - 1, 0)}"
        task = rng.choice(tasks) if tasks and rng.random() < 0.9 else None
        user = rng.choice(users)
        roll = rng.random()
        state = ("canceled" if roll < 0.01 else "failed" if roll < 0.04
                 else "rolled_back" if roll < 0.06 and made + 1 < count else "done")
        deployment_id = next_id
        next_id += 1
        made += 1
        failure = None
        if state == "failed":
            failure = rng.choice(FAILURES)
        elif state == "rolled_back":
            failure = rng.choice(ROLLBACK_FAILURES)
        rollback_id = next_id if state == "rolled_back" else None
        rollback_failure = (rng.choice(FAILED_ROLLBACK_STEPS) if rollback_id
                            and rng.random() < FAILED_ROLLBACK_SHARE else None)

        skipped = ()
        if state == "canceled":
            skipped = deploy_codes[2:]
        elif failure:
            skipped = deploy_codes[deploy_codes.index(failure[0]) + 1:]
        step_start = clock + timedelta(seconds=rng.uniform(0.5, 5))
        end_date, durations, progress = add_steps(
            deployment_id, app_row, DEPLOY_STEPS, step_start, user=user, failure=failure,
            skipped=skipped)
        if rollback_failure:
            state = "failed"  # a failed rollback fails the deployment it rolled back
        deployments.add((
            deployment_id, f"DEP/{clock.year}/{deployment_id:06d}",
            task and task["id"], task and task["project_id"][0], app_id, company_id, environment,
            tag, "deploy", state, progress, user, clock, step_start, end_date,
            round((end_date - step_start).total_seconds(), 2), f"hist-{deployment_id:08x}",
            f"hist-{deployment_id - 1:08x}", previous_tag,
            failure and error_ids.get(failure[1]), error_message(failure), None, rollback_id,
            None, rng.random() < 0.05,
            user, clock, user, end_date,
            *(durations.get(code) for code in STEP_DURATION_FIELDS)))

        if rollback_id:
            next_id += 1
            made += 1
            rb_start = end_date + timedelta(seconds=1)
            # As the pipeline: rb_revert only runs after a failed rollback step, and then
            # follows the deployment the revert made (back on the rolled back version).
            rb_skipped, revert_data = (REVERT_STEP,), None
            if rollback_failure:
                rb_skipped = [code for code in rollback_codes[
                    rollback_codes.index(rollback_failure[0]) + 1:] if code != REVERT_STEP]
                revert_data = {REVERT_STEP: {
                    "reverted": True, "revert_deployment_id": f"hist-{rollback_id:08x}-revert",
                    "phase": "ACTIVE", "version": tag, "served_version": tag}}
            rb_end, _durations, rb_progress = add_steps(
                rollback_id, app_row, ROLLBACK_STEPS, rb_start, user=user,
                failure=rollback_failure, skipped=rb_skipped, data=revert_data)
            deployments.add((
                rollback_id, f"DEP/{clock.year}/{rollback_id:06d}",
                task and task["id"], task and task["project_id"][0], app_id, company_id,
                environment, previous_tag, "rollback", "failed" if rollback_failure else "done",
                rb_progress, user, rb_start, rb_start, rb_end,
                round((rb_end - rb_start).total_seconds(), 2), f"hist-{rollback_id:08x}",
                f"hist-{deployment_id - 1:08x}", None,
                rollback_failure and error_ids.get(rollback_failure[1]),
                error_message(rollback_failure),
                deployment_id, None, f"Automatic rollback after {failure[1]}", False,
                user, rb_start, user, rb_end, *[None] * len(STEP_DURATION_FIELDS)))

    columns = (*DEPLOYMENT_COLUMNS, *STEP_DURATION_FIELDS.values())
    deployments.copy_to(cr, "do_deployment", columns)
    steps.copy_to(cr, "do_deployment_step", STEP_COLUMNS)
    cr.execute("ANALYZE do_deployment")
    cr.execute("ANALYZE do_deployment_step")
    env.invalidate_all()
    return deployments.rows, steps.rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db-host", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    with odoo_env(args.db, args.db_host) as env:
        deployments, steps = generate(env, args.count, args.days, args.seed)
    print(f"{deployments} deployments and {steps} steps written to {args.db} "
          f"in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
