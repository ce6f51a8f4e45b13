"""Reading deployments (engine.deployment) against real simulator deployments.

Deployments are created through the REST client over loopback HTTP and moved
through their phases with the simulator's ManualClock; polling is simulated by
stepping that clock by each interval :func:`poll_interval` returns.
"""

import copy

import pytest

from engine import deployment as dep
from engine.appspec import set_image_tag
from engine.client import AppPlatformClient
from engine.errors import DeployError

BUILD, DEPLOY = 360, 30


@pytest.fixture
def client(simulator, sim_token):
    return AppPlatformClient(sim_token, simulator.url, sleep=[].append)


@pytest.fixture
def clock(simulator):
    return simulator.sim.clock


def deploy(simulator, client, app_id, tag, *, push=True):
    """Ship ``tag`` the way step 2 does (PUT the retagged spec); return the new deployment id."""
    if push:
        simulator.sim.push_tag("odoo", tag)
    spec = set_image_tag(client.get_app(app_id)["spec"], tag)
    return client.update_app(app_id, spec)["pending_deployment"]["id"]


def finished(client, clock, app_id, deployment_id, seconds=BUILD + DEPLOY):
    clock.advance(seconds)
    return client.get_deployment(app_id, deployment_id)


def monitor(client, clock, app_id, deployment_id, expected):
    """Poll as step 4 does until the deployment leaves the running phases.

    Returns the last deployment read, the number of polls, and the phases seen.
    """
    started = clock.now()
    polls, phases = 0, []
    while True:
        deployment = client.get_deployment(app_id, deployment_id)
        polls += 1
        phase = deployment["phase"]
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if phase == "ACTIVE" or phase in dep.FAILED_PHASES:
            return deployment, polls, phases
        clock.advance(dep.poll_interval(phase, clock.now() - started, expected))


# --- failures of real deployments -----------------------------------------------------------

@pytest.mark.parametrize("scenario, expected", [
    ("build-fail", ("BUILD_FAILED", "BUILD",
                    "web: Build failed: step 'RUN pip install --no-cache-dir -r "
                    "requirements.txt' exited with code 1.")),
    ("deploy-fail", ("DEPLOY_ERROR", "DEPLOY",
                     "web: Deploy failed: component web exited with a non-zero exit code.")),
    ("health-check-timeout", ("HEALTH_CHECK_TIMEOUT", "DEPLOY",
                              "web: Health checks failed: component web did not pass its "
                              "health check on /web/health before the timeout.")),
])
def test_failed_deployment_gives_the_sop_code_and_component(
        simulator, client, make_app, scenario, expected):
    code, log_type, message = expected
    clock = simulator.sim.clock
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY, scenario=scenario)
    deployment_id = deploy(simulator, client, app["id"], "v1.1.0")
    deployment = finished(client, clock, app["id"], deployment_id)
    assert deployment["phase"] == "ERROR"
    error = dep.failure_error(deployment)
    assert (error.code, error.message) == (code, message)
    assert error.details["component"] == "web"
    assert error.details["log_type"] == log_type
    assert error.details["deployment_id"] == deployment_id
    # The details are enough to fetch the log that explains the failure.
    log = client.get_logs(app["id"], deployment_id, component=error.details["component"],
                          log_type=error.details["log_type"])
    assert "web" in log


def test_image_missing_is_an_image_pull_failure(simulator, client, clock, make_app):
    """A tag nobody pushed fails in the build with ImagePullFailed."""
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY)
    deployment_id = deploy(simulator, client, app["id"], "v9.9.9", push=False)
    error = dep.failure_error(finished(client, clock, app["id"], deployment_id))
    assert error.code == "IMAGE_PULL_FAILURE"
    assert error.message.startswith("web: IMAGE_PULL: failed to pull image ")
    assert "v9.9.9" in error.message
    assert error.details["component"] == "web"
    assert error.details["log_type"] == "BUILD"
    assert error.details["reason_code"] == "ImagePullFailed"


def test_image_missing_scenario_gives_the_same_code(simulator, client, clock, make_app):
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY, scenario="image-missing")
    deployment_id = deploy(simulator, client, app["id"], "v1.1.0")
    error = dep.failure_error(finished(client, clock, app["id"], deployment_id))
    assert (error.code, error.details["component"]) == ("IMAGE_PULL_FAILURE", "web")


