#!/usr/bin/env python3
"""Fill a do_deploy database with a realistic deployment history, fast.

    python3 tools/generate_history.py DB [--count 100000] [--days 365] [--seed 1]

Writes ``--count`` deployments (about 94 % done, 3 % failed, 2 % rolled back
with their rollback deployments, 1 % canceled) spread over the last ``--days``
days, each with its eight steps (five for a rollback) and, on the deployment,
the duration of each of its deploy steps as the pipeline records it, with PostgreSQL COPY in
a single transaction: 100,000 deployments and about 810,000 steps take well
under a minute. The apps, users and tasks it spreads them over are the
database's own; it creates four apps on a simulator account when there is
none. Nothing runs against DigitalOcean: this is history only, for
the history screens and benchmarks/bench_history.py.
"""

import argparse
import io
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from odoo_env import odoo_env

DEPLOY_STEPS = [
    # code, name, budget (SOP seconds), typical duration (seconds)
    ("update_spec", "Update app spec", 10, 2.5),
    ("apply_spec", "Apply app spec", 30, 4.0),
    ("create_deployment", "Create deployment", 15, 3.0),
    ("monitor", "Monitor deployment", 480, 240.0),
    ("health_check", "Health check", 30, 6.0),
    ("traffic_switch", "Traffic switch", 10, 2.0),
    ("validate", "Post-deployment validation", 60, 12.0),
    ("update_task", "Update task", 10, 0.8),
]
ROLLBACK_STEPS = [
    ("rb_validate", "Validate rollback", 15, 1.5),
    ("rb_create", "Roll back", 15, 3.0),
    ("rb_monitor", "Wait for rollback", 480, 90.0),
    ("rb_health_check", "Rollback health check", 30, 5.0),
    ("rb_commit", "Commit rollback", 10, 1.5),
]
# Where failures happen, and with which SOP code (step index, code).
FAILURES = [
    (0, "PLACEHOLDER_VALUES"), (1, "SPEC_VALIDATION_FAILED"), (1, "RATE_LIMIT_EXCEEDED"),
    (2, "IMAGE_PULL_FAILURE"), (3, "BUILD_FAILED"), (3, "DEPLOY_TIMEOUT"), (3, "DEPLOY_ERROR"),
]
ROLLBACK_FAILURES = [
    (4, "HEALTH_CHECK_FAIL"), (4, "DATABASE_CONNECTION_ERROR"), (5, "TRAFFIC_SWITCH_FAILED"),
    (6, "ENDPOINT_404"), (6, "API_ERROR"),
]

DEPLOYMENT_COLUMNS = (
    "id", "name", "task_id", "project_id", "app_id", "company_id", "environment", "image_tag",
    "kind", "state", "progress", "requested_by_id", "queued_at", "start_date", "end_date",
    "duration", "do_deployment_id", "previous_do_deployment_id", "previous_version",
    "error_code_id", "error_message", "rollback_of_id", "rollback_id", "rollback_reason",
    "force_rebuild", "create_uid", "create_date", "write_uid", "write_date",
    # each deploy step's duration, as the pipeline copies it onto the deployment
    *(f"duration_{code}" for code, _name, _budget, _typical in DEPLOY_STEPS),
)
STEP_COLUMNS = (
    "deployment_id", "company_id", "app_id", "environment", "sequence", "code", "name", "state",
    "start_date", "end_date",
    "duration", "budget", "over_budget", "error_code_id", "error_message", "attempt",
    "create_uid", "create_date", "write_uid", "write_date",
)


def copy_value(value):
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
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


