"""``python -m engine.simulator --host 127.0.0.1 --port 8799 [--seed demo]``."""

import argparse
import signal
import threading

from .app import DEFAULT_TOKEN, Simulator
from .demo import DEMO_BUILD_SECONDS, DEMO_DEPLOY_SECONDS, seed_demo
from .server import SimulatorServer


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m engine.simulator",
                                     description="DigitalOcean App Platform simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--seed", choices=["demo"], help="create the demo apps and tags")
    parser.add_argument("--build-seconds", type=float, default=None,
                        help=f"build time of new deployments (demo: {DEMO_BUILD_SECONDS})")
    parser.add_argument("--deploy-seconds", type=float, default=None,
                        help=f"deploy time of new deployments (demo: {DEMO_DEPLOY_SECONDS})")
    parser.add_argument("--token", action="append",
                        help=f"accepted API token (repeatable; default {DEFAULT_TOKEN})")
    parser.add_argument("--rate-limit-per-minute", type=int, default=250)
    parser.add_argument("--rate-limit-per-hour", type=int, default=5000)
    args = parser.parse_args(argv)

    demo = args.seed == "demo"
    build = args.build_seconds if args.build_seconds is not None else (
        DEMO_BUILD_SECONDS if demo else 0)
    deploy = args.deploy_seconds if args.deploy_seconds is not None else (
        DEMO_DEPLOY_SECONDS if demo else 0)
    sim = Simulator(tokens=args.token, rate_limit_per_minute=args.rate_limit_per_minute,
                    rate_limit_per_hour=args.rate_limit_per_hour, build_seconds=build,
                    deploy_seconds=deploy)
    server = SimulatorServer(sim, host=args.host, port=args.port).start()
    if demo:
        seed_demo(sim, build_seconds=build, deploy_seconds=deploy)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"DigitalOcean App Platform simulator on {server.url} (token: "
          f"{'custom' if args.token else DEFAULT_TOKEN})", flush=True)
    try:
        while not stopped.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