def test_failures_without_a_reason_code_fall_back_on_the_failing_group(
        simulator, client, clock, make_app):
    """Reason codes DigitalOcean adds later still give a code: build or rollout."""
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY, scenario="build-fail")
    build_failed = finished(client, clock, app["id"],
                            deploy(simulator, client, app["id"], "v1.1.0"))
    simulator.sim.set_scenario(None, app_id=app["id"])
    simulator.sim.set_scenario("deploy-fail", app_id=app["id"])
    deploy_failed = finished(client, clock, app["id"],
                             deploy(simulator, client, app["id"], "v1.2.0"))
    for deployment, code in ((build_failed, "BUILD_FAILED"), (deploy_failed, "DEPLOY_ERROR")):
        unknown = copy.deepcopy(deployment)
        _set_reason(unknown["progress"], {"code": "SomethingNew"})
        error = dep.failure_error(unknown)
        assert error.code == code
        group = "build" if code == "BUILD_FAILED" else "deploy"
        assert error.message == f"web: The deployment failed in {group}."
    # ERROR with no failed step at all: a rollout failure of the app.
    bare = dict(deploy_failed, progress={"steps": []})
    error = dep.failure_error(bare)
    assert (error.code, error.message) == ("DEPLOY_ERROR",
                                           "The deployment failed in its rollout.")
    assert error.details["component"] is None


def _set_reason(progress, reason):
    """Replace the reason of the failing leaf step (reached through the real tree)."""
    steps = progress["steps"]
    while steps:
        item = next(step for step in steps if step["status"] == "ERROR")
        if not item.get("steps"):
            item["reason"] = reason
            return
        steps = item["steps"]


def test_failed_progress_step_is_the_deepest_error_with_its_group(
        simulator, client, clock, make_app):
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY, scenario="health-check-timeout")
    deployment = finished(client, clock, app["id"],
                          deploy(simulator, client, app["id"], "v1.1.0"))
    failed = dep.failed_progress_step(deployment["progress"])
    assert (failed["name"], failed["group"], failed["component_name"]) == ("wait", "deploy", "web")
    assert failed["reason"]["code"] == "DeployContainerHealthChecksFailed"
    active = client.get_deployment(app["id"], client.get_app(app["id"])["active_deployment"]["id"])
    assert dep.failed_progress_step(active["progress"]) is None
    assert dep.failed_progress_step({}) is None


def test_canceled_deployment_is_a_deploy_error_without_a_log(simulator, client, clock, make_app):
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY)
    deployment_id = deploy(simulator, client, app["id"], "v1.1.0")
    clock.advance(100)
    canceled = client.cancel_deployment(app["id"], deployment_id)
    assert canceled["phase"] == "CANCELED"
    error = dep.failure_error(canceled)
    assert error.code == "DEPLOY_ERROR"
    assert error.message == "DigitalOcean canceled the deployment before it became active."
    assert error.details["phase"] == "CANCELED"
    assert error.details["log_type"] is None


def test_superseded_deployment_is_a_deploy_error(simulator, client, clock, make_app):
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY)
    first = deploy(simulator, client, app["id"], "v1.1.0")
    clock.advance(60)
    second = deploy(simulator, client, app["id"], "v1.2.0")
    superseded = client.get_deployment(app["id"], first)
    assert superseded["phase"] == "SUPERSEDED"
    error = dep.failure_error(superseded)
    assert error.code == "DEPLOY_ERROR"
    assert error.message == ("Another deployment of the app superseded this one before it "
                             "became active.")
    assert error.details["log_type"] is None
    # The deployment that superseded it goes on to ACTIVE.
    assert finished(client, clock, app["id"], second)["phase"] == "ACTIVE"


def test_failure_error_refuses_a_deployment_that_did_not_fail(client, make_app):
    app = client.get_app(make_app()["id"])
    with pytest.raises(ValueError, match="ACTIVE"):
        dep.failure_error(app["active_deployment"])


# --- timeout --------------------------------------------------------------------------------

