"""The pipeline's pure decisions (engine.pipeline_policy), without Odoo.

Which deployment is new is decided on apps as the simulator's REST API returns
them, before and after the calls the pipeline makes (spec update, deployment,
rollback); the timing decisions are plain arithmetic.
"""

from datetime import datetime, timedelta

import pytest

from engine import pipeline_policy as policy
from engine.appspec import set_image_tag
from engine.client import AppPlatformClient
from engine.deployment import DEPLOYING_POLL, MAX_EARLY_POLL, MIN_POLL, SOP_EXPECTED_SECONDS


@pytest.fixture
def client(simulator, sim_token):
    return AppPlatformClient(sim_token, simulator.url, sleep=[].append)


# --- which deployment is new ------------------------------------------------------------------

def test_component_names():
    assert policy.component_names("web, worker ,") == ["web", "worker"]
    assert policy.component_names("") == []
    assert policy.component_names(None) == []


def test_deployment_ids_of_a_live_app(client, make_app):
    app = client.get_app(make_app()["id"])
    assert policy.deployment_ids_of(app) == [app["active_deployment"]["id"],
                                             app["pending_deployment"]["id"]]
    assert len(set(policy.deployment_ids_of(app))) == 1
    assert policy.deployment_ids_of({}) == []


def test_the_deployment_a_spec_update_made_is_new(simulator, client, make_app):
    app_id = make_app(build_seconds=60)["id"]
    before = client.get_app(app_id)
    known = policy.deployment_ids_of(before)
    assert policy.new_deployment(before, known) is None
    simulator.sim.push_tag("odoo", "v1.1.0")
    after = client.update_app(app_id, set_image_tag(before["spec"], "v1.1.0"))
    created = after["pending_deployment"]["id"]
    assert policy.new_deployment(after, known) == created
    assert policy.new_deployment(after, known, "v1.1.0") == created
    # Another version's deployment is not the one we look for.
    assert policy.new_deployment(after, known, "v9.9.9") is None
    # Once it is live it is still found (as the active deployment).
    simulator.sim.clock.advance(120)
    live = client.get_app(app_id)
    assert live["active_deployment"]["id"] == created
    assert policy.new_deployment(live, known, "v1.1.0") == created


def test_the_deployment_of_a_retagged_component_is_found_by_its_version(
        simulator, client, make_app):
    """Issue 9, defect 2: the worker alone gets v1.1.0; the web service keeps v1.0.0."""
    app_id = make_app(build_seconds=60)["id"]
    before = client.get_app(app_id)
    known = policy.deployment_ids_of(before)
    simulator.sim.push_tag("odoo", "v1.1.0")
    after = client.update_app(app_id, set_image_tag(before["spec"], "v1.1.0", ["worker"]))
    created = after["pending_deployment"]["id"]
    assert policy.new_deployment(after, known, "v1.1.0", ["worker"]) == created
    assert policy.new_deployment(after, known, "v1.1.0") is None, "the web's version is v1.0.0"


def test_the_deployment_a_rollback_made_is_new(simulator, client, make_app):
    app_id = make_app()["id"]
    first = client.get_app(app_id)["active_deployment"]["id"]
    simulator.sim.push_tag("odoo", "v1.1.0")
    client.update_app(app_id, set_image_tag(client.get_app(app_id)["spec"], "v1.1.0"))
    before = client.get_app(app_id)
    known = policy.deployment_ids_of(before)
    rollback = client.create_rollback(app_id, first)
    after = client.get_app(app_id)
    assert after["pinned_deployment"]["id"] == rollback["id"]
    assert policy.new_deployment(after, known) == rollback["id"]


def test_a_deployment_shown_without_spec_is_taken():
    app = {"pending_deployment": {"id": "new"}, "active_deployment": {"id": "old"}}
    assert policy.new_deployment(app, ["old"], "v1.1.0") == "new"
    assert policy.new_deployment(app, ["old", "new"]) is None


# --- retries, limits and deadlines -----------------------------------------------------------

@pytest.mark.parametrize("details, expected", [
    ({}, policy.RETRY_DELAY),
    (None, policy.RETRY_DELAY),
    ({"retry_after": 0}, policy.RETRY_DELAY),
    ({"retry_after": 42}, 42.0),
    ({"retry_after": "soon"}, policy.RETRY_DELAY),
    ({"reset": 1_000_030}, 30.0),
    ({"reset": 1_000_002}, policy.RETRY_DELAY),
    ({"reset": 1_100_000}, policy.MAX_RETRY_DELAY),
    ({"reset": "never"}, policy.RETRY_DELAY),
])
def test_retry_delay(details, expected):
    assert policy.retry_delay(details, now=1_000_000) == expected


def test_step_limit():
    assert policy.step_limit("monitor", 480, 600) == 660
    assert policy.step_limit("rb_monitor", 480, 900) == 960
    assert policy.step_limit("rb_revert", 480, 900) == 960
    assert policy.step_limit("health_check", 30, 600) == 90
    assert policy.step_limit("validate", 100, 600) == 200
    assert policy.step_limit("update_spec", 0, 600) == 60


def test_past_deadline():
    assert not policy.past_deadline(None, 60)
    assert not policy.past_deadline(60, 60)
    assert policy.past_deadline(60.5, 60)


