"""Latency of GET /api/v1/health and throughput of POST /api/v1/deployments on a real Odoo.

Run from the repository root (Odoo 19 importable by python3, PostgreSQL up)::

    python3 benchmarks/bench_api.py [--workers 0,2] [--health-requests 2000]
        [--trigger-seconds 10] [--threads 4]

It installs do_deploy on a fresh database (dropped at the end unless
``--keep-db``), creates a Deployment User with an API key, a simulator account
and a staging app, then for each ``--workers`` value starts
``odoo server --workers=N --max-cron-threads=0`` (0 = Odoo's threaded mode,
N >= 1 = prefork with N HTTP worker processes) and measures:

* health: ``--health-requests`` sequential GETs of /api/v1/health after a
  warm-up; median and p99 latency (targets <= 20 ms and <= 100 ms);
* triggers: ``--threads`` clients POSTing deployment requests with distinct
  idempotency keys for ``--trigger-seconds``; accepted (201) per second
  (target >= 50/s) and the median request latency.

The rate limit is switched off (``do_deploy.api_rate_limit`` = 0) so that
the server's capacity is measured, and crons are off so the queued
deployments are not run. The server serves the one database given with
``-d``, without ``--db-filter``: with a filter, Odoo lists the databases over
a new connection to ``postgres`` for every request without a session cookie
(every API call), which costs about 5 ms of CPU per request. Odoo's HTTP
server (werkzeug) closes the connection after every response, so each request
opens a new TCP connection; that cost is part of the figures.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

from benchlib import ROOT, free_port, percentile

HEALTH_MEDIAN_TARGET_MS = 20.0
HEALTH_P99_TARGET_MS = 100.0
TRIGGER_TARGET_PER_S = 50.0

SETUP_SCRIPT = """
from datetime import timedelta
from odoo import fields
from odoo.tests import new_test_user
user = new_test_user(env, "bench_ci", groups="do_deploy.group_do_deploy_user", name="Bench CI")
key = env["res.users.apikeys"].with_user(user)._generate(
    None, "bench", fields.Datetime.now() + timedelta(days=1))
account = env["do.account"].create({"name": "Bench simulator", "backend": "simulator",
                                    "api_url": "http://127.0.0.1:9", "token": "dop_v1_simulator"})
env["do.app"].create({"name": "bench-staging", "account_id": account.id,
                      "do_app_id": "bench-app", "environment": "staging"})
env["ir.config_parameter"].set_param("do_deploy.api_rate_limit", "0")
env.cr.commit()
print("BENCH_KEY=" + key)
"""


def odoo_command(database, *args):
    odoo_root = subprocess.check_output(
        [sys.executable, "-c", "import odoo.release as r, os; print(os.path.dirname("
         "os.path.dirname(os.path.dirname(r.__file__))))"], text=True).strip()
    addons_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench_api_addons_{os.getpid()}")
    os.makedirs(addons_dir, exist_ok=True)
    link = os.path.join(addons_dir, "do_deploy")
    if not os.path.islink(link):
        os.symlink(ROOT, link)
    addons_path = ",".join(p for p in (os.path.join(odoo_root, "addons"),
                                       os.path.join(odoo_root, "odoo", "addons"), addons_dir)
                           if os.path.isdir(p))
    return [sys.executable, "-m", "odoo", *args, "-d", database,
            f"--addons-path={addons_path}", "--db_host=" + os.environ.get("PGHOST", "127.0.0.1")]


def prepare_database(database):
    print(f"installing do_deploy on a fresh database {database} ...", flush=True)
    subprocess.run([
        *odoo_command(database, "server"), "-i", "do_deploy", "--stop-after-init",
        "--max-cron-threads=0", "--log-level=warn", "--http-port", str(free_port()),
    ], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([*odoo_command(database, "shell"), "--log-level=warn", "--no-http"],
                         input=SETUP_SCRIPT, text=True, capture_output=True, check=True).stdout
    return next(line.split("=", 1)[1] for line in out.splitlines()
                if line.startswith("BENCH_KEY="))


def start_server(database, workers, port):
    command = [
        *odoo_command(database, "server"), f"--http-port={port}", "--http-interface=127.0.0.1",
        f"--gevent-port={free_port()}", f"--workers={workers}", "--max-cron-threads=0",
        "--log-level=warn", "--log-handler=werkzeug:WARNING"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _body, _ms = request(port, "GET", "/api/v1/health")
            if status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise SystemExit("the Odoo server did not answer /api/v1/health within 60 s")


def stop_server(server):
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def request(port, method, path, body=None, headers=None):
    """One request on a new connection (the server closes it after each response)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return response.status, data, (time.perf_counter() - start) * 1000.0


