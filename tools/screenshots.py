#!/usr/bin/env python3
"""Take the README screenshots from a running demo server with headless Chromium.

Start the demo first (``make demo``: Odoo with the demo data and the simulator
beside it), then::

    python3 tools/screenshots.py --url http://localhost:8069 --db do_deploy_demo

The script logs in as admin over JSON-RPC, hands the session cookie to a
headless Chromium driven through the DevTools protocol, and drives the demo
exactly as a user would: it deploys a demo task (and lets the server's cron run
it against the simulator) and photographs it from its task and its form while
it builds, opens the deploy wizard on another task, deploys a tag whose health
check fails so the automatic rollback happens and opens the failed step, shows
that deployment on a phone, the history graph and the apps dashboard, into
``static/description/screenshots/``. Rerun it after a change of the screens.
"""

import argparse
import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "static" / "description" / "screenshots"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class Odoo:
    """A JSON-RPC session on the demo server, used to find and prepare records."""

    def __init__(self, url, db, login, password):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.ids = itertools.count(1)
        result = self.rpc("/web/session/authenticate",
                          {"db": db, "login": login, "password": password})
        if not result.get("uid"):
            sys.exit(f"cannot log in to {db} as {login}")

    def rpc(self, path, params):
        payload = {"jsonrpc": "2.0", "method": "call", "id": next(self.ids), "params": params}
        response = self.session.post(self.url + path, json=payload, timeout=60)
        response.raise_for_status()
        body = response.json()
        if "error" in body:
            raise RuntimeError(body["error"]["data"].get("message") or body["error"]["message"])
        return body["result"]

    def call(self, model, method, *args, **kwargs):
        return self.rpc("/web/dataset/call_kw", {
            "model": model, "method": method, "args": list(args), "kwargs": kwargs})

    def xmlid(self, xmlid, model, fallback_domain):
        """The id of a demo record, else of the first record matching ``fallback_domain``."""
        module, name = xmlid.split(".")
        data = self.call("ir.model.data", "search_read",
                         [("module", "=", module), ("name", "=", name)], ["res_id"], limit=1)
        if data:
            return data[0]["res_id"]
        found = self.call(model, "search", fallback_domain, limit=1)
        if not found:
            sys.exit(f"no {model} in the database: install do_deploy with its demo data")
        return found[0]

    @property
    def session_id(self):
        return self.session.cookies.get("session_id")