def test_a_deployment_over_its_limit_times_out(simulator, client, clock, make_app):
    """Step 4's watchdog: still building past the limit -> DEPLOY_TIMEOUT, then cancel."""
    limit = 300
    app = make_app(build_seconds=900, deploy_seconds=DEPLOY)
    deployment_id = deploy(simulator, client, app["id"], "v1.1.0")
    started = clock.now()
    while True:
        deployment = client.get_deployment(app["id"], deployment_id)
        elapsed = clock.now() - started
        if elapsed > limit:
            break
        clock.advance(dep.poll_interval(deployment["phase"], elapsed, dep.SOP_EXPECTED_SECONDS))
    error = dep.timeout_error(deployment["phase"], elapsed, limit)
    assert isinstance(error, DeployError)
    assert error.code == "DEPLOY_TIMEOUT"
    assert error.message == (f"The deployment was still BUILDING after {round(elapsed)} s "
                             f"(limit {limit} s).")
    assert error.details == {"phase": "BUILDING", "elapsed": elapsed, "limit": limit}
    assert client.cancel_deployment(app["id"], deployment_id)["phase"] == "CANCELED"


# --- poll_interval --------------------------------------------------------------------------

ELAPSED = [0, 1, 5, 29.5, 60, 120, 200, 300, 380, 389, 390, 391, 400, 600, 1200, 5000]
EXPECTED = [None, 0, 30, 60, 390, 1200]


@pytest.mark.parametrize("expected", EXPECTED)
@pytest.mark.parametrize("phase", dep.BUILD_PHASES + dep.DEPLOY_PHASES)
def test_poll_interval_is_bounded(phase, expected):
    for elapsed in ELAPSED:
        assert dep.MIN_POLL <= dep.poll_interval(phase, elapsed, expected) <= dep.MAX_EARLY_POLL


@pytest.mark.parametrize("phase", dep.DEPLOY_PHASES)
def test_poll_interval_is_short_while_deploying(phase):
    for expected in EXPECTED:
        for elapsed in ELAPSED:
            assert dep.poll_interval(phase, elapsed, expected) == dep.DEPLOYING_POLL


def test_poll_interval_is_sparse_early_in_a_long_build():
    for elapsed in range(0, 300, 10):
        assert dep.poll_interval("BUILDING", elapsed, 390) == dep.MAX_EARLY_POLL
    assert dep.poll_interval("PENDING_BUILD", 0, 1200) == dep.MAX_EARLY_POLL
    # Without history the interval grows with the time spent.
    assert dep.poll_interval("BUILDING", 10, None) == dep.MIN_POLL
    assert dep.poll_interval("BUILDING", 600, None) == dep.MAX_POLL


def test_poll_interval_is_dense_near_the_expected_end():
    for elapsed in range(380, 401):
        assert dep.poll_interval("BUILDING", elapsed, 390) == dep.MIN_POLL


def test_polls_before_the_expected_end_never_overshoot_it_by_more_than_min_poll():
    for expected in (60, 390, 1200):
        intervals = []
        elapsed = 0.0
        while elapsed < expected:
            interval = dep.poll_interval("BUILDING", elapsed, expected)
            assert elapsed + interval <= expected + dep.MIN_POLL
            intervals.append(interval)
            elapsed += interval
        # Approaching the end, polls only get denser.
        assert intervals == sorted(intervals, reverse=True)


@pytest.mark.parametrize("deploy_seconds", [30, 60, 120])
def test_active_is_seen_within_ten_seconds_whatever_the_build_length(deploy_seconds):
    """Step the policy over builds from 20 s to 20 min against a 390 s expectation."""
    for build in range(20, 1200, 7):
        elapsed, end = 0.0, build + deploy_seconds
        while elapsed < end:
            phase = "BUILDING" if elapsed < build else "DEPLOYING"
            elapsed += dep.poll_interval(phase, elapsed, dep.SOP_EXPECTED_SECONDS)
        assert elapsed - end <= 10, (build, deploy_seconds, elapsed - end)


def test_poll_interval_backs_off_when_a_build_overruns_its_expectation():
    overrun = [dep.poll_interval("BUILDING", 390 + late, 390) for late in (0, 20, 40, 80)]
    assert overrun == sorted(overrun) and overrun[-1] == dep.MAX_POLL


# --- history, polling simulation, version progression ---------------------------------------

def build_history(simulator, client, clock, app_id, timings):
    """Ship one version per (build, deploy) timing and let each go ACTIVE."""
    for number, (build, deploy_seconds) in enumerate(timings, start=1):
        simulator.sim.set_timing(app_id, build_seconds=build, deploy_seconds=deploy_seconds)
        deployment_id = deploy(simulator, client, app_id, f"v0.{number}.0")
        assert finished(client, clock, app_id, deployment_id,
                        build + deploy_seconds)["phase"] == "ACTIVE"
    simulator.sim.set_timing(app_id, build_seconds=BUILD, deploy_seconds=DEPLOY)