def bench_health(port, count, warmup):
    for _ in range(warmup):
        request(port, "GET", "/api/v1/health")
    timings = []
    for _ in range(count):
        status, _body, ms = request(port, "GET", "/api/v1/health")
        if status != 200:
            raise SystemExit(f"health answered {status}")
        timings.append(ms)
    return statistics.median(timings), percentile(timings, 0.99)


def bench_triggers(port, key, seconds, threads, label):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    accepted, failures, timings = [], [], []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(number):
        sequence = 0
        while time.monotonic() < stop_at:
            sequence += 1
            body = json.dumps({"app": "bench-staging", "image_tag": "v1.0.0",
                               "idempotency_key": f"bench-{label}-{number}-{sequence}"})
            status, data, ms = request(port, "POST", "/api/v1/deployments", body, headers)
            with lock:
                timings.append(ms)
                (accepted if status == 201 else failures).append((status, data[:200]))

    for number in range(3):  # warm-up: registry, caches, connections of every worker
        request(port, "POST", "/api/v1/deployments", json.dumps({
            "app": "bench-staging", "image_tag": "v1.0.0",
            "idempotency_key": f"warmup-{label}-{number}"}), headers)
    start = time.monotonic()
    pool = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - start
    return len(accepted) / elapsed, statistics.median(timings), failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="0,2",
                        help="comma-separated --workers values to measure (0 = threaded)")
    parser.add_argument("--health-requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--trigger-seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database", default=f"api_bench_{os.getpid()}")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    key = prepare_database(args.database)
    rows = []
    try:
        for workers in (int(value) for value in args.workers.split(",")):
            port = free_port()
            server = start_server(args.database, workers, port)
            try:
                median, p99 = bench_health(port, args.health_requests, args.warmup)
                rate, trigger_median, failures = bench_triggers(
                    port, key, args.trigger_seconds, args.threads, f"w{workers}")
            finally:
                stop_server(server)
            rows.append((workers, median, p99, rate, trigger_median, failures))
    finally:
        if not args.keep_db:
            subprocess.run(["dropdb", "-h", os.environ.get("PGHOST", "127.0.0.1"),
                            "--if-exists", args.database], check=False)

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nOdoo /api/v1 on {os.cpu_count()} CPU(s), load average {load}; health: "
          f"{args.health_requests} sequential GETs; triggers: {args.threads} threads for "
          f"{args.trigger_seconds:g} s")
    print(f"{'workers':>8} {'health median':>14} {'health p99':>11} {'triggers/s':>11} "
          f"{'trigger median':>15} {'rejected':>9}")
    for workers, median, p99, rate, trigger_median, failures in rows:
        print(f"{workers:>8} {median:>11.2f} ms {p99:>8.2f} ms {rate:>11.1f} "
              f"{trigger_median:>12.1f} ms {len(failures):>9}")
    ok = True
    for workers, median, p99, rate, _trigger_median, failures in rows:
        verdict = (median <= HEALTH_MEDIAN_TARGET_MS and p99 <= HEALTH_P99_TARGET_MS
                   and rate >= TRIGGER_TARGET_PER_S and not failures)
        ok = ok and verdict
        print(f"workers={workers}: {'meets' if verdict else 'MISSES'} the targets (health median "
              f"<= {HEALTH_MEDIAN_TARGET_MS:g} ms, p99 <= {HEALTH_P99_TARGET_MS:g} ms, "
              f">= {TRIGGER_TARGET_PER_S:g} triggers/s, none rejected)")
        for status, data in failures[:3]:
            print(f"  rejected: {status} {data!r}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