class Chromium:
    """Headless Chromium with one page, driven through the DevTools protocol."""

    def __init__(self, width, height):
        binary = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
        if not binary:
            sys.exit("Chromium is missing (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="do_deploy_shots_")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "--force-device-scale-factor=1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                self.close()
                sys.exit("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
        page = next(target for target in pages if target["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60,
                                              suppress_origin=True)
        self.ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  width=width, height=height, deviceScaleFactor=1, mobile=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def log_in(self, odoo):
        """Open the next pages as ``odoo``'s user: its session cookie replaces any other."""
        host = odoo.url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
        self.send("Network.enable")
        self.send("Network.clearBrowserCookies")
        self.send("Network.setCookie", name="session_id", value=odoo.session_id, domain=host,
                  path="/", httpOnly=True)

    def send(self, method, **params):
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, selector, timeout=60):
        """Wait until ``selector`` matches a visible element (and the UI is idle)."""
        deadline = time.monotonic() + timeout
        check = (f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
                 " return !!(el && el.offsetParent !== null); })()")
        while time.monotonic() < deadline:
            if self.evaluate(check):
                time.sleep(0.8)  # let fonts, charts and transitions settle before the shot
                return
            time.sleep(0.2)
        raise TimeoutError(f"nothing matched {selector!r} within {timeout} s")

    def click(self, selector):
        self.wait_for(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def goto(self, url):
        self.send("Page.navigate", url=url)

    def resize(self, width, height):
        self.send("Emulation.setDeviceMetricsOverride",
                  width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def wait_for_state(odoo, deployment_id, states, timeout):
    """Poll the deployment until the server's cron has moved it into ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = odoo.call("do.deployment", "read", [deployment_id], ["state"])[0]["state"]
        if state in states:
            return state
        time.sleep(0.5)
    raise TimeoutError(f"deployment {deployment_id} did not reach {states} within {timeout} s")


def wait_for_step(odoo, deployment_id, code, state, timeout):
    """Poll until the deployment's step ``code`` is in ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = odoo.call("do.deployment.step", "search_read",
                          [("deployment_id", "=", deployment_id), ("code", "=", code)], ["state"])
        if steps and steps[0]["state"] == state:
            return
        time.sleep(0.5)
    raise TimeoutError(f"step {code} of {deployment_id} not {state} within {timeout} s")


def deploy(odoo, task_id, app_id, tag):
    """Deploy ``tag`` of ``app_id`` for ``task_id`` through the deploy wizard."""
    wizard_id = odoo.call("do.deploy.wizard", "create",
                          {"task_id": task_id, "app_id": app_id, "image_tag": tag})
    action = odoo.call("do.deploy.wizard", "action_confirm", [wizard_id])
    return action["res_id"]


def argument_parser(doc, sizes=True):
    """The options of every screenshot script: the demo server, where the files go
    and, with ``sizes``, the desktop and phone sizes."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8069")
    parser.add_argument("--db", default="do_deploy_demo")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    if sizes:
        parser.add_argument("--width", type=int, default=1440)
        parser.add_argument("--height", type=int, default=900)
        parser.add_argument("--phone-width", type=int, default=390)
        parser.add_argument("--phone-height", type=int, default=844)
    return parser


def main():
    parser = argument_parser(__doc__)
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--timeout", type=int, default=300,
                        help="seconds to wait for a deployment to finish on the demo server")
    parser.add_argument("--history", type=int, default=0, metavar="N",
                        help="first add N past deployments (tools/generate_history.py, 60 days) "
                             "so that the history graph has something to show")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    if args.history:
        subprocess.run([sys.executable, str(ROOT / "tools" / "generate_history.py"), args.db,
                        "--count", str(args.history), "--days", "60"], check=True)

    odoo = Odoo(args.url, args.db, args.login, args.password)
    app_id = odoo.xmlid("do_deploy.demo_app_staging", "do.app", [("environment", "=", "staging")])
    task_id = odoo.xmlid("do_deploy.demo_task_checkout", "project.task",
                         [("project_id", "!=", False)])
    wizard_task_id = odoo.xmlid("do_deploy.demo_task_login_page", "project.task",
                                [("project_id", "!=", False)])
    failing_task_id = odoo.xmlid("do_deploy.demo_task_search", "project.task",
                                 [("project_id", "!=", False)])
    app = odoo.call("do.app", "read", [app_id], ["do_app_id", "account_id",
                                                 "registry_repository"])[0]
    account = odoo.call("do.account", "read", [app["account_id"][0]], ["api_url"])[0]
    sim_url = (account["api_url"] or "http://127.0.0.1:8799").rstrip("/")
    sim_app_url = f"{sim_url}/_sim/apps/{app['do_app_id']}/timing"
    repository = app["registry_repository"] or "odoo"

    def push(tag):
        requests.post(f"{sim_url}/_sim/registry/tags", json={"repository": repository, "tag": tag},
                      timeout=10)

    base = args.url.rstrip("/")
    with Chromium(args.width, args.height) as browser:
        browser.log_in(odoo)

        # 1. A running deployment, from its task and on its own form: the simulator builds
        #    for a while, the server's cron walks the steps.
        requests.post(sim_app_url, json={"build_seconds": 60, "deploy_seconds": 15}, timeout=10)
        tag = "v1.2.0"  # the tag the demo task names
        push(tag)
        running_id = deploy(odoo, task_id, app_id, tag)
        wait_for_step(odoo, running_id, "monitor", "running", args.timeout)
        browser.goto(f"{base}/odoo/project.task/{task_id}")
        browser.wait_for(".o_do_deploy_progress_banner .o_do_deploy_progress_phase", timeout=60)
        time.sleep(3)  # let the elapsed time tick
        browser.screenshot(args.out / "task_running.png")
        browser.goto(f"{base}/odoo/do.deployment/{running_id}")
        browser.wait_for(".o_do_deploy_step[data-code='monitor'][data-state='running'] "
                         ".o_do_deploy_step_phase", timeout=60)
        time.sleep(3)
        browser.screenshot(args.out / "deployment_running.png")
        wait_for_state(odoo, running_id, ("done", "failed", "rolled_back"), args.timeout)
        requests.post(sim_app_url, json={"build_seconds": 3, "deploy_seconds": 2}, timeout=10)

        # 2. A task with its Deploy button, and the wizard proposing the tag the task names.
        browser.goto(f"{base}/odoo/project.task/{wizard_task_id}")
        browser.wait_for(".o_form_view button[name='action_open_deploy_wizard']")
        browser.click(".o_form_view button[name='action_open_deploy_wizard']")
        browser.wait_for(".modal .o_form_view div[name='image_tag'] input")
        browser.screenshot(args.out / "deploy_wizard.png")

        # 3. A deployment whose health check fails: error code, mitigation, automatic
        #    rollback, and the failed step's detail.
        failing_tag = "v1.4.0--health-fail-always"
        push(failing_tag)
        failing_id = deploy(odoo, failing_task_id, app_id, failing_tag)
        wait_for_state(odoo, failing_id, ("rolled_back", "failed"), args.timeout)
        browser.goto(f"{base}/odoo/do.deployment/{failing_id}")
        browser.resize(args.width, args.height + 300)  # room for the rollback's lane
        browser.wait_for(".o_do_deploy_timeline .o_do_deploy_lane_rollback")
        browser.screenshot(args.out / "deployment_rolled_back.png")
        browser.click(".o_do_deploy_step[data-code='health_check']")
        browser.wait_for(".modal div[name='log_excerpt']")
        browser.screenshot(args.out / "step_detail.png")
        browser.resize(args.width, args.height)

        # 4. The same deployment on a phone: the steps stack.
        browser.resize(args.phone_width, args.phone_height)
        browser.goto(f"{base}/odoo/do.deployment/{failing_id}")
        browser.wait_for(".o_do_deploy_timeline .o_do_deploy_lane_rollback")
        browser.evaluate("document.querySelector('.o_do_deploy_lane_deploy').scrollIntoView()")
        time.sleep(0.8)
        browser.screenshot(args.out / "deployment_phone.png")
        browser.resize(args.width, args.height)

        # 5. The history graph: deployments per day by state, in the states' colours.
        browser.goto(f"{base}/odoo/action-do_deploy.do_deployment_action?view_type=graph")
        browser.wait_for(".o_graph_renderer canvas")
        browser.screenshot(args.out / "history_graph.png")

        # 6. The app dashboard.
        browser.goto(f"{base}/odoo/action-do_deploy.do_app_action")
        browser.wait_for(".o_do_deploy_app_kanban .o_kanban_record")
        browser.screenshot(args.out / "apps_dashboard.png")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
