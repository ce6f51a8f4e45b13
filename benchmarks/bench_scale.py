"""Benchmark of issue 10: deployments spread over cron threads and servers, and one
token serving many concurrent deployments. Real Odoo 19 servers sharing one
database, real PostgreSQL, the simulator in its own process.

``parallel`` (the first "Done when"): ``--apps`` deployments to as many apps, zero
build time, each app with 10 endpoint checks that answer in 200 ms, for

  (a) one server with one cron thread, (b) one server with two,
  (c) two servers with two cron threads each, sharing the database.

It prints, for each: the time until all are final, click-to-done p50/p95,
DigitalOcean API calls, duplicates (an app with more than one new DigitalOcean
deployment) and stuck deployments (not final at the timeout).

``token`` (the second): ``--apps`` concurrent deployments on one token with builds
of ``--build`` seconds, the simulator at DigitalOcean's limits (250 a minute,
5,000 an hour): calls per minute at peak, 429s received, and how long after the
simulator reached ACTIVE Odoo saw it (median and max).

Usage:
  python3 benchmarks/bench_scale.py parallel [--apps 100] [--cases a,b,c]
  python3 benchmarks/bench_scale.py token [--apps 200] [--build 390] [--per-minute 200]
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timezone

from bench_pipeline import TOKEN, Odoo, Simulator, active_time, http_json, setup_apps, start
from benchlib import percentile

from engine import call_budget  # bench_pipeline put the addon on sys.path

CASES = {"a": (1, 1), "b": (1, 2), "c": (2, 2)}  # servers, cron threads each
FINAL = ("done", "failed", "rolled_back", "canceled")
# The simulator's operations that watch deployments in flight.
WATCH_OPERATIONS = ("apps_list", "apps_get_deployment")


def odoo_time(value):
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)


def add_endpoint_checks(odoo, apps, count=10):
    odoo.call("do.app.endpoint.check", "create", vals_list=[
        {"app_id": app, "sequence": index, "path": "/web/login", "expected_status": 200}
        for app in apps for index in range(count)])


def wait_final(odoo, ids, timeout):
    began = time.monotonic()
    while True:
        rows = odoo.call("do.deployment", "read", ids=ids, fields=["state", "end_date"])
        if all(row["state"] in FINAL for row in rows) or time.monotonic() - began > timeout:
            return rows
        time.sleep(0.5)


def new_deployments(simulator, remote_id):
    """How many deployments DigitalOcean lists for the app."""
    request = urllib.request.Request(
        f"{simulator.url}/v2/apps/{remote_id}/deployments?per_page=1",
        headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["meta"]["total"]


def run_parallel_case(name, apps_count, timeout):
    servers, threads = CASES[name]
    simulator = Simulator()
    # Every endpoint of every app answers in 200 ms (the health check does not).
    http_json(f"{simulator.url}/_sim/scenarios", {"scenario": "slow-endpoints", "delay": 0.2})
    odoo = Odoo(f"do_deploy_scale_{name}_{os.getpid()}", cron_threads=threads)
    try:
        for _ in range(servers - 1):
            odoo.add_server()
        apps, tasks = setup_apps(odoo, simulator, apps_count, prefix=f"case-{name}")
        add_endpoint_checks(odoo, apps)
        remote = {row["id"]: row["do_app_id"] for row in
                  odoo.call("do.app", "read", ids=apps, fields=["do_app_id"])}
        before_deployments = {app: new_deployments(simulator, remote[app]) for app in apps}
        before_calls = simulator.requests()
        clicks = {}
        began = time.time()
        for app, task in zip(apps, tasks, strict=True):
            clicks[start(odoo, app, task)] = time.time()
        rows = wait_final(odoo, list(clicks), timeout)
        calls = simulator.requests() - before_calls
        done = [row for row in rows if row["state"] == "done"]
        stuck = [row for row in rows if row["state"] not in FINAL]
        ends = [odoo_time(row["end_date"]).timestamp() for row in rows if row["end_date"]]
        click_to_done = [odoo_time(row["end_date"]).timestamp() - clicks[row["id"]]
                         for row in done]
        duplicates = sum(1 for app in apps
                         if new_deployments(simulator, remote[app]) - before_deployments[app] > 1)
        all_done = (max(ends) - began) if ends and not stuck else None
        print(f"({name}) {servers} server(s) x {threads} cron thread(s): "
              f"all final {all_done:.1f} s after the first click" if all_done is not None
              else f"({name}) {servers} server(s) x {threads} cron thread(s): NOT all final",
              f"| done {len(done)}/{apps_count} | click-to-done p50 "
              f"{statistics.median(click_to_done):.1f} s, p95 "
              f"{percentile(click_to_done, 0.95):.1f} s | {calls} API calls | "
              f"{duplicates} duplicates | {len(stuck)} stuck", flush=True)
        return all_done
    finally:
        odoo.stop()
        simulator.stop()


def run_token(apps_count, build_seconds, per_minute, timeout=None):
    simulator = Simulator(rate_limit=250, per_hour=5000)
    odoo = Odoo(f"do_deploy_token_{os.getpid()}", cron_threads=2)
    try:
        # The simulator is at DigitalOcean's limits here: the default budget applies.
        set_budget(odoo, per_minute)
        apps, tasks = setup_apps(odoo, simulator, apps_count, build_seconds, prefix="token")
        remote = {row["id"]: row["do_app_id"] for row in
                  odoo.call("do.app", "read", ids=apps, fields=["do_app_id"])}
        samples = []  # (time, all calls, the watching's calls: app list and own reads)
        ids = [start(odoo, app, task) for app, task in zip(apps, tasks, strict=True)]
        deadline = time.monotonic() + (timeout or build_seconds + 600)
        while time.monotonic() < deadline:
            stats = http_json(f"{simulator.url}/_sim/stats")
            samples.append((time.time(), stats["requests"],
                            sum(stats["by_operation"].get(operation, 0)
                                for operation in WATCH_OPERATIONS)))
            rows = odoo.call("do.deployment", "read", ids=ids, fields=["state"])
            if all(row["state"] in FINAL for row in rows):
                break
            time.sleep(1.0)
        # Before the lags are measured: each takes a read of the simulator's deployment.
        stats = http_json(f"{simulator.url}/_sim/stats")
        peak = watch_peak = 0
        for index, (at, count, watched) in enumerate(samples):
            window = [(c, w) for t, c, w in samples[index:] if t - at <= 60.0]
            peak = max(peak, window[-1][0] - count)
            watch_peak = max(watch_peak, window[-1][1] - watched)
        # A 429 leaves its message in the step's log ("rate limit is exhausted");
        # a request the budget refused was never sent and says "call budget".
        limited = odoo.call("do.deployment.step", "search_count", domain=[
            ("deployment_id", "in", ids), ("log", "ilike", "rate limit is exhausted")])
        # Odoo saw ACTIVE when the monitor step ended (its end_date, to the second).
        monitors = odoo.call("do.deployment.step", "search_read", domain=[
            ("deployment_id", "in", ids), ("code", "=", "monitor"), ("state", "=", "done")],
            fields=["deployment_id", "end_date"])
        seen = {row["deployment_id"][0]: odoo_time(row["end_date"]).timestamp()
                for row in monitors}
        lags = []
        for deployment in ids:
            [record] = odoo.call("do.deployment", "read", ids=[deployment],
                                 fields=["do_deployment_id", "app_id"])
            if deployment in seen and record["do_deployment_id"]:
                active_at = active_time(simulator, remote[record["app_id"][0]],
                                        record["do_deployment_id"])
                lags.append(seen[deployment] - active_at)
        states = [row["state"] for row in odoo.call("do.deployment", "read", ids=ids,
                                                      fields=["state"])]
        print(f"{stats['requests']} calls in all: "
              + ", ".join(f"{operation} {count}" for operation, count
                          in sorted(stats["by_operation"].items(), key=lambda kv: -kv[1])))
        print(f"{apps_count} deployments on one token, {build_seconds} s builds: "
              f"done {states.count('done')}/{apps_count}; peak {peak} calls in a minute "
              f"over the whole run (starts and ends included; the budget holds it at "
              f"{per_minute}), {watch_peak} of them watching (app list and own reads; target "
              f"<= 60); {limited} step(s) that met a 429 (target 0); "
              f"ACTIVE seen after the simulator reached it: median "
              f"{statistics.median(lags):.1f} s, p95 {percentile(lags, 0.95):.1f} s, max "
              f"{max(lags):.1f} s, {sum(1 for lag in lags if lag > 10)} over 10 s "
              f"(target <= 10 s)" if lags else "no ACTIVE seen", flush=True)
    finally:
        odoo.stop()
        simulator.stop()


def set_budget(odoo, per_minute):
    """Replace the raised budget bench_pipeline's setup sets for a raised simulator:
    ``per_minute`` calls a minute (the default, 200, unless given) and the default
    4,000 an hour."""
    odoo.call("ir.config_parameter", "set_param", key="do_deploy.calls_per_minute",
              value=str(per_minute))
    odoo.call("ir.config_parameter", "set_param", key="do_deploy.calls_per_hour",
              value=str(call_budget.PER_HOUR))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=("parallel", "token"))
    parser.add_argument("--apps", type=int)
    parser.add_argument("--cases", default="a,b,c")
    parser.add_argument("--build", type=int, default=390)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--per-minute", type=int, default=call_budget.PER_MINUTE,
                        help="token: the budget's calls a minute (do_deploy.calls_per_minute)")
    args = parser.parse_args()
    if args.which == "parallel":
        results = {name: run_parallel_case(name, args.apps or 100, args.timeout)
                   for name in args.cases.split(",")}
        if results.get("a") and results.get("c"):
            print(f"(c) is {results['a'] / results['c']:.1f}x faster than (a) (target >= 3x)")
    else:
        run_token(args.apps or 200, args.build, args.per_minute, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
