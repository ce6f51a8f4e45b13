"""Helpers the benchmark scripts share: the repository root, loopback ports, the simulator
in a child process, and percentiles."""

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Rate limits the simulator never reaches when a benchmark measures speed, not limits.
NO_RATE_LIMIT = "100000000"


def free_port():
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port, timeout=15.0, what="the simulator"):
    """Wait until something accepts connections on the loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


@contextlib.contextmanager
def simulator_process(*options):
    """The simulator in a child process (client and server do not share one interpreter
    lock) on a free loopback port, its rate limits out of the way; yields the port.
    ``options`` are more of its command-line options (``"--seed", "demo"``)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.simulator", "--port", str(port), *options,
         "--rate-limit-per-minute", NO_RATE_LIMIT, "--rate-limit-per-hour", NO_RATE_LIMIT],
        cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_until_up(port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def percentile(values, fraction):
    """The ``fraction`` percentile (0.99 for p99) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
