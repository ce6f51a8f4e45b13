"""The App Platform REST client against the simulator over real loopback HTTP.

Waits are recorded by an injected ``sleep`` (which may move the simulator's
manual clock) instead of sleeping; nothing here waits for real time except the
short socket timeouts of the two tests about servers that never answer.
"""

import json
import logging
import math
import socket

import pytest

from engine.client import AppPlatformClient
from engine.errors import DeployError
from engine.simulator import ManualClock, Simulator, SimulatorServer
from engine.tests import common

SECRET = "dop_v1_0123456789abcdef0123456789abcdef"


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(simulator, sim_token, waits):
    return AppPlatformClient(sim_token, simulator.url, sleep=waits.append, max_retries=3,
                             clock=simulator.sim.clock.now)


@pytest.fixture
def silent_url():
    """A port that accepts connections (kernel backlog) but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def closed_url(closed_port):
    """Connections are refused before anything is sent."""
    return f"http://127.0.0.1:{closed_port}"


def stat(simulator, operation):
    return simulator.sim.stats()["by_operation"].get(operation, 0)


def raises(code, call, *args, **kwargs):
    with pytest.raises(DeployError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value.to_dict()
    return info.value


# ---------------------------------------------------------------- happy paths

def test_apps_are_read_created_and_updated(client, simulator, make_app, sample_spec):
    existing = make_app("v1.0.0")
    assert client.get_app(existing["id"])["spec"]["name"] == existing["spec"]["name"]
    created = client.create_app(sample_spec("v1.0.0", name="odoo-created"), project_id="p-1")
    assert {app["id"] for app in client.list_apps()} == {existing["id"], created["id"]}

    simulator.sim.push_tag("odoo", "v1.1.0")
    proposal = client.propose(sample_spec("v1.1.0", name="odoo-created"), app_id=created["id"])
    assert isinstance(proposal["app_cost"], int) and proposal["app_cost"] > 0
    assert proposal["spec"]["services"][0]["image"]["tag"] == "v1.1.0"

    before = len(client.list_deployments(created["id"]))
    updated = client.update_app(created["id"], sample_spec("v1.1.0", name="odoo-created"))
    pending = updated["pending_deployment"]
    assert pending["spec"]["services"][0]["image"]["tag"] == "v1.1.0"
    # The PUT deployed by itself: exactly one new deployment, the pending one.
    deployments = client.list_deployments(created["id"])
    assert len(deployments) == before + 1 and pending["id"] in {d["id"] for d in deployments}
    health = client.get_app_health(created["id"])
    assert health["components"][0]["name"]


def test_list_apps_follows_pages(client, simulator, sample_spec):
    for number in range(205):
        simulator.sim.create_app(sample_spec(name=f"odoo-page-{number}"))
    assert len(client.list_apps()) == 205
    assert stat(simulator, "apps_list") == 2


def test_deployment_phases_progress_and_cancel(client, simulator, make_app):
    app = make_app("v1.0.0", build_seconds=100, deploy_seconds=50)
    deployment = client.create_deployment(app["id"], force_build=True)
    seen = []
    for _step in range(8):
        current = client.get_deployment(app["id"], deployment["id"])
        seen.append(current["phase"])
        simulator.sim.clock.advance(25)
    assert seen[0] == "PENDING_BUILD" and "BUILDING" in seen and "DEPLOYING" in seen
    assert seen[-1] == "ACTIVE"
    assert current["progress"]["success_steps"] == current["progress"]["total_steps"]

    second = client.create_deployment(app["id"])
    assert client.list_deployments(app["id"], per_page=1)[0]["id"] == second["id"]
    canceled = client.cancel_deployment(app["id"], second["id"])
    assert client.get_deployment(app["id"], canceled["id"])["phase"] == "CANCELED"


def test_logs_component_aggregate_and_active(client, simulator, make_app):
    app = make_app("v1.0.0")
    deployment = client.create_deployment(app["id"])
    simulator.sim.clock.advance(60)
    build = client.get_logs(app["id"], deployment["id"], component="web", log_type="build")
    assert "starting build of service web" in build and "worker" not in build
    aggregate = client.get_logs(app["id"], deployment["id"], log_type="DEPLOY")
    assert "web " in aggregate and "worker " in aggregate
    assert "running on" in client.get_logs(app["id"], component="web", log_type="RUN")


def test_log_tail_is_capped_at_a_line_boundary(simulator, sim_token, make_app):
    app = make_app("v1.0.0")
    full = AppPlatformClient(sim_token, simulator.url).get_logs(app["id"], log_type="BUILD")
    for size in (80, len(full.encode()) - 10):
        capped = AppPlatformClient(sim_token, simulator.url, log_tail_bytes=size)
        tail = capped.get_logs(app["id"], log_type="BUILD")
        assert len(full) > size and 0 < len(tail.encode()) <= size
        assert full.endswith(tail) and full[-len(tail) - 1] == "\n"


def test_log_of_a_phase_never_reached_is_empty(client, simulator, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("build-fail", app_id=app["id"])
    failed = client.create_deployment(app["id"])
    simulator.sim.clock.advance(60)
    assert client.get_deployment(app["id"], failed["id"])["phase"] == "ERROR"
    assert client.get_logs(app["id"], failed["id"], log_type="DEPLOY") == ""
    assert "build failed" in client.get_logs(app["id"], failed["id"], log_type="BUILD")


def test_log_url_that_never_answers_is_an_error_not_a_hang(simulator, sim_token, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("log-hang", app_id=app["id"], delay=30)
    client = AppPlatformClient(sim_token, simulator.url, log_read_timeout=0.3)
    error = raises("SERVICE_UNAVAILABLE", client.get_logs, app["id"], log_type="BUILD")
    assert error.retryable and error.details["url"].startswith(simulator.url + "/_logs/")


def test_log_url_must_be_http(client):
    error = raises("SERVICE_UNAVAILABLE", client._download_tail, "file:///etc/passwd", None)
    assert not error.retryable


def test_log_archive_error_status(client, simulator):
    error = raises("SERVICE_UNAVAILABLE", client._download_tail,
                   f"{simulator.url}/_logs/unknown/_all/BUILD.log", None)
    assert error.details["http_status"] == 404 and error.retryable


def test_log_type_is_checked(client):
    with pytest.raises(ValueError):
        client.get_logs("any", log_type="EVERYTHING")


def test_rollback_validate_create_commit_and_revert(client, simulator, make_app, sample_spec):
    app = make_app("v1.0.0")
    old = app["active_deployment"]["id"]
    simulator.sim.push_tag("odoo", "v1.1.0")
    client.update_app(app["id"], sample_spec("v1.1.0", name=app["spec"]["name"]))
    simulator.sim.clock.advance(60)

    check = client.validate_rollback(app["id"], old)
    assert check["valid"] is True and isinstance(check["warnings"], list)
    rollback = client.create_rollback(app["id"], old)
    assert client.get_app(app["id"])["pinned_deployment"]["id"] == rollback["id"]
    assert client.validate_rollback(app["id"], old)["valid"] is False
    pinned = raises("DEPLOYMENT_CREATE_FAILED", client.create_deployment, app["id"])
    assert pinned.details["http_status"] == 400 and "pinned" in pinned.message
    simulator.sim.clock.advance(60)
    assert client.commit_rollback(app["id"]) is None
    assert not client.get_app(app["id"]).get("pinned_deployment")
    raises("DEPLOYMENT_CREATE_FAILED", client.commit_rollback, app["id"])

    client.create_rollback(app["id"], old)
    simulator.sim.clock.advance(60)
    reverted = client.revert_rollback(app["id"])
    assert reverted["id"] and not client.get_app(app["id"]).get("pinned_deployment")
    raises("APP_NOT_FOUND", client.create_rollback, app["id"], "")


def test_tag_exists(client, simulator):
    simulator.sim.push_tag("odoo", "v1.0.0")
    simulator.sim.push_tag("team/odoo", "v2.0.0")
    assert client.tag_exists("odoo", "v1.0.0") is True
    assert client.tag_exists("odoo", "v1.0.1") is False
    assert client.tag_exists("team/odoo", "v2.0.0") is True
    assert client.tag_exists("odoo", "v1.0.0", registry="sim-registry") is True
    assert stat(simulator, "registry_get") == 1  # the registry name is cached
    error = raises("IMAGE_PULL_FAILURE", client.tag_exists, "nothing-here", "v1")
    assert error.details["http_status"] == 404
    raises("IMAGE_PULL_FAILURE", client.tag_exists, "odoo", "v1", registry="other-registry")
    raises("IMAGE_TAG_MISSING", client.tag_exists, "odoo", "")
    raises("IMAGE_PULL_FAILURE", client.tag_exists, "", "v1")


def test_tag_exists_pages_through_tags(client, simulator):
    for number in range(450):
        simulator.sim.push_tag("odoo", f"v0.{number}")
    assert client.tag_exists("odoo", "v0.449") is True  # newest first: on page 1
    assert client.tag_exists("odoo", "v0.0") is True
    assert client.tag_exists("odoo", "v9.9") is False
    assert stat(simulator, "registry_list_repositoryTags") == 1 + 3 + 3


# ------------------------------------------------------------ error mapping

def test_unknown_app_is_app_not_found_with_request_details(client):
    error = raises("APP_NOT_FOUND", client.get_app, "no/such-app")
    assert error.details["http_status"] == 404 and error.details["error_id"] == "not_found"
    assert error.details["request_id"] and not error.retryable
    assert error.message.endswith(".") and "\n" not in error.message


def test_spec_rejections(client, simulator, make_app, sample_spec):
    bad_size = sample_spec()
    bad_size["services"][0]["instance_size_slug"] = "apps-s-64vcpu-huge"
    raises("INVALID_RESOURCE_SPEC", client.propose, bad_size)
    bad_name = sample_spec(name="Not A Valid Name")
    error = raises("SPEC_VALIDATION_FAILED", client.propose, bad_name)
    assert error.details["http_status"] == 400 and error.details["message"]
    taken = make_app("v1.0.0")
    raises("SPEC_VALIDATION_FAILED", client.create_app, sample_spec(name=taken["spec"]["name"]))


def test_quota_refusal_is_insufficient_quota(client, simulator, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("quota", app_id=app["id"])
    error = raises("INSUFFICIENT_QUOTA", client.create_deployment, app["id"])
    assert error.details["http_status"] == 422
    spec = client.get_app(app["id"])["spec"]
    spec["services"][0]["instance_count"] = 2
    simulator.sim.set_scenario("quota", app_id=app["id"])
    error = raises("INSUFFICIENT_QUOTA", client.update_app, app["id"], spec)
    assert "quota" in error.message and not error.retryable


def test_a_limit_in_a_spec_message_is_not_mistaken_for_quota(client, make_app):
    app = make_app("v1.0.0")
    spec = client.get_app(app["id"])["spec"]
    spec["services"][0]["instance_count"] = 0
    raises("INVALID_RESOURCE_SPEC", client.update_app, app["id"], spec)


def test_an_unexpected_refusal_of_a_read(client, make_app):
    error = raises("SERVICE_UNAVAILABLE", client.list_deployments, make_app()["id"], per_page=0)
    assert error.details["http_status"] == 400 and not error.retryable


def test_bad_input_fails_before_any_request(client, simulator):
    raises("APP_NOT_FOUND", client.get_app, "")
    raises("APP_NOT_FOUND", client.get_deployment, "app", None)
    raises("APP_SPEC_SYNTAX_ERROR", client.propose, ["not", "a", "mapping"])
    raises("APP_SPEC_SYNTAX_ERROR", client.create_app, {"name": "x", "cost": math.nan})
    raises("APP_SPEC_SYNTAX_ERROR", client.update_app, "app", {"name": object()})
    assert client.request_count == 0 and simulator.sim.stats()["requests"] == 0
    raises("SERVICE_UNAVAILABLE", AppPlatformClient, "dop_v1_x", "ftp://example.com")


# ---------------------------------------------------------------- retries

def test_429_waits_retry_after_then_succeeds(client, simulator, waits, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("rate-limit-burst", count=2, retry_after=2)
    assert client.get_app(app["id"])["id"] == app["id"]
    assert waits == [2.0, 2.0] and stat(simulator, "apps_get") == 3
    assert client.request_count == 3
    assert client.rate_limit["limit"] == 5000 and client.rate_limit["remaining"] < 5000
    assert client.rate_limit["reset"] >= simulator.sim.clock.now()


def test_429_on_create_deployment_is_retried(client, simulator, waits, make_app):
    """A 429 proves the request was not processed, so even a create is repeated."""
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("rate-limit-burst", count=1, retry_after=1)
    assert client.create_deployment(app["id"])["id"]
    assert waits == [1.0] and stat(simulator, "apps_create_deployment") == 2


def test_429_exhausted_is_rate_limit_exceeded(client, simulator, waits):
    simulator.sim.set_scenario("rate-limit-burst", count=10, retry_after=1)
    error = raises("RATE_LIMIT_EXCEEDED", client.list_apps)
    assert error.retryable and error.details["retry_after"] == 1
    assert error.details["attempts"] == 4 and len(waits) == 3


def test_429_with_a_long_retry_after_gives_up_at_once(client, simulator, waits):
    simulator.sim.set_scenario("rate-limit-burst", count=1, retry_after=600)
    error = raises("RATE_LIMIT_EXCEEDED", client.list_apps)
    assert waits == [] and error.details["retry_after"] == 600


def _limited_simulator(per_hour):
    return SimulatorServer(Simulator(clock=ManualClock(), rate_limit_per_hour=per_hour)).start()


def test_hourly_limit_waits_until_the_reset_when_it_is_close(sim_token):
    with _limited_simulator(2) as server:
        clock = server.sim.clock
        waits = []

        def sleep(seconds):
            waits.append(seconds)
            clock.advance(seconds)

        client = AppPlatformClient(sim_token, server.url, sleep=sleep, clock=clock.now)
        client.list_apps()
        client.list_apps()
        clock.advance(3590)
        assert client.list_apps() == []
        assert waits == [10.0]


def test_hourly_limit_far_from_reset_backs_off_then_gives_up(sim_token):
    with _limited_simulator(1) as server:
        waits = []
        client = AppPlatformClient(sim_token, server.url, sleep=waits.append, max_retries=2,
                                   clock=server.sim.clock.now)
        client.list_apps()
        error = raises("RATE_LIMIT_EXCEEDED", client.list_apps)
        assert error.details["remaining"] == 0
        assert error.details["reset"] >= server.sim.clock.now() + 3599
        assert len(waits) == 2 and 0 <= waits[0] <= 1 and 0 <= waits[1] <= 2


def test_5xx_on_a_read_is_retried_with_capped_backoff(simulator, sim_token, waits, make_app):
    app = make_app("v1.0.0")
    client = AppPlatformClient(sim_token, simulator.url, sleep=waits.append, max_retries=5,
                               backoff_base=1.0, backoff_cap=3.0)
    simulator.sim.set_scenario("server-error", count=4)
    assert client.get_app(app["id"])["id"] == app["id"]
    assert len(waits) == 4
    assert all(0 <= wait <= bound for wait, bound in zip(waits, (1, 2, 3, 3), strict=True))
    simulator.sim.set_scenario("server-error", count=10)
    error = raises("SERVICE_UNAVAILABLE", client.get_app, app["id"])
    assert error.retryable and error.details["http_status"] == 500
    assert error.details["error_id"] == "server_error"


@pytest.mark.parametrize("scenario", ["server-error", "drop-connection", "malformed-body"])
def test_create_deployment_is_never_repeated_after_it_may_have_happened(
        client, simulator, waits, make_app, scenario):
    app = make_app("v1.0.0")
    before = len(client.list_deployments(app["id"]))
    simulator.sim.set_scenario(scenario, count=1, apply=True,
                               operation="apps_create_deployment")
    error = raises("DEPLOYMENT_CREATE_FAILED", client.create_deployment, app["id"])
    assert error.details["maybe_created"] is True and not error.retryable
    assert waits == [] and stat(simulator, "apps_create_deployment") == 1
    # It did happen: the caller must reconcile by reading the app, not retry.
    assert len(client.list_deployments(app["id"])) == before + 1


@pytest.mark.parametrize("scenario", ["drop-connection", "malformed-body"])
def test_reads_are_retried_after_a_dropped_connection_or_bad_body(
        client, simulator, waits, make_app, scenario):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario(scenario, count=2, operation="apps_get")
    assert client.get_app(app["id"])["id"] == app["id"]
    assert len(waits) == 2 and stat(simulator, "apps_get") == 3


@pytest.mark.parametrize("case", [
    ("server-error", 1), ("rate-limit-burst", 3), ("drop-connection", 1), ("malformed-body", 1)])
def test_a_tag_suffix_fault_is_ridden_out_by_the_retries(client, simulator, waits, make_app,
                                                         case):
    """A deployed tag whose fault the simulator makes transient (issue 9 defect 9): the
    reads after it retry and succeed instead of giving up."""
    scenario, retries = case
    app = make_app("v1.0.0")
    tag = f"v1.1.0--{scenario}"
    simulator.sim.push_tag("odoo", tag)
    client.update_app(app["id"], common.sample_spec(tag, name=app["spec"]["name"]))
    assert client.get_app(app["id"])["spec"]["services"][0]["image"]["tag"] == tag
    assert len(waits) == retries
    assert client.get_deployment(app["id"], app["active_deployment"]["id"])["phase"]
    assert len(waits) == retries


def test_a_bad_body_that_never_heals_is_service_unavailable(client, simulator, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("malformed-body", count=10, operation="apps_get")
    error = raises("SERVICE_UNAVAILABLE", client.get_app, app["id"])
    assert error.retryable and error.details["http_status"] == 200


def test_a_refused_connection_is_retried_even_for_a_create(closed_url, waits):
    client = AppPlatformClient("dop_v1_token", closed_url, sleep=waits.append, max_retries=2)
    error = raises("DEPLOYMENT_CREATE_FAILED", client.create_deployment, "app-id")
    assert error.retryable and error.details["maybe_created"] is False
    assert client.request_count == 3 and len(waits) == 2
    raises("SERVICE_UNAVAILABLE", client.get_app, "app-id")


def test_a_read_timeout_is_retried_for_reads_only(silent_url, waits):
    client = AppPlatformClient("dop_v1_token", silent_url, sleep=waits.append, max_retries=1,
                               read_timeout=0.2)
    error = raises("SERVICE_UNAVAILABLE", client.get_app, "app-id")
    assert error.retryable and client.request_count == 2
    error = raises("DEPLOYMENT_CREATE_FAILED", client.create_deployment, "app-id")
    assert error.details["maybe_created"] is True and client.request_count == 3


# ------------------------------------------------------------------ secrets

def test_the_token_never_leaks(caplog, waits):
    caplog.set_level(logging.DEBUG)
    unknown = SECRET.replace("0123", "9999")
    with SimulatorServer(Simulator(tokens={SECRET}, clock=ManualClock())) as server:
        client = AppPlatformClient(SECRET, server.url, sleep=waits.append, max_retries=2)
        assert SECRET not in repr(client) and SECRET not in repr(client.session.auth)
        server.sim.set_scenario("server-error", count=1)
        client.list_apps()
        server.sim.set_scenario("rate-limit-burst", count=5, retry_after=1)
        limited = raises("RATE_LIMIT_EXCEEDED", client.list_apps)
        refused = raises("UNAUTHORIZED", AppPlatformClient(unknown, server.url).list_apps)
    texts = [caplog.text, *(record.getMessage() for record in caplog.records)]
    for error in (limited, refused):
        texts += [str(error), repr(error), json.dumps(error.to_dict())]
    assert any("retry 1/2" in text for text in texts)
    assert not any(SECRET in text or unknown in text for text in texts)
    assert "Unable to authenticate you" in refused.message


def test_a_malformed_token_is_refused_without_echoing_it():
    with pytest.raises(DeployError) as info:
        AppPlatformClient("dop_v1_abc\r\nX-Injected: 1", "http://127.0.0.1:1")
    assert info.value.code == "UNAUTHORIZED" and "abc" not in str(info.value)
    raises("UNAUTHORIZED", AppPlatformClient, "", "http://127.0.0.1:1")


def test_transport_errors_are_replaced_not_chained(closed_url):
    """The original exception (whose request holds the auth header) is not attached."""
    client = AppPlatformClient(SECRET, closed_url, max_retries=0)
    error = raises("SERVICE_UNAVAILABLE", client.get_app, "app-id")
    assert "ConnectionError" in error.message and error.details["reason"]
    assert SECRET not in json.dumps(error.to_dict())
    assert error.__cause__ is None and error.__suppress_context__
