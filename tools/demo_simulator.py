"""Point a demo database at the simulator ``make demo`` started, whatever its port.

The demo data names the default port (8799) in the simulator account's API URL and in
each demo app's ingress URL; with another ``SIM_PORT`` both must follow, or the first
deployment fails its health check (SERVICE_UNAVAILABLE) and its rollback too.
tools/demo.sh calls it; tests/test_screens.py imports it by path.
"""

import re

_LOOPBACK_ORIGIN = re.compile(r"^http://127\.0\.0\.1:\d+/")


def point_demo_at_simulator(env, port):
    """Give the simulator accounts of ``env`` and their apps' ingress ``port``;
    return the apps whose ingress moved."""
    origin = f"http://127.0.0.1:{port}"
    accounts = env["do.account"].sudo().search([("backend", "=", "simulator")])
    accounts.write({"api_url": origin})
    moved = env["do.app"]
    for app in env["do.app"].sudo().search([("account_id", "in", accounts.ids)]):
        if app.ingress_url and _LOOPBACK_ORIGIN.match(app.ingress_url):
            app.ingress_url = _LOOPBACK_ORIGIN.sub(f"{origin}/", app.ingress_url)
            moved |= app
    return moved
