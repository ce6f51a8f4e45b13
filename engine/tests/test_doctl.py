"""The doctl backend against the simulator, through the stand-in ``doctl``
executable in ``bin/`` (real subprocesses, real loopback HTTP).

Where both can do the same call, the backend must return what the REST client
returns and raise the same error codes. A few tests use a tiny fake doctl
written to ``tmp_path`` to play a broken or leaking doctl binary.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.client import AppPlatformClient
from engine.doctl import LOG_TAIL_BYTES, DoctlBackend
from engine.errors import DeployError

STANDIN = Path(__file__).parent / "bin" / "doctl"
REPOSITORY = "shop"
SPEC = {
    "name": "shop",
    "region": "fra",
    "services": [{
        "name": "web",
        "http_port": 8069,
        "instance_size_slug": "apps-s-1vcpu-1gb",
        "instance_count": 1,
        "image": {"registry_type": "DOCR", "repository": REPOSITORY, "tag": "v1.0.0"},
        "envs": [{"key": "DO_DEPLOY_VERSION", "value": "v1.0.0", "scope": "RUN_TIME"}],
    }],
}
MISSING_APP = "00000000-0000-4000-8000-000000000404"


def spec_with(tag, **service):
    spec = json.loads(json.dumps(SPEC))
    spec["services"][0]["image"]["tag"] = tag
    spec["services"][0]["envs"][0]["value"] = tag
    spec["services"][0].update(service)
    return spec


@pytest.fixture
def argv_log(tmp_path, monkeypatch):
    """Every argv the stand-in receives, one JSON list per line."""
    path = tmp_path / "argv.jsonl"
    monkeypatch.setenv("DOCTL_STANDIN_LOG", str(path))

    def read():
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    return read


@pytest.fixture
def backend(simulator, sim_token, argv_log):
    return DoctlBackend(sim_token, doctl_path=str(STANDIN), api_url=simulator.url)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def rest(simulator, sim_token, sleeps):
    return AppPlatformClient(sim_token, base_url=simulator.url, sleep=sleeps.append,
                             max_retries=1)


@pytest.fixture
def app(simulator):
    simulator.sim.push_tag(REPOSITORY, "v1.0.0")
    simulator.sim.push_tag(REPOSITORY, "v1.1.0")
    return simulator.sim.create_app(SPEC)


def fake_doctl(tmp_path, script):
    """A doctl executable made of ``script`` (Python), to play a broken doctl."""
    path = tmp_path / "fake-doctl"
    path.write_text(f"#!{sys.executable}\nimport os, sys\n{script}\n")
    path.chmod(0o755)
    return str(path)


def raised(call, *args, **kwargs):
    with pytest.raises(DeployError) as info:
        call(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- same data


def test_apps_read_like_rest(backend, rest, app):
    assert backend.get_app(app["id"]) == rest.get_app(app["id"])
    assert backend.list_apps() == rest.list_apps()
    assert [item["id"] for item in backend.list_apps()] == [app["id"]]


def test_list_apps_empty(backend):
    assert backend.list_apps() == []


def test_create_app(backend, rest, simulator):
    simulator.sim.push_tag(REPOSITORY, "v1.0.0")
    created = backend.create_app(SPEC, project_id="9d5e4f5a-6f2b-4c52-9a57-3a3c7a6e8b10")
    assert created["spec"]["name"] == "shop"
    assert created["pending_deployment"]["id"]
    assert rest.get_app(created["id"])["id"] == created["id"]


def test_update_app_deploys_the_spec(backend, rest, app, argv_log):
    updated = backend.update_app(app["id"], spec_with("v1.1.0"))
    deployment_id = updated["pending_deployment"]["id"]
    assert deployment_id != app["active_deployment"]["id"]
    assert rest.get_deployment(app["id"], deployment_id)["spec"]["services"][0]["image"][
        "tag"] == "v1.1.0"
    backend.update_app(app["id"], spec_with("v1.1.0"), update_all_source_versions=True)
    first, second = argv_log()
    assert "--update-sources" not in first and "--update-sources" in second
    # doctl would retry a PUT on 5xx: a second deployment must never come from it.
    assert first[-1] == "--http-retry-max=0"


def without_suggestion(proposal):
    """The simulator makes up a fresh name suggestion on every call."""
    return {key: value for key, value in proposal.items() if key != "app_name_suggestion"}


def test_propose_like_rest(backend, rest, app):
    taken = backend.propose(SPEC)
    assert without_suggestion(taken) == without_suggestion(rest.propose(SPEC))
    assert taken["app_name_available"] is False
    proposed = backend.propose(spec_with("v1.1.0"), app_id=app["id"])
    assert proposed == rest.propose(spec_with("v1.1.0"), app_id=app["id"])
    assert proposed["app_cost"] == 12


def test_deployments_like_rest(backend, rest, app, argv_log):
    deployment = backend.create_deployment(app["id"])
    rebuilt = backend.create_deployment(app["id"], force_build=True)
    assert deployment["id"] != rebuilt["id"]
    assert backend.get_deployment(app["id"], deployment["id"]) == rest.get_deployment(
        app["id"], deployment["id"])
    everything = backend.list_deployments(app["id"], per_page=200)
    assert everything == rest.list_deployments(app["id"], per_page=200)
    assert len(everything) == 3
    assert backend.list_deployments(app["id"], page=2, per_page=2) == rest.list_deployments(
        app["id"], page=2, per_page=2)
    create_argv = [argv for argv in argv_log() if "create-deployment" in argv]
    assert ["--force-rebuild" in argv for argv in create_argv] == [False, True]
    assert all(argv[-1] == "--http-retry-max=0" for argv in create_argv)


def test_logs_like_rest(backend, rest, app, argv_log):
    deployment_id = app["active_deployment"]["id"]
    build_log = backend.get_logs(app["id"], deployment_id, component="web", log_type="BUILD")
    assert build_log
    assert build_log == rest.get_logs(app["id"], deployment_id, component="web",
                                      log_type="BUILD")
    # Without a deployment doctl reads the active one, as the REST client does.
    assert backend.get_logs(app["id"], component="web", log_type="RUN") == rest.get_logs(
        app["id"], component="web", log_type="RUN")
    logs_argv = [argv for argv in argv_log() if "logs" in argv]
    assert [arg for argv in logs_argv for arg in argv if arg.startswith("--type")] == [
        "--type=build", "--type=run"]


def test_logs_of_a_phase_never_reached_are_empty(backend, rest, simulator, app):
    simulator.sim.set_scenario("build-fail", app_id=app["id"])
    failed = backend.create_deployment(app["id"])
    assert backend.get_logs(app["id"], failed["id"], log_type="DEPLOY") == rest.get_logs(
        app["id"], failed["id"], log_type="DEPLOY")


def test_log_tail_is_capped(tmp_path, sim_token):
    lines = "".join(f"line {number:06d}\n" for number in range(10000))
    doctl = fake_doctl(tmp_path, f"sys.stdout.write({lines!r})")
    text = DoctlBackend(sim_token, doctl_path=doctl).get_logs(MISSING_APP, log_type="RUN")
    assert len(text.encode()) <= LOG_TAIL_BYTES
    assert text.startswith("line ") and text.endswith("line 009999\n")


def test_tag_exists(backend, rest, app, argv_log):
    assert backend.tag_exists(REPOSITORY, "v1.1.0") is True
    assert backend.tag_exists(REPOSITORY, "v9.9.9") is False
    assert backend.tag_exists(REPOSITORY, "v1.0.0", registry="sim-registry") is True
    assert rest.tag_exists(REPOSITORY, "v1.1.0") is True
    assert ["--registry=sim-registry"] == [
        arg for argv in argv_log() for arg in argv if arg.startswith("--registry")]
    for call in (backend.tag_exists, rest.tag_exists):
        assert raised(call, "no-such-repository", "v1").code == "IMAGE_PULL_FAILURE"
        assert raised(call, REPOSITORY, "v1", registry="other").code == "IMAGE_PULL_FAILURE"


# ------------------------------------------------- calls doctl cannot make


def test_rest_only_calls_use_the_same_token_and_url(backend, simulator, app, argv_log):
    assert backend.rate_limit == {"limit": None, "remaining": None, "reset": None}
    assert backend.get_app_health(app["id"])["components"]
    assert backend.registry_name() == "sim-registry"
    old_deployment = app["active_deployment"]["id"]
    backend.update_app(app["id"], spec_with("v1.1.0"))
    validation = backend.validate_rollback(app["id"], old_deployment)
    assert validation["valid"] is True
    rollback = backend.create_rollback(app["id"], old_deployment)
    assert backend.get_app(app["id"])["pinned_deployment"]["id"] == rollback["id"]
    reverted = backend.revert_rollback(app["id"])
    assert reverted["id"] not in (old_deployment, rollback["id"])
    backend.create_rollback(app["id"], old_deployment)
    assert backend.commit_rollback(app["id"]) is None
    assert "pinned_deployment" not in backend.get_app(app["id"])
    simulator.sim.set_timing(app["id"], build_seconds=600)
    running = backend.create_deployment(app["id"])
    assert backend.cancel_deployment(app["id"], running["id"])["phase"] == "CANCELED"
    assert backend.rest_client.base_url == simulator.url
    assert backend.rate_limit["remaining"] is not None
    assert backend.request_count == len(argv_log()) + backend.rest_client.request_count
    assert not any("rollback" in arg or "cancel" in arg for argv in argv_log() for arg in argv)


def test_injected_rest_client(sim_token, rest):
    backend = DoctlBackend(sim_token, rest_client=rest)
    assert backend.rest_client is rest


# ----------------------------------------------------------- error mapping


def assert_same_error(backend_call, rest_call, code):
    backend_error, rest_error = raised(*backend_call), raised(*rest_call)
    assert (backend_error.code, rest_error.code) == (code, code)
    assert backend_error.retryable == rest_error.retryable
    assert backend_error.details["operation"] == rest_error.details["operation"]
    assert backend_error.details.get("maybe_created") == rest_error.details.get("maybe_created")
    return backend_error


def test_unknown_token(simulator, rest, app):
    backend = DoctlBackend("dop_v1_wrong", doctl_path=str(STANDIN), api_url=simulator.url)
    wrong_rest = AppPlatformClient("dop_v1_wrong", base_url=simulator.url)
    error = assert_same_error((backend.get_app, app["id"]), (wrong_rest.get_app, app["id"]),
                              "UNAUTHORIZED")
    assert error.details["http_status"] == 401


def test_unknown_app(backend, rest):
    error = assert_same_error((backend.get_app, MISSING_APP), (rest.get_app, MISSING_APP),
                              "APP_NOT_FOUND")
    assert error.details["request_id"]
    assert_same_error((backend.create_deployment, MISSING_APP),
                      (rest.create_deployment, MISSING_APP), "APP_NOT_FOUND")
    assert raised(backend.get_logs, MISSING_APP).code == "APP_NOT_FOUND"


def test_app_name_that_is_not_an_id(backend):
    # doctl looks a non-UUID up by name before reading logs.
    error = raised(backend.get_logs, "not-a-uuid")
    assert error.code == "APP_NOT_FOUND"
    assert "Cannot find app" in error.message


def test_rejected_spec(backend, rest, app):
    bad_name = spec_with("v1.0.0")
    bad_name["name"] = "Shop!"
    assert_same_error((backend.update_app, app["id"], bad_name),
                      (rest.update_app, app["id"], bad_name), "SPEC_VALIDATION_FAILED")
    assert_same_error((backend.propose, bad_name), (rest.propose, bad_name),
                      "SPEC_VALIDATION_FAILED")
    too_big = spec_with("v1.0.0", instance_size_slug="apps-x-64vcpu")
    error = assert_same_error((backend.create_app, too_big), (rest.create_app, too_big),
                              "INVALID_RESOURCE_SPEC")
    assert error.details["http_status"] == 400
    assert "instance_size_slug" in error.message


def test_spec_doctl_cannot_read(backend, app):
    # doctl parses the spec itself and rejects fields godo does not know.
    unknown_field = dict(SPEC, colour="blue")
    error = raised(backend.update_app, app["id"], unknown_field)
    assert error.code == "SPEC_VALIDATION_FAILED"
    assert 'unknown field "colour"' in error.message


@pytest.mark.parametrize("case", [
    ("quota", {}, "INSUFFICIENT_QUOTA"),
    ("server-error", {"count": 2}, "DEPLOYMENT_CREATE_FAILED"),
    # DigitalOcean created the deployment, then failed to answer.
    ("server-error", {"count": 2, "apply": True}, "DEPLOYMENT_CREATE_FAILED"),
    ("drop-connection", {"count": 2}, "DEPLOYMENT_CREATE_FAILED"),
])
def test_create_deployment_refused(backend, rest, simulator, app, case):
    scenario, params, code = case
    simulator.sim.set_scenario(scenario, app_id=app["id"], **params)
    error = assert_same_error((backend.create_deployment, app["id"]),
                              (rest.create_deployment, app["id"]), code)
    assert error.details.get("maybe_created", False) is (scenario != "quota")


def test_server_error_on_reads(backend, rest, simulator, app):
    simulator.sim.set_scenario("server-error", app_id=app["id"], count=100)
    error = assert_same_error((backend.get_app, app["id"]), (rest.get_app, app["id"]),
                              "SERVICE_UNAVAILABLE")
    assert error.retryable
    # doctl retried the read five times itself before giving up.
    assert error.details["attempts"] == 6


def test_unreadable_answer(backend, rest, simulator, app):
    simulator.sim.set_scenario("malformed-body", app_id=app["id"], count=100)
    assert_same_error((backend.get_app, app["id"]), (rest.get_app, app["id"]),
                      "SERVICE_UNAVAILABLE")
    simulator.sim.set_scenario("drop-connection", app_id=app["id"], count=100)
    assert_same_error((backend.get_app, app["id"]), (rest.get_app, app["id"]),
                      "SERVICE_UNAVAILABLE")


def test_rate_limited(simulator, sim_token, rest, app):
    simulator.sim.set_scenario("rate-limit-burst", app_id=app["id"], count=100)
    backend = DoctlBackend(sim_token, doctl_path=str(STANDIN), api_url=simulator.url)
    error = assert_same_error((backend.get_app, app["id"]), (rest.get_app, app["id"]),
                              "RATE_LIMIT_EXCEEDED")
    assert error.details["http_status"] == 429


def test_api_unreachable(sim_token, tmp_path):
    backend = DoctlBackend(sim_token, doctl_path=str(STANDIN), api_url="http://127.0.0.1:9")
    read_error = raised(backend.list_apps)
    assert (read_error.code, read_error.retryable) == ("SERVICE_UNAVAILABLE", True)
    create_error = raised(backend.create_deployment, MISSING_APP)
    assert create_error.code == "DEPLOYMENT_CREATE_FAILED"
    # A refused connection proves nothing was created.
    assert create_error.details["maybe_created"] is False
    assert create_error.retryable


def test_doctl_missing(sim_token, tmp_path):
    for path in (tmp_path / "nowhere" / "doctl", tmp_path):
        error = raised(DoctlBackend(sim_token, doctl_path=str(path)).list_apps)
        assert error.code == "SERVICE_UNAVAILABLE"
        assert "doctl is not installed" in error.message
        assert str(path) in error.message
    not_executable = tmp_path / "doctl"
    not_executable.write_text("#!/bin/sh\n")
    error = raised(DoctlBackend(sim_token, doctl_path=str(not_executable)).list_apps)
    assert error.code == "SERVICE_UNAVAILABLE"


def test_timeout(backend, monkeypatch):
    monkeypatch.setenv("DOCTL_STANDIN_HANG", "1")
    backend.timeout = 0.5
    read_error = raised(backend.get_app, MISSING_APP)
    assert (read_error.code, read_error.retryable) == ("SERVICE_UNAVAILABLE", True)
    assert read_error.details["timeout"] == 0.5
    create_error = raised(backend.create_deployment, MISSING_APP)
    assert create_error.code == "DEPLOYMENT_CREATE_FAILED"
    assert (create_error.details["maybe_created"], create_error.retryable) == (True, False)


def test_older_doctl_without_a_flag(backend, app, monkeypatch):
    monkeypatch.setenv("DOCTL_STANDIN_MISSING_FLAGS", "--force-rebuild,--context")
    error = raised(backend.create_deployment, app["id"], force_build=True)
    assert error.code == "DEPLOYMENT_CREATE_FAILED"
    assert error.details["exit_code"] == 255
    assert error.details["maybe_created"] is False
    assert "unknown flag" in error.details["stderr"]
    read_error = raised(backend.get_app, app["id"])
    assert (read_error.code, read_error.retryable) == ("SERVICE_UNAVAILABLE", False)


@pytest.mark.parametrize("script, code", [
    # doctl without any token (not reachable through the backend, which always sets one)
    ("print('{\"errors\":[{\"detail\":\"Unable to initialize DigitalOcean API client: access "
     "token is required. (hint: run doctl auth init)\"}]}'); sys.exit(1)", "UNAUTHORIZED"),
    ("print('not json at all')", "SERVICE_UNAVAILABLE"),
    ("print('{\"id\": \"not-an-array\"}')", "SERVICE_UNAVAILABLE"),
    ("sys.stderr.write('segmentation fault'); sys.exit(2)", "SERVICE_UNAVAILABLE"),
    ("print('{\"errors\": [}'); sys.exit(1)", "SERVICE_UNAVAILABLE"),
    ("print('[]'); print('{\"errors\":[{\"detail\":\"GET http://x/v2/apps/a: 404 (request "
     "\\\\\"r1\\\\\") gone\"}]}'); sys.exit(1)", "APP_NOT_FOUND"),
])
def test_broken_doctl_output(tmp_path, sim_token, script, code):
    backend = DoctlBackend(sim_token, doctl_path=fake_doctl(tmp_path, script))
    error = raised(backend.get_app, MISSING_APP)
    assert error.code == code


def test_unreadable_answer_to_a_creating_call(tmp_path, sim_token):
    backend = DoctlBackend(sim_token, doctl_path=fake_doctl(tmp_path, "print('Notice: ok')"))
    error = raised(backend.create_deployment, MISSING_APP)
    assert error.code == "DEPLOYMENT_CREATE_FAILED"
    assert (error.details["maybe_created"], error.retryable) == (True, False)


def test_arguments_checked_before_running_doctl(backend, argv_log):
    assert raised(backend.get_app, "").code == "APP_NOT_FOUND"
    assert raised(backend.get_deployment, "a", None).code == "APP_NOT_FOUND"
    assert raised(backend.get_app, "--help").code == "APP_NOT_FOUND"
    assert raised(backend.tag_exists, "-t", "v1").code == "IMAGE_PULL_FAILURE"
    assert raised(backend.update_app, MISSING_APP, {}).code == "APP_SPEC_SYNTAX_ERROR"
    assert raised(backend.propose, {"name": float("nan")}).code == "APP_SPEC_SYNTAX_ERROR"
    assert raised(backend.create_app, ["not", "a", "spec"]).code == "APP_SPEC_SYNTAX_ERROR"
    assert raised(backend.tag_exists, "", "v1").code == "IMAGE_PULL_FAILURE"
    assert raised(backend.tag_exists, REPOSITORY, "").code == "IMAGE_TAG_MISSING"
    with pytest.raises(ValueError):
        backend.get_logs(MISSING_APP, log_type="everything")
    assert raised(DoctlBackend, "two words").code == "UNAUTHORIZED"
    assert argv_log() == []


# ------------------------------------------------------------------ secrets


def test_token_only_in_the_environment(backend, sim_token, app, argv_log, monkeypatch):
    # Stray settings of the caller's own doctl must not leak into the run.
    monkeypatch.setenv("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_someone_else")
    monkeypatch.setenv("DIGITALOCEAN_CONTEXT", "staging")
    monkeypatch.setenv("DIGITALOCEAN_API_URL", "http://127.0.0.1:9")
    backend.get_app(app["id"])
    backend.propose(SPEC)
    backend.create_deployment(app["id"])
    backend.get_logs(app["id"], component="web")
    backend.tag_exists(REPOSITORY, "v1.0.0")
    raised(backend.get_app, MISSING_APP)
    calls = argv_log()
    assert len(calls) == 6
    for argv in calls:
        assert not any(sim_token in arg for arg in argv)
        assert not any(arg in ("-t", "--access-token") for arg in argv)
        assert "--context=default" in argv


def test_standin_refuses_a_token_on_the_command_line(simulator, sim_token):
    env = dict(os.environ, DIGITALOCEAN_API_URL=simulator.url)
    env.pop("DIGITALOCEAN_ACCESS_TOKEN", None)
    completed = subprocess.run(
        [str(STANDIN), "apps", "list", "--access-token", sim_token, "--output", "json"],
        capture_output=True, text=True, env=env, check=False)
    assert completed.returncode == 1
    assert "no access token" in completed.stdout


def test_token_redacted_from_errors(tmp_path, sim_token):
    leaky = fake_doctl(tmp_path, (
        "token = os.environ['DIGITALOCEAN_ACCESS_TOKEN']\n"
        "sys.stderr.write('Authorization: Bearer ' + token + ' raw ' + token)\n"
        "print('{\"errors\":[{\"detail\":\"GET http://x/v2/apps?token=' + token + ': 500 ' "
        "+ token + '\"}]}')\n"
        "sys.exit(1)"))
    backend = DoctlBackend(sim_token, doctl_path=leaky)
    error = raised(backend.get_app, MISSING_APP)
    assert error.code == "SERVICE_UNAVAILABLE"
    everything = " ".join([str(error), repr(error), json.dumps(error.to_dict()), repr(backend)])
    assert sim_token not in everything
    assert sim_token[len("dop_v1_"):] not in everything


def test_doctl_shares_the_client_constants_without_loading_requests():
    """One definition of the API URL, log types and token rule for both backends, and the
    doctl backend still loads without the HTTP stack."""
    probe = ("import sys; import engine.doctl as d, engine.do_api as a; "
             "print('requests' in sys.modules, d.DEFAULT_API_URL is a.DEFAULT_API_URL)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[2],
                            capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["False", "True"]


def test_the_callers_retry_setting_reaches_every_command(simulator, sim_token, app, argv_log):
    """With ``max_retries=0`` (the pipeline's: a retry is its next poll), doctl gives up
    at the first 5xx instead of retrying five times, up to 30 s apart, on a cron thread."""
    backend = DoctlBackend(sim_token, doctl_path=str(STANDIN), api_url=simulator.url,
                           max_retries=0)
    simulator.sim.set_scenario("server-error", app_id=app["id"], count=100)
    error = raised(backend.get_app, app["id"])
    assert (error.code, error.retryable, error.details["attempts"]) == (
        "SERVICE_UNAVAILABLE", True, 1)
    assert all(argv.count("--http-retry-max=0") == 1 for argv in argv_log())


def test_every_doctl_run_asks_before_request_first(simulator, sim_token, app, argv_log):
    """The token's call budget sees doctl's runs as it sees the REST client's requests,
    and a refusal means doctl never runs."""
    asked = []

    def before_request(operation):
        asked.append(operation)
        if operation == "apps_create_deployment":
            raise DeployError("RATE_LIMIT_EXCEEDED", "Spent.", retryable=True)
    backend = DoctlBackend(sim_token, doctl_path=str(STANDIN), api_url=simulator.url,
                           before_request=before_request)
    backend.get_app(app["id"])
    backend.list_apps()
    assert asked == ["apps_get", "apps_list"]
    runs = len(argv_log())
    assert raised(backend.create_deployment, app["id"]).code == "RATE_LIMIT_EXCEEDED"
    assert len(argv_log()) == runs
