"""Benchmark of the deployment pipeline: a real Odoo 19 server with its cron
threads, real PostgreSQL and the simulator in its own process.

Reports:

1. click-to-done of one deployment against a simulator with zero build time
   (median of ``--runs``; target <= 5 s);
2. ``--apps`` deployments to as many apps started together (target: all done
   <= 60 s, none lost or stuck);
3. API calls and detection lag of one deployment whose build and deploy take
   6.5 minutes on the simulator (targets: <= 25 calls, ACTIVE seen within 10 s).
   This one takes 6.5 minutes of wall time; skip it with ``--no-long``.

Usage: python3 benchmarks/bench_pipeline.py [--runs 10] [--apps 100] [--no-long]
It needs Odoo 19 importable by this Python and PostgreSQL on 127.0.0.1; it
creates and drops its own database.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import ROOT, free_port

sys.path.insert(0, str(ROOT))

# One RFC 3339 reader for DigitalOcean's times (Python 3.10 reads no "Z").
from engine.deployment import parse_time

TOKEN = "dop_v1_simulator"
API_KEY_SCRIPT = """
from datetime import timedelta
from odoo import fields
key = env["res.users.apikeys"].with_user(env.ref("base.user_admin"))._generate(
    None, "bench", fields.Datetime.now() + timedelta(days=1))
# The simulator listens on loopback, which the pipeline fetches only when allowed.
env["ir.config_parameter"].set_param("do_deploy.allowed_networks", "127.0.0.1")
# The simulator's rate limits are raised here, so is the token's call budget.
env["ir.config_parameter"].set_param("do_deploy.calls_per_minute", "100000")
env["ir.config_parameter"].set_param("do_deploy.calls_per_hour", "6000000")
env.cr.commit()
print("BENCH_KEY=" + key)
"""


def http_json(url, payload=None, method=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


def wait_for(url, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


class Simulator:
    """The simulator in a child process, driven through its control API."""

    def __init__(self, rate_limit=100000, per_hour=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.simulator", "--host", "127.0.0.1",
             "--port", str(self.port), "--rate-limit-per-minute", str(rate_limit),
             "--rate-limit-per-hour", str(per_hour or rate_limit * 60)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(f"{self.url}/_sim/stats")

    def create_app(self, name, build_seconds=0, deploy_seconds=0):
        spec = {
            "name": name, "region": "fra",
            "services": [{
                "name": "web", "http_port": 8069, "instance_count": 1,
                "instance_size_slug": "apps-s-1vcpu-1gb",
                "image": {"registry_type": "DOCR", "repository": "odoo", "tag": "v1.0.0"},
                "envs": [{"key": "DO_DEPLOY_VERSION", "value": "v1.0.0", "scope": "RUN_TIME"}],
            }],
        }
        app = http_json(f"{self.url}/_sim/apps", {
            "spec": spec, "build_seconds": build_seconds, "deploy_seconds": deploy_seconds})
        http_json(f"{self.url}/_sim/registry/tags", {"repository": "odoo", "tag": "v2.0.0"})
        return app

    def requests(self):
        return http_json(f"{self.url}/_sim/stats")["requests"]

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class Odoo:
    """A real Odoo server on a fresh database, with two cron threads."""

    def __init__(self, db, cron_threads=2):
        self.db = db
        self.cron_threads = cron_threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        odoo_root = subprocess.check_output(
            [sys.executable, "-c",
             "import odoo.release as r, os; "
             "print(os.path.dirname(os.path.dirname(os.path.abspath(r.__file__))))"],
            text=True).strip()
        core = f"{odoo_root}/odoo/addons"
        if os.path.isdir(f"{odoo_root}/addons"):
            core = f"{odoo_root}/addons,{core}"
        self.addons_dir = tempfile.mkdtemp()
        os.symlink(ROOT, f"{self.addons_dir}/do_deploy")
        self.base_args = [sys.executable, "-m", "odoo", "server", "-d", db,
                          f"--addons-path={core},{self.addons_dir}", "--db_host=127.0.0.1",
                          "--http-interface=127.0.0.1", "--log-level=warn"]
        subprocess.run([*self.base_args, "-i", "do_deploy", "--stop-after-init"],
                       cwd=self.addons_dir, check=True)
        shell = subprocess.run(
            [sys.executable, "-m", "odoo", "shell", *self.base_args[4:], "--no-http"],
            input=API_KEY_SCRIPT, text=True, capture_output=True, cwd=self.addons_dir, check=True)
        self.key = next(line.split("=", 1)[1] for line in shell.stdout.splitlines()
                        if line.startswith("BENCH_KEY="))
        self.process = self.start_server(self.port)
        self.others = []

    def start_server(self, port):
        """One more Odoo server process on the same database (its own cron threads)."""
        process = subprocess.Popen(
            [*self.base_args, f"--http-port={port}", f"--max-cron-threads={self.cron_threads}",
             "--workers=0", f"--db-filter=^{self.db}$"], cwd=self.addons_dir)
        wait_for(f"http://127.0.0.1:{port}/web/health")
        return process

    def add_server(self):
        self.others.append(self.start_server(free_port()))

    def call(self, model, method, ids=None, **kwargs):
        """One JSON-2 call (Odoo 19's external API) as admin."""
        if ids is not None:
            kwargs["ids"] = ids
        request = urllib.request.Request(
            f"{self.url}/json/2/{model}/{method}", data=json.dumps(kwargs).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}",
                     "X-Odoo-Database": self.db})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def stop(self):
        for process in (self.process, *self.others):
            process.terminate()
            process.wait(30)
        subprocess.run(["dropdb", "-h", "127.0.0.1", "--if-exists", self.db], check=False)