def generate(env, count, days, seed):
    rng = random.Random(seed)
    cr = env.cr
    apps = ensure_apps(env, rng)
    users = env["res.users"].search([("share", "=", False)]).ids
    tasks = env["project.task"].search_read([("project_id", "!=", False)], ["project_id"],
                                            limit=500)
    error_ids = dict(env["do.error.code"].search([]).mapped(lambda e: (e.code, e.id)))
    app_rows = [(app.id, app.company_id.id, app.environment) for app in apps]

    total = count
    cr.execute("SELECT nextval('do_deployment_id_seq')")
    first_id = cr.fetchone()[0]
    cr.execute("SELECT setval('do_deployment_id_seq', %s)", [first_id + total + 1])
    deployments, steps = Buffer(), Buffer()
    now = datetime.now().replace(microsecond=0)
    start_window = now - timedelta(days=days)
    versions = {app_id: [1, 0, 0] for app_id, _c, _e in app_rows}

    next_id = first_id
    made = 0
    # Deployments are made in time order so that ids and dates grow together, as in real life.
    gap = days * 86400 / max(count, 1)
    while made < count:
        clock = start_window + timedelta(seconds=(made + rng.random()) * gap)
        app_id, company_id, environment = rng.choice(app_rows)
        version = versions[app_id]
        version[2] += 1
        if rng.random() < 0.08:
            version[1] += 1
            version[2] = 0
        tag = f"v{version[0]}.{version[1]}.{version[2]}"
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

        step_start = clock + timedelta(seconds=rng.uniform(0.5, 5))
        progress = 100.0
        error_code_id = error_message = None
        last_end = step_start
        step_durations = []
        for index, (code, name, budget, typical) in enumerate(DEPLOY_STEPS):
            if state == "canceled":
                step_state, duration = ("done", typical) if index < 2 else ("skipped", None)
            elif failure and index > failure[0]:
                step_state, duration = "skipped", None
            elif failure and index == failure[0]:
                step_state, duration = "failed", rng.uniform(0.3, 1.4) * typical
                error_code_id = error_ids.get(failure[1])
                error_message = f"{failure[1]} on {name.lower()}."
                progress = round(100.0 * index / len(DEPLOY_STEPS), 1)
            else:
                step_state = "warning" if rng.random() < 0.01 else "done"
                duration = rng.lognormvariate(0, 0.35) * typical
            start = last_end if duration is not None else None
            end = start + timedelta(seconds=duration) if start else None
            last_end = end or last_end
            step_durations.append(round(duration, 2) if duration else None)
            steps.add((deployment_id, company_id, app_id, environment, index + 1, code, name,
                       step_state, start, end,
                       step_durations[-1], budget,
                       bool(duration and duration > budget),
                       error_code_id if step_state == "failed" else None,
                       error_message if step_state == "failed" else None,
                       1 if duration else 0, user, clock, user, end or clock))
        if state == "canceled":
            progress = 25.0
        end_date = last_end
        deployments.add((
            deployment_id, f"DEP/{clock.year}/{deployment_id:06d}",
            task and task["id"], task and task["project_id"][0], app_id, company_id, environment,
            tag, "deploy", state, progress, user, clock, step_start, end_date,
            round((end_date - step_start).total_seconds(), 2), f"hist-{deployment_id:08x}",
            f"hist-{deployment_id - 1:08x}", f"v{version[0]}.{version[1]}.{max(version[2] - 1, 0)}",
            error_code_id, error_message, None, rollback_id, None, rng.random() < 0.05,
            user, clock, user, end_date, *step_durations))

        if rollback_id:
            next_id += 1
            made += 1
            rb_start = end_date + timedelta(seconds=1)
            last_end = rb_start
            for index, (code, name, budget, typical) in enumerate(ROLLBACK_STEPS):
                duration = rng.lognormvariate(0, 0.3) * typical
                start, end = last_end, last_end + timedelta(seconds=duration)
                last_end = end
                steps.add((rollback_id, company_id, app_id, environment, index + 1, code, name,
                           "done", start, end,
                           round(duration, 2), budget, duration > budget, None, None, 1, user,
                           rb_start, user, end))
            deployments.add((
                rollback_id, f"DEP/{clock.year}/{rollback_id:06d}",
                task and task["id"], task and task["project_id"][0], app_id, company_id,
                environment, f"v{version[0]}.{version[1]}.{max(version[2] - 1, 0)}", "rollback",
                "done", 100.0, user, rb_start, rb_start, last_end,
                round((last_end - rb_start).total_seconds(), 2), f"hist-{rollback_id:08x}",
                f"hist-{deployment_id - 1:08x}", None, None, None, deployment_id, None,
                f"Automatic rollback after {failure[1]}", False, user, rb_start, user, last_end,
                *[None] * len(DEPLOY_STEPS)))

    deployments.copy_to(cr, "do_deployment", DEPLOYMENT_COLUMNS)
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
