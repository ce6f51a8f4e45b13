#!/usr/bin/env python3
"""Take the README screenshots of notifications and KPI alerts from a running demo.

Start the demo first (``make demo``), then::

    python3 tools/notification_screenshots.py --url http://localhost:8069 --db do_deploy_demo

The script starts a local Slack receiver (engine/tests/receivers.py: it checks
each message against Block Kit's documented format and answers like Slack),
points the demo's Slack channels at it, deploys a tag whose health check fails
so the automatic rollback happens, waits for the server's delivery cron to post
the messages, and draws the message the receiver got (tools/slack_render.py) in
headless Chromium. It then runs the KPI alert evaluation and photographs the
alert, and the deployment's Notifications tab, as an administrator and as the
demo Deployment User, at desktop and phone widths.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from screenshots import Chromium, Odoo, argument_parser, deploy, wait_for_state  # noqa: E402
from slack_render import page  # noqa: E402

from engine.tests.receivers import SlackReceiver  # noqa: E402

FAILING_TAG = "v1.4.0--health-fail-always"


def ensure_channel(odoo, name, role, url):
    found = odoo.call("do.notification.channel", "search", [("name", "=", name)], limit=1)
    values = {"name": name, "channel_type": "slack", "sop_role": role, "webhook_url": url}
    if found:
        odoo.call("do.notification.channel", "write", found, values)
        return found[0]
    return odoo.call("do.notification.channel", "create", values)


def wait_for_sent(odoo, deployment_id, timeout, domain=None):
    """Wait until the server's delivery cron has sent (or given up on) the notifications
    of ``deployment_id`` (or of ``domain``)."""
    deadline = time.monotonic() + timeout
    domain = domain or ["|", ("deployment_id", "=", deployment_id),
                        ("rollback_id", "=", deployment_id)]
    while time.monotonic() < deadline:
        states = [n["state"] for n in odoo.call("do.notification", "search_read", domain,
                                                 ["state"])]
        if states and all(state not in ("queued", "retrying") for state in states):
            return
        time.sleep(1)
    raise TimeoutError("notifications still pending")


def shoot(browser, url, selector, path, args):
    for width, height, suffix in ((args.width, args.height, ""),
                                  (args.phone_width, args.phone_height, "_phone")):
        browser.resize(width, height)
        browser.goto(url)
        browser.wait_for(selector)
        browser.screenshot(path.with_name(path.stem + suffix + path.suffix))


def main():
    parser = argument_parser(__doc__)
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.url.rstrip("/")

    admin = Odoo(args.url, args.db, "admin", "admin")
    app_id = admin.xmlid("do_deploy.demo_app_staging", "do.app", [("environment", "=", "staging")])
    task_id = admin.xmlid("do_deploy.demo_task_search", "project.task",
                          [("project_id", "!=", False)])
    with SlackReceiver() as slack:
        ensure_channel(admin, "Slack #deployments", "slack_deployments", slack.webhook_url())
        ensure_channel(admin, "Slack #incidents", "slack_incidents", slack.webhook_url())
        deployment_id = deploy(admin, task_id, app_id, FAILING_TAG)
        wait_for_state(admin, deployment_id, ("rolled_back", "failed"), args.timeout)
        wait_for_sent(admin, deployment_id, args.timeout)
        if slack.errors:
            sys.exit(f"the receiver refused a message: {slack.errors}")
        received = [r["json"] for r in slack.received if r["json"]]
        # The KPI alert evaluation, with the receiver still listening for its message.
        cron = admin.xmlid("do_deploy.ir_cron_alert_evaluate", "ir.cron", [("id", "=", 0)])
        admin.call("ir.cron", "method_direct_trigger", [cron])
        alert = admin.call("do.alert", "search", [("state", "=", "open")], limit=1,
                           order="level, id desc")
        if alert:
            wait_for_sent(admin, None, args.timeout, [("alert_id", "=", alert[0])])
    # The #incidents copy of the failure: the richest message (code, mitigation, message).
    failure = next(m for m in received if m["text"].startswith("Deployment failed"))
    (args.out / "slack_message.json").write_text(json.dumps(failure, indent=2,
                                                            ensure_ascii=False))
    html_path = Path(tempfile.mkdtemp(prefix="do_deploy_slack_")) / "slack_message.html"
    html_path.write_text(page(failure, channel="incidents"))

    with Chromium(args.width, args.height) as browser:
        browser.log_in(admin)
        browser.resize(900, 620)
        browser.goto(html_path.as_uri())
        browser.wait_for(".msg")
        browser.screenshot(args.out / "slack_message.png")
        if alert:
            shoot(browser, f"{base}/odoo/do.alert/{alert[0]}", ".o_form_view .o_field_widget",
                  args.out / "kpi_alert.png", args)
        shoot(browser, f"{base}/odoo/action-do_deploy.do_alert_action", ".o_list_view",
              args.out / "kpi_alerts_list.png", args)
        browser.resize(args.width, args.height)
        browser.goto(f"{base}/odoo/do.deployment/{deployment_id}")
        browser.click("a[name='notifications']")
        browser.wait_for("div[name='notification_ids'] .o_data_row")
        browser.evaluate("document.querySelector(\"a[name='notifications']\")"
                         ".scrollIntoView({block: 'start'})")
        time.sleep(1)
        browser.screenshot(args.out / "deployment_notifications.png")
    user = Odoo(args.url, args.db, "demo", "demo")
    with Chromium(args.width, args.height) as browser:
        browser.log_in(user)
        shoot(browser, f"{base}/odoo/action-do_deploy.do_alert_action", ".o_list_view",
              args.out / "kpi_alerts_list_user.png", args)


if __name__ == "__main__":
    main()
