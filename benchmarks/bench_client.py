"""Overhead of the App Platform client per call over the raw HTTP round trip.

Run from the repository root::

    python3 benchmarks/bench_client.py [--calls 3000]

The simulator runs in a child process (so client and server do not share one
interpreter lock) with its rate limits out of the way. Each round makes one
``client.get_app(app_id)`` and one raw ``http.client`` keep-alive GET of the
same URL with the same headers, alternately, so both see the same server load.
The overhead is what the client adds: building the request with ``requests``,
the retry bookkeeping, rate-limit headers and JSON decoding. Target: a median
overhead of at most 1 ms.
"""

import argparse
import http.client
import statistics
import sys
import time

from benchlib import ROOT, percentile, simulator_process

sys.path.insert(0, str(ROOT))

from engine.client import AppPlatformClient

TOKEN = "dop_v1_simulator"
TARGET_MS = 1.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    with simulator_process() as port:
        client = AppPlatformClient(TOKEN, f"http://127.0.0.1:{port}")
        spec = {"name": "bench-app", "region": "fra", "services": [{
            "name": "web", "http_port": 8069, "instance_count": 1,
            "instance_size_slug": "apps-s-1vcpu-1gb",
            "image": {"registry_type": "DOCR", "repository": "odoo", "tag": "v1.0.0"}}]}
        app_id = client.create_app(spec)["id"]
        path = f"/v2/apps/{app_id}"
        raw = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}

        def raw_get():
            raw.request("GET", path, headers=headers)
            response = raw.getresponse()
            body = response.read()
            assert response.status == 200 and body

        for _round in range(args.warmup):
            raw_get()
            client.get_app(app_id)
        raw_ms, client_ms = [], []
        clock = time.perf_counter
        for _round in range(args.calls):
            start = clock()
            raw_get()
            middle = clock()
            client.get_app(app_id)
            end = clock()
            raw_ms.append((middle - start) * 1000)
            client_ms.append((end - middle) * 1000)

    overhead = [c - r for c, r in zip(client_ms, raw_ms, strict=True)]
    rows = [("raw http.client GET", raw_ms), ("client.get_app", client_ms),
            ("overhead (paired)", overhead)]
    print(f"{args.calls} rounds of GET /v2/apps/<id> over keep-alive loopback")
    print(f"{'':24} {'median ms':>10} {'p99 ms':>10}")
    for label, values in rows:
        print(f"{label:24} {statistics.median(values):10.3f} {percentile(values, 0.99):10.3f}")
    # Paired differences cancel the server's own jitter, which both calls of a round share.
    median_overhead = statistics.median(overhead)
    verdict = "OK" if median_overhead <= TARGET_MS else "OVER TARGET"
    print(f"client overhead per call (median of paired differences): {median_overhead:.3f} ms "
          f"(target <= {TARGET_MS} ms) {verdict}")
    print(f"requests sent by the client: {client.request_count}")
    return 0 if median_overhead <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
