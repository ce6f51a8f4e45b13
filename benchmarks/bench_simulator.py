"""Requests per second the simulator serves over keep-alive loopback connections.

Run from the repository root::

    python3 benchmarks/bench_simulator.py [--threads 8] [--seconds 5]

The simulator runs in a child process (as it does beside a demo server), so
client and server do not share one interpreter lock; rate limits are raised
out of the way. Client threads use ``http.client`` for low overhead and mix
the calls a deployment poller makes: get app, get deployment, list apps.
"""

import argparse
import http.client
import json
import threading
import time

from benchlib import simulator_process

TOKEN = "dop_v1_simulator"
STAFF = "6f1c2b9e-5d4a-4c3b-9e8f-000000000001"


def worker(port, paths, stop, counts, index):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    done = errors = 0
    while not stop.is_set():
        connection.request("GET", paths[done % len(paths)], headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            errors += 1
        done += 1
    connection.close()
    counts[index] = (done, errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    with simulator_process("--seed", "demo") as port:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        connection.request("POST", f"/v2/apps/{STAFF}/deployments", body=json.dumps({}),
                           headers={"Authorization": f"Bearer {TOKEN}",
                                    "Content-Type": "application/json"})
        deployment = json.loads(connection.getresponse().read())["deployment"]["id"]
        paths = [f"/v2/apps/{STAFF}", f"/v2/apps/{STAFF}/deployments/{deployment}", "/v2/apps"]
        stop = threading.Event()
        counts = [(0, 0)] * args.threads
        threads = [threading.Thread(target=worker, args=(port, paths, stop, counts, i))
                   for i in range(args.threads)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        total = sum(done for done, _errors in counts)
        errors = sum(errors for _done, errors in counts)
        print(f"{total / elapsed:.0f} requests/s ({total} requests, {errors} non-200, "
              f"{args.threads} keep-alive connections, {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