def test_expected_seconds_is_the_median_of_deployments_that_went_active(
        simulator, client, clock, make_app):
    app = make_app()
    # Only the first deployment, made with the app: nothing is known.
    assert dep.expected_seconds(client.list_deployments(app["id"])) is None
    build_history(simulator, client, clock, app["id"], [(300, 30), (360, 30), (600, 60)])
    # A deployment superseded while it was building never went ACTIVE: it does not count.
    building = deploy(simulator, client, app["id"], "v1.0.1")
    clock.advance(100)
    deploy(simulator, client, app["id"], "v1.0.2")
    history = client.list_deployments(app["id"])
    phases = {d["id"]: d["phase"] for d in history}
    assert phases[building] == "SUPERSEDED"
    assert sorted(phases.values()).count("SUPERSEDED") == 4  # three earlier versions + seed
    assert dep.expected_seconds(history) == 390
    latest = next(d for d in history if dep.deployment_seconds(d) == 660)
    assert latest["phase"] == "ACTIVE"
    assert dep.expected_seconds(history, exclude_id=latest["id"]) == 360


def expectation_after(simulator, client, clock, make_app, timings):
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY)
    build_history(simulator, client, clock, app["id"], timings)
    return app, dep.expected_seconds(client.list_deployments(app["id"]))


@pytest.mark.parametrize("history, max_polls", [
    (([(BUILD, DEPLOY)] * 3, 390), 16),         # history says exactly what happens
    (([(270, 30), (240, 60)], 300), 30),        # this build is slower than usual
    (([(450, 30), (420, 60)], 480), 20),        # this build is faster than usual
    (([], None), 16),                           # no history: the SOP's 390 s
])
def test_polling_a_390_second_deployment_costs_few_calls_and_sees_active_promptly(
        simulator, client, make_app, history, max_polls):
    """(timings of earlier deployments, expectation they give), bound on the polls."""
    timings, expected = history
    clock = simulator.sim.clock
    app, history_expectation = expectation_after(simulator, client, clock, make_app, timings)
    assert history_expectation == expected
    deployment_id = deploy(simulator, client, app["id"], "v2.0.0")
    deployment, polls, phases = monitor(
        client, clock, app["id"], deployment_id, expected or dep.SOP_EXPECTED_SECONDS)
    assert phases[-1] == "ACTIVE"
    assert "DEPLOYING" in phases  # the rollout was seen, so ACTIVE is caught within one poll
    assert dep.deployment_seconds(deployment) == BUILD + DEPLOY
    assert polls <= max_polls < (BUILD + DEPLOY) / dep.MIN_POLL / 2
    lag = clock.now() - dep.parse_time(deployment["phase_last_updated_at"])
    assert 0 <= lag <= 10
    assert lag <= dep.DEPLOYING_POLL


def test_polling_without_any_expectation_still_finds_active(simulator, client, clock, make_app):
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY)
    deployment_id = deploy(simulator, client, app["id"], "v2.0.0")
    deployment, polls, _phases = monitor(client, clock, app["id"], deployment_id, None)
    assert deployment["phase"] == "ACTIVE"
    assert polls < (BUILD + DEPLOY) / dep.MIN_POLL / 2
    assert clock.now() - dep.parse_time(deployment["phase_last_updated_at"]) <= 10


def test_versions_progress_with_the_clock(simulator, client, clock, make_app):
    app = make_app("v1.0.0", build_seconds=BUILD, deploy_seconds=DEPLOY)
    assert dep.spec_version(client.get_app(app["id"])["active_deployment"]["spec"]) == "v1.0.0"
    for tag in ("v1.1.0", "v1.2.0"):
        deployment_id = deploy(simulator, client, app["id"], tag)
        phases = [client.get_deployment(app["id"], deployment_id)["phase"]]
        for _ in range(3):
            clock.advance(100)
            phases.append(client.get_deployment(app["id"], deployment_id)["phase"])
        assert phases == ["PENDING_BUILD", "BUILDING", "BUILDING", "BUILDING"]
        clock.advance(BUILD + 1 - 300)
        assert client.get_deployment(app["id"], deployment_id)["phase"] == "PENDING_DEPLOY"
        clock.advance(10)
        deploying = client.get_deployment(app["id"], deployment_id)
        assert deploying["phase"] == "DEPLOYING"
        assert dep.poll_interval(deploying["phase"], BUILD + 15, 390) == dep.DEPLOYING_POLL
        # Still the previous version until the new one is ACTIVE.
        live = client.get_app(app["id"])["active_deployment"]
        assert dep.spec_version(live["spec"]) != tag
        clock.advance(DEPLOY)
        active = client.get_deployment(app["id"], deployment_id)
        assert active["phase"] == "ACTIVE"
        assert dep.spec_version(active["spec"]) == tag
        assert client.get_app(app["id"])["active_deployment"]["id"] == deployment_id
    history = client.list_deployments(app["id"])
    assert [dep.spec_version(d["spec"]) for d in history][:3] == ["v1.2.0", "v1.1.0", "v1.0.0"]
    assert dep.expected_seconds(history) == BUILD + DEPLOY


