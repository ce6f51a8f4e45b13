#!/usr/bin/env python3
"""Take the README's change-control screenshots from a running demo server.

Start the demo first (``make demo``), then::

    python3 tools/screenshots_gates.py --url http://localhost:8069 --db do_deploy_demo

As admin it gives the production app a confirmation item and puts a one-off
freeze window in force; as the demo user (a Deployment User) it requests a
production deployment through the deploy wizard, which waits on its gates.
It photographs that deployment as admin and as the demo user (1440 and 390 px
wide) and the approval page an approver reaches from the activity, then
removes the freeze window and cancels the deployment.
"""

import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import Chromium, Odoo, argument_parser, deploy


def shoot(args, odoo, pages):
    """Open each (url, selector, file) page as ``odoo``'s user, wide then narrow."""
    with Chromium(args.width, args.height) as browser:
        browser.log_in(odoo)
        for width, height, suffix in ((args.width, args.height, ""),
                                      (args.phone_width, args.phone_height, "_phone")):
            browser.resize(width, height)
            for url, selector, name in pages:
                browser.goto(args.url.rstrip("/") + url)
                browser.wait_for(selector)
                time.sleep(1)
                browser.screenshot(args.out / f"{name}{suffix}.png")


def main():
    args = argument_parser(__doc__).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    admin = Odoo(args.url, args.db, "admin", "admin")
    user = Odoo(args.url, args.db, "demo", "demo")
    app_id = admin.xmlid("do_deploy.demo_app_production", "do.app",
                         [("environment", "=", "production")])
    task_id = admin.xmlid("do_deploy.demo_task_checkout", "project.task",
                          [("project_id", "!=", False)])
    app = admin.call("do.app", "read", [app_id], ["account_id", "registry_repository"])[0]
    account = admin.call("do.account", "read", [app["account_id"][0]], ["api_url"])[0]
    requests.post(f"{account['api_url'].rstrip('/')}/_sim/registry/tags", timeout=10,
                  json={"repository": app["registry_repository"] or "odoo", "tag": "v1.2.0"})
    if not admin.call("do.gate.confirmation.item", "search_count",
                      [("app_id", "=", app_id), ("name", "=", "Feature flags configured")]):
        admin.call("do.app", "write", [app_id], {"confirmation_item_ids": [
            (0, 0, {"name": "Feature flags configured"})]})
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    window_id = admin.call("do.freeze.window", "create", {
        "name": "Month-end close", "kind": "one_off", "mode": "wait", "timezone": "UTC",
        "environment": "production", "date_start": str(now - timedelta(hours=1)),
        "date_end": str(now + timedelta(hours=3))})
    deployment_id = deploy(user, task_id, app_id, "v1.2.0")
    try:
        form = f"/odoo/do.deployment/{deployment_id}"
        waiting = ".o_form_view .o_do_deploy_waiting"
        shoot(args, admin, [(form, waiting, "gates_waiting"),
                            (f"/do_deploy/approval/{deployment_id}?decision=approve",
                             ".o_do_deploy_approval form", "gates_approval")])
        shoot(args, user, [(form, waiting, "gates_waiting_user")])
    finally:
        admin.call("do.deployment", "action_cancel", [deployment_id])
        admin.call("do.freeze.window", "unlink", [window_id])


if __name__ == "__main__":
    main()