# --- polls and health checks -----------------------------------------------------------------

def test_monitor_poll_delay_uses_history_else_the_sop_within_the_budget():
    assert policy.monitor_poll_delay("DEPLOYING", 10, None, 480) == DEPLOYING_POLL
    # No history: the SOP's 390 s, so a build just started is polled rarely.
    assert policy.monitor_poll_delay("BUILDING", 0, None, 480) == MAX_EARLY_POLL
    # A budget shorter than the SOP's figure is the expectation then.
    assert policy.monitor_poll_delay("BUILDING", 50, None, 60) == MIN_POLL
    # History says 80 s: 20 s in, half the 60 s left.
    assert policy.monitor_poll_delay("BUILDING", 20, 80, 480) == 30
    assert SOP_EXPECTED_SECONDS == 390


def test_health_retry():
    assert policy.health_retry(1) == policy.HEALTH_RETRY
    assert policy.health_retry(2) is None
    assert policy.health_retry(3) is None


def test_expected_from_history():
    assert policy.expected_from_history([]) is None
    assert policy.expected_from_history([None, 0]) is None
    assert policy.expected_from_history([80, None, 100, 60]) == 80
    # Only the newest HISTORY_SIZE monitors count.
    assert policy.expected_from_history([10, 10, 10, 10, 10, 500, 500, 500]) == 10


# --- the cron --------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("50", 50.0), ("0", 0.0), (12.5, 12.5), ("-3", 0.0), ("fast", policy.CRON_RUN_SECONDS),
    (None, policy.CRON_RUN_SECONDS),
])
def test_cron_run_seconds(value, expected):
    assert policy.cron_run_seconds(value) == expected


@pytest.mark.parametrize(("run_seconds", "limit", "jobs", "expected"), [
    (50.0, 120, 4, 24.0),   # four runs and one more job in a row stay under 120 s
    (50.0, 600, 4, 50.0),   # a generous limit keeps the configured length
    (50.0, 0, 4, 50.0),     # no limit
    (50.0, -1, 4, 50.0),
    (50.0, 120, 0, 50.0),   # no active job found: counted as one
])
def test_run_seconds_within_limit(run_seconds, limit, jobs, expected):
    assert policy.run_seconds_within_limit(run_seconds, limit, jobs) == expected


def test_cron_pause():
    assert policy.cron_pause(0, processed=3) == 0.0
    # Due now but nothing advanced: another worker holds it.
    assert policy.cron_pause(0, processed=0) == policy.LOCKED_RETRY
    assert policy.cron_pause(-5, processed=0) == policy.LOCKED_RETRY
    assert policy.cron_pause(12.0, processed=1) == 12.0


def test_rearm_at():
    now = datetime(2025, 1, 1, 12, 0, 0)
    assert policy.rearm_at(now, now, 50) is None
    assert policy.rearm_at(now + timedelta(seconds=50), now, 50) is None
    assert policy.rearm_at(now + timedelta(seconds=200), now, 50) == now + timedelta(seconds=150)
    assert policy.rearm_at(now + timedelta(seconds=30), now, 0) == now + timedelta(seconds=30)


def test_an_update_adopts_only_the_deployment_it_created():
    """Issue 9, defect 8: the PUT's pending_deployment, not any unknown deployment."""
    def made_by(deployment_id, action, kind="MANUAL"):
        return {"id": deployment_id, "cause_details": {
            "type": kind, "digitalocean_user_action": {"name": action}}}

    ours = made_by("ours", "UPDATE_SPEC")
    pushed = {"id": "pushed", "cause_details": {"type": "DEPLOY_ON_PUSH"}}
    console = made_by("console", "CREATE_DEPLOYMENT")
    assert policy.deployment_of_update(
        {"pending_deployment": ours, "in_progress_deployment": pushed}, ["old"]) == "ours"
    # The update created none: another unknown deployment is not ours.
    assert policy.deployment_of_update({"in_progress_deployment": pushed}, ["old"]) is None
    assert policy.deployment_of_update({"pending_deployment": console}, ["old"]) is None
    assert policy.deployment_of_update({"pending_deployment": ours}, ["ours"]) is None
    assert policy.deployment_of_update({"pending_deployment": {"id": "bare"}}, []) == "bare"
    # After a lost reply, the app is read: only a deployment an update caused counts.
    assert policy.new_deployment({"pending_deployment": console}, [], action="UPDATE_SPEC") is None
    assert policy.new_deployment({"pending_deployment": console, "active_deployment": ours}, [],
                                 action="UPDATE_SPEC") == "ours"


def test_a_short_budget_goes_to_monitors_and_rollbacks_then_steps_then_starts():
    shares = {code: policy.budget_share(code) for code in policy.ACTION_CALLS}
    assert shares["update_spec"] < shares["apply_spec"] < shares["monitor"] == 1.0
    assert {code for code, share in shares.items() if share == 1.0} == {
        "monitor", "rb_validate", "rb_create", "rb_monitor", "rb_commit", "rb_revert"}


def test_actions_waiting_for_the_budget_take_turns():
    # Alone, it tries again when its calls fit; the tenth in line, nine slots later.
    assert policy.budget_turn(3.0, 0, 4, 30) == 3.0
    assert policy.budget_turn(3.0, 9, 4, 30) == 3.0 + 9 * 8.0