# --- parsing helpers ------------------------------------------------------------------------

def test_parse_time():
    assert dep.parse_time("2024-05-01T12:00:00Z") == 1714564800.0
    assert dep.parse_time(dep.ZERO_TIME) is None
    assert dep.parse_time("") is None
    assert dep.parse_time(None) is None
    assert dep.parse_time("yesterday") is None


@pytest.mark.parametrize("text, seconds", [
    # Go's RFC3339Nano, as DigitalOcean writes progress steps: Python 3.10's fromisoformat
    # takes only 3 or 6 fraction digits, so these were None there.
    ("2023-01-30T22:15:45.978756406Z", 1675116945.978756),
    ("2023-01-30T22:15:45.5Z", 1675116945.5),
    ("2023-01-30t22:15:45z", 1675116945.0),
    ("2023-01-30T23:15:45.123+01:00", 1675116945.123),
    ("2023-01-30 22:15:45-00:00", 1675116945.0),
])
def test_parse_time_reads_every_rfc3339_form_on_python_3_10(text, seconds):
    assert dep.parse_time(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize("text", [
    "2023-01-30T22:15:45", "2023-13-30T22:15:45Z", "2023-01-30T22:15:45.Z",
    "2023-01-30T22:15:45+0100", "2023-01-30T22:15Z",
])
def test_parse_time_refuses_what_rfc3339_does_not_allow(text):
    assert dep.parse_time(text) is None


@pytest.mark.parametrize("text, seconds", [
    ("390s", 390.0), ("6m30s", 390.0), ("1h2m3.5s", 3723.5), ("250ms", 0.25), ("0s", 0.0),
])
def test_parse_duration(text, seconds):
    assert dep.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", None, "soon"])
def test_unreadable_durations(text):
    assert dep.parse_duration(text) is None


def test_deployment_seconds_falls_back_on_progress_times(simulator, client, clock, make_app):
    app = make_app(build_seconds=BUILD, deploy_seconds=DEPLOY)
    deployment = finished(client, clock, app["id"],
                          deploy(simulator, client, app["id"], "v1.1.0"))
    assert dep.deployment_seconds(deployment) == BUILD + DEPLOY
    without_timing = {key: value for key, value in deployment.items() if key != "timing"}
    assert dep.deployment_seconds(without_timing) == BUILD + DEPLOY
    assert dep.deployment_seconds({"created_at": deployment["created_at"]}) is None
    assert dep.deployment_seconds({}) is None


def test_spec_version(sample_spec):
    spec = sample_spec("v3.1.0")
    assert dep.spec_version(spec) == "v3.1.0"
    spec["services"][0]["envs"][0]["value"] = "3.1.0-build.7"
    assert dep.spec_version(spec) == "3.1.0-build.7"
    spec["services"][0]["envs"] = []
    assert dep.spec_version(spec) == "v3.1.0"
    assert dep.spec_version({"name": "a", "services": [
        {"name": "web", "github": {"repo": "acme/odoo"}}]}) is None
    assert dep.spec_version(None) is None
    assert dep.spec_version(["not", "a", "spec"]) is None


def test_spec_version_of_the_retagged_components(sample_spec):
    """A deployment that retags the worker only is known by the worker's version."""
    spec = set_image_tag(sample_spec("v1.0.0"), "v1.1.0", ["worker"])
    assert dep.spec_version(spec) == "v1.0.0"
    assert dep.spec_version(spec, ["worker"]) == "v1.1.0"
    assert dep.spec_version(spec, ["web", "worker"]) == "v1.0.0"
    assert dep.spec_version(spec, ["nope"]) is None
    assert dep.spec_version(spec, []) == "v1.0.0"