def setup_apps(odoo, simulator, count, build_seconds=0, deploy_seconds=0, *, prefix="bench"):
    [account] = odoo.call("do.account", "create", vals_list=[{
        "name": f"{prefix} simulator", "backend": "simulator", "api_url": simulator.url,
        "token": TOKEN}])
    [project] = odoo.call("project.project", "create", vals_list=[{"name": f"{prefix} project"}])
    apps, tasks = [], []
    for index in range(count):
        remote = simulator.create_app(f"{prefix}-{index}", build_seconds, deploy_seconds)
        apps += odoo.call("do.app", "create", vals_list=[{
            "name": f"{prefix}-{index}", "account_id": account, "do_app_id": remote["id"],
            "environment": "staging", "registry_repository": "odoo"}])
        tasks += odoo.call("project.task", "create", vals_list=[{
            "name": f"Ship {prefix} {index}", "project_id": project}])
    return apps, tasks


def start(odoo, app, task, tag="v2.0.0"):
    [deployment] = odoo.call("do.deployment", "create", vals_list=[{
        "app_id": app, "task_id": task, "image_tag": tag}])
    odoo.call("do.deployment", "action_start", ids=[deployment])
    return deployment


def wait_done(odoo, ids, timeout):
    """Poll the states until every deployment is final; return (elapsed, states)."""
    began = time.monotonic()
    while True:
        rows = odoo.call("do.deployment", "read", ids=ids, fields=["state"])
        states = {row["id"]: row["state"] for row in rows}
        if all(state in ("done", "failed", "rolled_back", "canceled")
               for state in states.values()):
            return time.monotonic() - began, states
        if time.monotonic() - began > timeout:
            return None, states
        time.sleep(0.05)


def bench_click_to_done(odoo, simulator, runs):
    apps, tasks = setup_apps(odoo, simulator, runs, prefix="click")
    timings = []
    for app, task in zip(apps, tasks, strict=True):
        began = time.monotonic()
        deployment = start(odoo, app, task)
        _elapsed, states = wait_done(odoo, [deployment], 120)
        timings.append(time.monotonic() - began)
        if states[deployment] != "done":
            print(f"  deployment {deployment} ended {states[deployment]}")
    print(f"click-to-done, zero build time, {runs} runs: median {statistics.median(timings):.2f} s,"
          f" min {min(timings):.2f} s, max {max(timings):.2f} s (target <= 5 s)")


def bench_fan_out(odoo, simulator, count):
    apps, tasks = setup_apps(odoo, simulator, count, prefix="fan")
    began = time.monotonic()
    ids = [start(odoo, app, task) for app, task in zip(apps, tasks, strict=True)]
    started = time.monotonic() - began
    elapsed, states = wait_done(odoo, ids, 600)
    total = time.monotonic() - began
    done = sum(1 for state in states.values() if state == "done")
    others = {state: n for state in set(states.values())
              if (n := sum(1 for s in states.values() if s == state)) and state != "done"}
    print(f"{count} deployments to {count} apps: all started in {started:.1f} s, "
          f"all final {total:.1f} s after the first click; done {done}/{count}"
          f"{', not done: ' + str(others) if others else ''}"
          f"{'' if elapsed is not None else ' (TIMED OUT)'} (target: all done <= 60 s)")


def bench_long_build(odoo, build_seconds=360, deploy_seconds=30):
    simulator = Simulator()
    try:
        [app], [task] = setup_apps(odoo, simulator, 1, build_seconds, deploy_seconds,
                                   prefix="long")
        before = simulator.requests()
        deployment = start(odoo, app, task)
        seen_at = None
        deadline = time.monotonic() + build_seconds + deploy_seconds + 300
        while time.monotonic() < deadline:
            [row] = odoo.call("do.deployment", "read", ids=[deployment], fields=["state"])
            if seen_at is None and odoo.call("do.deployment.step", "search_count", domain=[
                    ("deployment_id", "=", deployment), ("code", "=", "monitor"),
                    ("state", "=", "done")]):
                seen_at = time.time()
            if row["state"] in ("done", "failed", "rolled_back", "canceled"):
                break
            time.sleep(0.2)
        calls = simulator.requests() - before
        [record] = odoo.call("do.deployment", "read", ids=[deployment],
                             fields=["do_deployment_id"])
        active_at = active_time(simulator, _app_remote_id(odoo, app), record["do_deployment_id"])
        lag = f"{seen_at - active_at:.1f} s" if seen_at else "never"
        print(f"{(build_seconds + deploy_seconds) / 60:.1f}-minute build and deploy: "
              f"state {row['state']}; {calls} DigitalOcean API calls for the whole deployment "
              f"(target <= 25; fixed 10 s polling needs ~45); ACTIVE seen {lag} after the "
              f"simulator reached it (target <= 10 s)")
    finally:
        simulator.stop()


def _app_remote_id(odoo, app):
    return odoo.call("do.app", "read", ids=[app], fields=["do_app_id"])[0]["do_app_id"]


def active_time(simulator, remote_app_id, deployment_id):
    """When the simulator's deployment reached ACTIVE (its phase_last_updated_at), epoch s."""
    request = urllib.request.Request(
        f"{simulator.url}/v2/apps/{remote_app_id}/deployments/{deployment_id}",
        headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        deployment = json.loads(response.read())["deployment"]
    return parse_time(deployment["phase_last_updated_at"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--no-long", action="store_true", help="skip the 6.5-minute build")
    args = parser.parse_args()
    simulator = Simulator()
    odoo = Odoo(f"do_deploy_bench_{os.getpid()}")
    try:
        bench_click_to_done(odoo, simulator, args.runs)
        bench_fan_out(odoo, simulator, args.apps)
        if not args.no_long:
            bench_long_build(odoo)
    finally:
        odoo.stop()
        simulator.stop()


if __name__ == "__main__":
    main()
