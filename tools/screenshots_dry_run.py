#!/usr/bin/env python3
"""Take the README's dry run and promotion screenshots from a running demo server.

Start the demo first (``make demo``), then::

    python3 tools/screenshots_dry_run.py --url http://localhost:8069 --db do_deploy_demo

As the demo's Deployment User (demo / demo) it opens the deploy wizard on a demo task
and runs a dry run (``dry_run_wizard.png``); as the administrator it dry-runs a draft
production deployment and photographs its form as an approver sees it
(``dry_run_deployment.png``), then a done staging deployment that offers Promote to
production (``promote.png``). ``--extra DIR`` also writes the phone-width and
Deployment User variants there, for looking at the screens, not for the README.
"""

import os
import sys
import time
from pathlib import Path

from screenshots import ROOT, Chromium, Odoo, argument_parser, deploy, wait_for_state


def main():
    parser = argument_parser(__doc__, sizes=False)
    parser.add_argument("--extra", type=Path, help="also write phone and user variants here")
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.extra:
        args.extra.mkdir(parents=True, exist_ok=True)
    base = args.url.rstrip("/")

    admin = Odoo(args.url, args.db, "admin", "admin")
    user = Odoo(args.url, args.db, "demo", "demo")
    staging_id = admin.xmlid("do_deploy.demo_app_staging", "do.app",
                             [("environment", "=", "staging")])
    production_id = admin.xmlid("do_deploy.demo_app_production", "do.app",
                                [("environment", "=", "production")])
    task_id = admin.xmlid("do_deploy.demo_task_login_page", "project.task",
                          [("project_id", "!=", False)])

    def shot(browser, name, extra=False):
        if extra:
            if args.extra:
                browser.screenshot(args.extra / name)
        else:
            browser.screenshot(args.out / name)

    with Chromium(1440, 900) as browser:
        # 1. The deploy wizard of a Deployment User, after Dry run.
        browser.log_in(user)
        for width, height, name, extra in ((1440, 900, "dry_run_wizard.png", False),
                                           (390, 844, "dry_run_wizard_phone.png", True)):
            browser.resize(width, height)
            browser.goto(f"{base}/odoo/project.task/{task_id}")
            browser.click(".o_form_view button[name='action_open_deploy_wizard']")
            browser.click(".modal footer button[name='action_dry_run']")
            browser.wait_for(".modal .o_do_deploy_dry_run_images")
            shot(browser, name, extra)

        # 2. A draft production deployment with its dry run, as an approver sees it.
        browser.resize(1440, 900)
        browser.log_in(admin)
        draft_id = admin.call("do.deployment", "create", {
            "task_id": task_id, "app_id": production_id, "image_tag": "v1.2.0",
            "note": "Release of the new login page, tested on staging."})
        admin.call("do.deployment", "action_dry_run", [draft_id])
        for width, height, name, extra in ((1440, 1240, "dry_run_deployment.png", False),
                                           (390, 844, "dry_run_deployment_phone.png", True)):
            browser.resize(width, height)
            browser.goto(f"{base}/odoo/do.deployment/{draft_id}")
            browser.wait_for(".o_form_view .o_do_deploy_dry_run_images")
            if extra:
                browser.evaluate("document.querySelector('.o_notebook').scrollIntoView()")
                time.sleep(0.5)
            shot(browser, name, extra)
        admin.call("do.deployment", "unlink", [draft_id])

        # 3. A done staging deployment offering Promote to production (and, to a
        #    Deployment User, saying why it is not offered).
        done_id = deploy(admin, task_id, staging_id, "v1.2.0")
        wait_for_state(admin, done_id, ("done", "failed", "rolled_back"), args.timeout)
        browser.resize(1440, 900)
        browser.goto(f"{base}/odoo/do.deployment/{done_id}")
        browser.wait_for(".o_form_view button[name='action_promote_to_production']")
        shot(browser, "promote.png")
        browser.log_in(user)
        for width, height, name in ((1440, 900, "promote_user.png"),
                                    (390, 844, "promote_user_phone.png")):
            browser.resize(width, height)
            browser.goto(f"{base}/odoo/do.deployment/{done_id}")
            browser.wait_for(".o_form_view .o_do_deploy_promote_blocked")
            shot(browser, name, True)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
