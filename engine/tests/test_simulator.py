"""The App Platform simulator over real loopback HTTP: API shapes, lifecycle, scenarios."""

import copy
import json
import re
import socket
import subprocess
import sys

import pydo
import pytest
import requests

from engine import appspec
from engine.client import AppPlatformClient
from engine.simulator import (
    DEFAULT_TOKEN,
    SCENARIOS,
    ManualClock,
    OffsetClock,
    Simulator,
    SimulatorServer,
)
from engine.simulator.demo import (
    DEMO_APPS,
    DEMO_REPOSITORY,
    DEMO_SCENARIO_TAGS,
    DEMO_TAGS,
    seed_demo,
)
from engine.simulator.state import monthly_cost, validate_spec
from engine.tests.common import auth_headers, sample_spec


class Api:
    """A thin requests wrapper: ``api.get("/v2/apps")`` with the simulator token."""

    def __init__(self, server, token=DEFAULT_TOKEN):
        self.url = server.url
        self.session = requests.Session()
        self.session.headers.update(auth_headers(token))

    def __getattr__(self, method):
        def call(path, **kwargs):
            kwargs.setdefault("timeout", 10)
            return self.session.request(method.upper(), self.url + path, **kwargs)
        return call


@pytest.fixture
def api(simulator):
    return Api(simulator)


@pytest.fixture
def clock(simulator):
    return simulator.sim.clock


def deployment(api, app_id, deployment_id):
    response = api.get(f"/v2/apps/{app_id}/deployments/{deployment_id}")
    assert response.status_code == 200
    return response.json()["deployment"]


def update(api, app, tag, **spec_changes):
    spec = sample_spec(tag, name=app["spec"]["name"])
    spec.update(spec_changes)
    return api.put(f"/v2/apps/{app['id']}", json={"spec": spec})


def deploy(api, simulator, app, tag):
    """Push ``tag`` and update the app to it; return the pending deployment."""
    simulator.sim.push_tag("odoo", tag)
    response = update(api, app, tag)
    assert response.status_code == 200, response.text
    return response.json()["app"]["pending_deployment"]


def error_body(response, status, error_id):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["id"] == error_id
    assert body["request_id"] == response.headers["x-request-id"]
    return body["message"]


def flat_steps(steps):
    for step in steps:
        yield step
        yield from flat_steps(step.get("steps", ()))


def failing_step(dep):
    [step] = [s for s in flat_steps(dep["progress"]["steps"])
              if s["status"] == "ERROR" and "steps" not in s]
    return step


# ---------------------------------------------------------------------------
# transport, auth, errors
# ---------------------------------------------------------------------------

def test_unauthenticated_requests_get_do_error_body_and_rate_headers(simulator):
    response = requests.get(f"{simulator.url}/v2/apps", timeout=5)
    assert error_body(response, 401, "unauthorized") == "Unable to authenticate you."
    assert response.headers["ratelimit-limit"] == "5000"
    bad = requests.get(f"{simulator.url}/v2/apps", headers=auth_headers("dop_v1_wrong"),
                       timeout=5)
    assert bad.status_code == 401


def test_unknown_paths_and_methods(api):
    error_body(api.get("/v2/droplets"), 404, "not_found")
    error_body(api.get("/v2/apps/00000000-0000-4000-8000-000000000000"), 404, "not_found")
    error_body(api.patch("/v2/apps"), 405, "method_not_allowed")
    assert api.get("/elsewhere").status_code == 404


def test_request_body_must_be_a_json_object(api, make_app):
    app = make_app()
    message = error_body(api.post("/v2/apps", data="{not json",
                                  headers={"Content-Type": "application/json"}), 400,
                         "bad_request")
    assert "parse" in message
    error_body(api.post("/v2/apps", json=[1, 2]), 400, "bad_request")
    error_body(api.post("/v2/apps", json={}), 400, "bad_request")
    error_body(api.post(f"/v2/apps/{app['id']}/deployments", json={"force_build": "yes"}), 400,
               "bad_request")
    error_body(api.put(f"/v2/apps/{app['id']}", json={"spec": app["spec"],
                                                     "update_all_source_versions": "x"}),
               400, "bad_request")


def test_chunked_request_bodies_are_read(api):
    def chunks():
        yield json.dumps({"spec": sample_spec(name="chunked")}).encode()

    response = api.post("/v2/apps/propose", data=chunks(),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["app_cost"] == 24


def test_keep_alive_connection_is_reused(simulator):
    session = requests.Session()
    for _ in range(3):
        response = session.get(f"{simulator.url}/v2/apps", headers=auth_headers(), timeout=5)
        assert response.status_code == 200
    assert response.raw.version == 11


# ---------------------------------------------------------------------------
# apps
# ---------------------------------------------------------------------------

def test_create_app_returns_200_with_its_first_deployment(api, clock):
    spec = sample_spec(name="created")
    response = api.post("/v2/apps", json={"spec": spec, "project_id": "p"})
    assert response.status_code == 200
    app = response.json()["app"]
    assert app["spec"]["name"] == "created"
    assert app["spec"]["region"] == "fra"
    assert app["region"]["slug"] == "fra"
    assert app["pending_deployment"]["id"] == app["active_deployment"]["id"]
    assert app["pending_deployment"]["cause_details"]["type"] == "MANUAL"
    assert app["live_url"] == app["default_ingress"] == f"{api.url}/_ingress/{app['id']}"
    assert app["live_domain"] == api.url.split("://")[1]
    assert app["created_at"].endswith("Z") and "T" in app["created_at"]
    assert "in_progress_deployment" not in app
    error_body(api.post("/v2/apps", json={"spec": spec}), 409, "conflict")


def test_create_app_accepts_yaml(api):
    import yaml
    body = yaml.safe_dump({"spec": sample_spec(name="yaml-app")})
    response = api.post("/v2/apps", data=body, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 200
    assert response.json()["app"]["spec"]["name"] == "yaml-app"


def test_list_apps_pages_with_links_and_meta(api, make_app):
    apps = [make_app() for _ in range(3)]
    body = api.get("/v2/apps", params={"per_page": 2}).json()
    assert [a["id"] for a in body["apps"]] == [a["id"] for a in apps[:2]]
    assert body["meta"]["total"] == 3
    assert body["links"]["pages"]["next"].endswith("page=2")
    assert "prev" not in body["links"]["pages"]
    second = api.get("/v2/apps", params={"per_page": 2, "page": 2}).json()
    assert [a["id"] for a in second["apps"]] == [apps[2]["id"]]
    assert set(second["links"]["pages"]) == {"first", "prev"}
    assert api.get("/v2/apps", params={"per_page": 500}).status_code == 200
    error_body(api.get("/v2/apps", params={"page": 0}), 400, "bad_request")
    error_body(api.get("/v2/apps", params={"per_page": "x"}), 400, "bad_request")


def test_get_app_by_id_and_by_name(api, make_app):
    app = make_app(name="by-name")
    assert api.get(f"/v2/apps/{app['id']}").json()["app"]["id"] == app["id"]
    assert api.get("/v2/apps/ignored", params={"name": "by-name"}).json()["app"]["id"] == app["id"]
    error_body(api.get("/v2/apps/ignored", params={"name": "nope"}), 404, "not_found")


def test_delete_app(api, make_app):
    app = make_app()
    assert api.delete(f"/v2/apps/{app['id']}").json() == {"id": app["id"]}
    assert api.get(f"/v2/apps/{app['id']}").status_code == 404


def test_update_with_changed_spec_creates_the_pending_deployment(api, simulator, make_app):
    app = make_app()
    pending = deploy(api, simulator, app, "v1.1.0")
    assert pending["cause_details"]["digitalocean_user_action"]["name"] == "UPDATE_SPEC"
    assert pending["spec"]["services"][0]["image"]["tag"] == "v1.1.0"
    assert pending["previous_deployment_id"] == app["active_deployment"]["id"]
    unchanged = update(api, app, "v1.1.0").json()["app"]
    listed = api.get(f"/v2/apps/{app['id']}/deployments").json()
    assert listed["meta"]["total"] == 2
    # get/list show the most recent non-cancelled deployment as pending (godo#601)
    assert unchanged["pending_deployment"]["id"] == pending["id"]
    refreshed = api.put(f"/v2/apps/{app['id']}", json={
        "spec": sample_spec("v1.1.0", name=app["spec"]["name"]),
        "update_all_source_versions": True}).json()["app"]
    assert refreshed["pending_deployment"]["id"] != pending["id"]


def test_update_validates_spec_and_name(api, make_app):
    app = make_app()
    other = make_app()
    message = error_body(update(api, app, "v1.0.0", name="Bad_Name"), 400, "bad_request")
    assert '"name"' in message
    error_body(update(api, app, "v1.0.0", name=other["spec"]["name"]), 409, "conflict")


# ---------------------------------------------------------------------------
# secrets: encrypted on submission, sent back encrypted
# ---------------------------------------------------------------------------

PLAIN_SECRET = "hunter2-admin-passwd"
PLAIN_CREDENTIALS = "deployer:ghp_plain_registry_token"


def secret_spec(name, tag="v1.0.0"):
    """The sample spec with an app-wide secret, a secret of the web service and a GHCR
    worker whose registry credentials are secret too."""
    spec = sample_spec(tag, name=name)
    spec["envs"] = [{"key": "SHARED_SECRET", "value": PLAIN_SECRET + "-shared",
                     "type": "SECRET"}]
    spec["services"][0]["envs"].append(
        {"key": "ADMIN_PASSWD", "value": PLAIN_SECRET, "type": "SECRET", "scope": "RUN_TIME"})
    spec["workers"][0]["image"] = {"registry_type": "GHCR", "repository": "acme/odoo",
                                   "tag": tag, "registry_credentials": PLAIN_CREDENTIALS}
    return spec


def secret_values(spec):
    return (spec["envs"][0]["value"], spec["services"][0]["envs"][-1]["value"],
            spec["workers"][0]["image"]["registry_credentials"])


def test_secrets_come_back_encrypted_and_only_so(api):
    response = api.post("/v2/apps", json={"spec": secret_spec("secret-app")})
    assert response.status_code == 200, response.text
    app = response.json()["app"]
    sealed = secret_values(app["spec"])
    for value in sealed:
        assert re.fullmatch(r"EV\[1:[A-Za-z0-9+/]{32}:[A-Za-z0-9+/=]+\]", value), value
    assert len(set(sealed)) == 3
    # The same strings on every read, in the app, its deployments and a proposal.
    again = api.get(f"/v2/apps/{app['id']}")
    assert secret_values(again.json()["app"]["spec"]) == sealed
    deployments = api.get(f"/v2/apps/{app['id']}/deployments")
    assert secret_values(deployments.json()["deployments"][0]["spec"]) == sealed
    proposal = api.post("/v2/apps/propose", json={"spec": again.json()["app"]["spec"],
                                                   "app_id": app["id"]})
    assert secret_values(proposal.json()["spec"]) == sealed
    for answer in (response, again, deployments, proposal):
        assert PLAIN_SECRET not in answer.text
        assert "ghp_plain_registry_token" not in answer.text


def test_pipeline_spec_round_trip_keeps_the_secrets(simulator, sim_token):
    """Steps 1 and 2 over HTTP: read the live spec, set the tag, validate, propose and PUT
    it back. The encrypted values go back unchanged and the new deployment's containers
    get the original secrets."""
    client = AppPlatformClient(sim_token, simulator.url)
    simulator.sim.push_tag("acme/odoo", "v1.1.0")
    app = client.create_app(secret_spec("round-trip"))
    sealed = secret_values(app["spec"])
    live = client.get_app(app["id"])
    new_spec = appspec.set_image_tag(live["spec"], "v1.1.0")
    appspec.load_spec(appspec.dump_spec(new_spec))
    appspec.validate_spec(new_spec)
    client.propose(new_spec, app_id=app["id"])
    updated = client.update_app(app["id"], new_spec)
    deployment = updated["pending_deployment"]
    assert deployment["id"] != app["active_deployment"]["id"]
    assert secret_values(deployment["spec"]) == sealed
    simulator.sim.clock.advance(1)
    assert client.get_app(app["id"])["active_deployment"]["id"] == deployment["id"]
    envs = simulator.sim.plain_envs(app["id"])
    assert envs["web"]["ADMIN_PASSWD"] == PLAIN_SECRET
    assert envs["web"]["SHARED_SECRET"] == envs["worker"]["SHARED_SECRET"] == (
        PLAIN_SECRET + "-shared")
    assert envs["web"]["DO_DEPLOY_VERSION"] == "v1.1.0"


def test_secret_sent_back_must_decrypt_and_plain_one_is_encrypted_anew(api, simulator):
    app = api.post("/v2/apps", json={"spec": secret_spec("resent")}).json()["app"]
    deployments = len(api.get(f"/v2/apps/{app['id']}/deployments").json()["deployments"])
    spec = copy.deepcopy(app["spec"])
    sealed = spec["services"][0]["envs"][-1]["value"]
    for bad in (sealed[:-3] + "AA]", sealed.replace("EV[1:", "EV[1:AAAA"), "EV[2:x:y]"):
        spec["services"][0]["envs"][-1]["value"] = bad
        message = error_body(api.put(f"/v2/apps/{app['id']}", json={"spec": spec}), 400,
                             "bad_request")
        assert '"services[0].envs[1].value"' in message
        assert bad not in message
    # Sent again as a plain value, the secret is encrypted anew: a change, so a deployment.
    spec["services"][0]["envs"][-1]["value"] = PLAIN_SECRET
    updated = api.put(f"/v2/apps/{app['id']}", json={"spec": spec}).json()["app"]
    assert updated["spec"]["services"][0]["envs"][-1]["value"] not in (PLAIN_SECRET, sealed)
    assert len(api.get(f"/v2/apps/{app['id']}/deployments").json()["deployments"]) == (
        deployments + 1)
    assert simulator.sim.plain_envs(app["id"])["web"]["ADMIN_PASSWD"] == PLAIN_SECRET


# ---------------------------------------------------------------------------
# deployments: phases, progress, supersede, cancel
# ---------------------------------------------------------------------------

def test_phases_and_progress_advance_with_the_clock(api, simulator, clock, make_app):
    app = make_app(build_seconds=20, deploy_seconds=10)
    pending = deploy(api, simulator, app, "v1.1.0")
    seen = []
    for step in (0, 2, 18, 1, 9):
        clock.advance(step)
        current = deployment(api, app["id"], pending["id"])
        progress = current["progress"]
        assert progress["total_steps"] == 9  # 2 components: 1 + 2 + 1 + 4 + 1
        assert (progress["pending_steps"] + progress["running_steps"] + progress["success_steps"]
                + progress["error_steps"]) == progress["total_steps"]
        assert (progress["success_steps"] == progress["total_steps"]) == (
            current["phase"] == "ACTIVE")
        assert progress["error_steps"] == 0
        seen.append(current["phase"])
    assert seen == ["PENDING_BUILD", "BUILDING", "PENDING_DEPLOY", "DEPLOYING", "ACTIVE"]
    assert current["phase_last_updated_at"] == current["updated_at"]
    assert current["timing"]["build_total"] == "20s"
    assert [s["name"] for s in current["progress"]["summary_steps"]] == ["build", "deploy"]
    assert current["services"][0]["name"] == "web" and current["services"][0][
        "source_commit_hash"]
    old = deployment(api, app["id"], app["active_deployment"]["id"])
    assert old["phase"] == "SUPERSEDED"
    live = api.get(f"/v2/apps/{app['id']}").json()["app"]
    assert live["active_deployment"]["id"] == pending["id"]
    assert "in_progress_deployment" not in live
    assert requests.get(live["live_url"] + "/api/v1/health", timeout=5).json()[
        "version"] == "v1.1.0"


def test_in_progress_deployment_is_shown_and_superseded_by_a_newer_one(api, make_app, clock):
    app = make_app(build_seconds=20, deploy_seconds=10)
    first = api.post(f"/v2/apps/{app['id']}/deployments", json={"force_build": True}).json()[
        "deployment"]
    assert first["cause_details"]["type"] == "MANUAL"
    clock.advance(5)
    current = api.get(f"/v2/apps/{app['id']}").json()["app"]
    assert current["in_progress_deployment"]["id"] == first["id"]
    assert current["active_deployment"]["id"] == app["active_deployment"]["id"]
    second = api.post(f"/v2/apps/{app['id']}/deployments", json={}).json()["deployment"]
    superseded = deployment(api, app["id"], first["id"])
    assert superseded["phase"] == "SUPERSEDED"
    assert superseded["progress"]["error_steps"] == 2  # web and worker were building
    clock.advance(30)
    assert deployment(api, app["id"], second["id"])["phase"] == "ACTIVE"


def test_cancel_running_deployment_and_finished_one_is_unchanged(api, make_app, clock):
    app = make_app(build_seconds=20, deploy_seconds=10)
    running = api.post(f"/v2/apps/{app['id']}/deployments", json={}).json()["deployment"]
    clock.advance(3)
    canceled = api.post(f"/v2/apps/{app['id']}/deployments/{running['id']}/cancel").json()[
        "deployment"]
    assert canceled["phase"] == "CANCELED"
    errored = [s for s in flat_steps(canceled["progress"]["steps"]) if s["status"] == "ERROR"]
    assert errored and errored[-1]["reason"]["code"] == "DeploymentCanceled"
    clock.advance(60)
    assert deployment(api, app["id"], running["id"])["phase"] == "CANCELED"
    active_id = app["active_deployment"]["id"]
    again = api.post(f"/v2/apps/{app['id']}/deployments/{active_id}/cancel")
    assert again.json()["deployment"]["phase"] == "ACTIVE"
    # a cancelled deployment is not the pending one of GET
    assert api.get(f"/v2/apps/{app['id']}").json()["app"]["pending_deployment"]["id"] == active_id
    error_body(api.post(f"/v2/apps/{app['id']}/deployments/nope/cancel"), 404, "not_found")


def test_list_deployments_newest_first_with_type_filter(api, make_app):
    app = make_app()
    created = [api.post(f"/v2/apps/{app['id']}/deployments", json={}).json()["deployment"]["id"]
               for _ in range(2)]
    body = api.get(f"/v2/apps/{app['id']}/deployments", params={"per_page": 1}).json()
    assert body["deployments"][0]["id"] == created[-1]
    assert body["meta"]["total"] == 3
    api.post(f"/v2/apps/{app['id']}/rollback", json={"deployment_id": created[0]})
    rollbacks = api.get(f"/v2/apps/{app['id']}/deployments",
                        params={"deployment_types": "MANUAL_ROLLBACK"}).json()
    assert rollbacks["meta"]["total"] == 1


def test_restart_creates_a_deployment(api, make_app):
    app = make_app()
    restarted = api.post(f"/v2/apps/{app['id']}/restart", json={"components": ["web"]})
    assert restarted.json()["deployment"]["cause_details"]["digitalocean_user_action"][
        "name"] == "RESTART"
    error_body(api.post(f"/v2/apps/{app['id']}/restart", json={"components": ["nope"]}), 400,
               "bad_request")


# ---------------------------------------------------------------------------
# propose and spec validation
# ---------------------------------------------------------------------------

def test_propose_computes_cost_and_name_availability(api, make_app):
    app = make_app(name="taken")
    spec = sample_spec(name="taken")
    spec["services"][0]["instance_count"] = 3
    body = api.post("/v2/apps/propose", json={"spec": spec}).json()
    assert body["app_cost"] == 12 * 3 + 12
    assert body["app_name_available"] is False
    assert body["app_name_suggestion"].startswith("taken-")
    assert body["app_is_static"] is False
    assert body["spec"]["services"][0]["instance_count"] == 3
    as_update = api.post("/v2/apps/propose", json={"spec": spec, "app_id": app["id"]}).json()
    assert as_update["app_name_available"] is True
    error_body(api.post("/v2/apps/propose", json={"spec": spec, "app_id": "nope"}), 404,
               "not_found")


@pytest.mark.parametrize(("change", "field"), [
    (lambda s: s["services"][0].update(instance_size_slug="apps-s-9vcpu-99gb"),
     "instance_size_slug"),
    (lambda s: s["services"][0].update(instance_count=0), "instance_count"),
    (lambda s: s["services"][0].update(instance_count=True), "instance_count"),
    (lambda s: s["workers"][0].update(name="web"), "used more than once"),
    (lambda s: s.update(name="-bad"), '"name"'),
    (lambda s: s.update(region="mars"), "region"),
    (lambda s: s.update(services="web"), "must be a list"),
    (lambda s: s.update(services=["web"]), "must be an object"),
    (lambda s: s["services"][0].pop("image"), "needs a source"),
    (lambda s: s["services"][0]["image"].update(registry_type="QUAY"), "registry_type"),
    (lambda s: s["services"][0]["image"].update(repository=""), "repository"),
    (lambda s: s["services"][0]["image"].update(digest="sha256:ab"), "mutually exclusive"),
    (lambda s: s["services"][0]["image"].update(registry_type="DOCKER_HUB"), "registry"),
    (lambda s: s["services"][0].update(image="odoo"), "must be an object"),
    (lambda s: s["services"][0]["envs"].append({"key": "1BAD"}), "env key"),
    (lambda s: (s.pop("services"), s.pop("workers")), "at least one component"),
])
def test_propose_names_the_first_problem(api, change, field):
    spec = sample_spec()
    change(spec)
    assert field in error_body(api.post("/v2/apps/propose", json={"spec": spec}), 400,
                               "bad_request")


def test_spec_must_be_an_object_and_costs_cover_static_sites():
    with pytest.raises(Exception, match="must be an object"):
        validate_spec("name: x")
    static = {"name": "site", "static_sites": [{"name": "docs", "git": {"repo_clone_url": "x"}}]}
    validate_spec(static)
    assert monthly_cost(static) == 3


def test_propose_of_static_app(api):
    static = {"name": "site", "static_sites": [{"name": "docs", "github": {"repo": "a/b"}}]}
    assert api.post("/v2/apps/propose", json={"spec": static}).json()["app_is_static"] is True


def test_propose_prices_static_apps_free_within_the_accounts_allowance(api, simulator):
    """As DigitalOcean: the account's first three static apps cost nothing, and propose
    counts the account's other static apps (an update does not count itself)."""
    def static(name):
        return {"name": name, "static_sites": [{"name": "docs", "github": {"repo": "a/b"}}]}

    first = api.post("/v2/apps/propose", json={"spec": static("site-0")}).json()
    assert (first["app_cost"], first["existing_static_apps"]) == (0, "0")
    assert first["max_free_static_apps"] == "3"
    apps = [simulator.sim.create_app(static(f"site-{n}")) for n in range(3)]
    fourth = api.post("/v2/apps/propose", json={"spec": static("site-4")}).json()
    assert (fourth["app_cost"], fourth["existing_static_apps"]) == (3, "3")
    update = api.post("/v2/apps/propose",
                      json={"spec": static("site-0"), "app_id": apps[0]["id"]}).json()
    assert (update["app_cost"], update["existing_static_apps"]) == (0, "2")


def test_regions_and_instance_sizes(api):
    regions = api.get("/v2/apps/regions").json()["regions"]
    assert {"nyc", "fra", "ams"} <= {r["slug"] for r in regions}
    sizes = api.get("/v2/apps/tiers/instance_sizes").json()["instance_sizes"]
    assert any(s["slug"] == "apps-s-1vcpu-1gb" and s["usd_per_month"] == "12.00" for s in sizes)
    one = api.get("/v2/apps/tiers/instance_sizes/apps-d-2vcpu-8gb").json()["instance_size"]
    assert one["cpu_type"] == "DEDICATED"
    error_body(api.get("/v2/apps/tiers/instance_sizes/huge"), 404, "not_found")


# ---------------------------------------------------------------------------
# rollback and pinning
# ---------------------------------------------------------------------------

def test_rollback_validate_create_pins_and_commit_unpins(api, simulator, make_app, clock):
    app = make_app()
    first_id = app["active_deployment"]["id"]
    second = deploy(api, simulator, app, "v1.1.0")
    path = f"/v2/apps/{app['id']}/rollback"
    check = api.post(f"{path}/validate", json={"deployment_id": first_id}).json()
    assert check["valid"] is True
    assert check["warnings"][0]["code"] == "image_source_missing_digest"
    assert check["warnings"][0]["components"] == ["web", "worker"]
    rollback = api.post(path, json={"deployment_id": first_id}).json()["deployment"]
    assert rollback["cause_details"]["type"] == "MANUAL_ROLLBACK"
    assert rollback["cloned_from"] == first_id
    assert rollback["spec"]["services"][0]["image"]["tag"] == "v1.0.0"
    pinned = api.get(f"/v2/apps/{app['id']}").json()["app"]
    assert pinned["pinned_deployment"]["id"] == rollback["id"]
    assert pinned["spec"]["services"][0]["image"]["tag"] == "v1.0.0"
    again = api.post(f"{path}/validate", json={"deployment_id": second["id"]}).json()
    assert again["valid"] is False and again["error"]["code"] == "app_pinned"
    assert "pinned" in error_body(api.post(f"/v2/apps/{app['id']}/deployments", json={}), 400,
                                  "bad_request")
    error_body(update(api, app, "v1.1.0"), 400, "bad_request")
    error_body(api.post(path, json={"deployment_id": second["id"]}), 400, "bad_request")
    committed = api.post(f"{path}/commit")
    assert committed.status_code == 200 and committed.content == b""
    assert "pinned_deployment" not in api.get(f"/v2/apps/{app['id']}").json()["app"]
    error_body(api.post(f"{path}/commit"), 400, "bad_request")
    error_body(api.post(f"{path}/revert"), 400, "bad_request")
    clock.advance(1)
    assert api.post(f"/v2/apps/{app['id']}/deployments", json={}).status_code == 200


def test_rollback_revert_redeploys_the_spec_from_before(api, simulator, make_app):
    app = make_app()
    first_id = app["active_deployment"]["id"]
    deploy(api, simulator, app, "v1.1.0")
    path = f"/v2/apps/{app['id']}/rollback"
    api.post(path, json={"deployment_id": first_id})
    reverted = api.post(f"{path}/revert").json()["deployment"]
    assert reverted["spec"]["services"][0]["image"]["tag"] == "v1.1.0"
    assert reverted["cause_details"]["digitalocean_user_action"]["name"] == "REVERT_APP_ROLLBACK"
    current = api.get(f"/v2/apps/{app['id']}").json()["app"]
    assert "pinned_deployment" not in current
    assert current["spec"]["services"][0]["image"]["tag"] == "v1.1.0"


def test_rollback_with_skip_pin_and_invalid_targets(api, simulator, make_app):
    app = make_app()
    first_id = app["active_deployment"]["id"]
    simulator.sim.set_scenario("build-fail", app_id=app["id"], count=1)
    failed = deploy(api, simulator, app, "v1.1.0")
    path = f"/v2/apps/{app['id']}/rollback"
    never = api.post(f"{path}/validate", json={"deployment_id": failed["id"]}).json()
    assert never == {"valid": False, "warnings": never["warnings"],
                     "error": {"code": "incompatible_phase", "message": never["error"]["message"]}}
    error_body(api.post(f"{path}/validate", json={}), 400, "bad_request")
    error_body(api.post(f"{path}/validate", json={"deployment_id": first_id, "skip_pin": 1}),
               400, "bad_request")
    error_body(api.post(f"{path}/validate", json={"deployment_id": "nope"}), 404, "not_found")
    rollback = api.post(path, json={"deployment_id": first_id, "skip_pin": True})
    assert rollback.status_code == 200
    assert "pinned_deployment" not in api.get(f"/v2/apps/{app['id']}").json()["app"]


def test_rollback_checks_region_and_digest(api, simulator, make_app):
    spec = sample_spec(name="digests")
    simulator.sim.push_tag("odoo", "v1.0.0")
    digest = simulator.sim.registry.tags("odoo")[0]["manifest_digest"]
    for component in (spec["services"][0], spec["workers"][0]):
        component["image"] = {"registry_type": "DOCR", "repository": "odoo", "digest": digest}
    app = make_app(spec=spec)
    first_id = app["active_deployment"]["id"]
    check = api.post(f"/v2/apps/{app['id']}/rollback/validate",
                     json={"deployment_id": first_id}).json()
    assert check == {"valid": True, "warnings": []}
    moved = copy.deepcopy(spec)
    moved["region"] = "ams"
    assert api.put(f"/v2/apps/{app['id']}", json={"spec": moved}).status_code == 200
    check = api.post(f"/v2/apps/{app['id']}/rollback/validate",
                     json={"deployment_id": first_id}).json()
    assert check["error"]["code"] == "region_conflict"


# ---------------------------------------------------------------------------
# logs
# ---------------------------------------------------------------------------

def test_logs_point_at_historic_urls_that_serve_text(api, simulator, make_app, clock):
    app = make_app(build_seconds=20, deploy_seconds=10)
    pending = deploy(api, simulator, app, "v1.1.0")
    base = f"/v2/apps/{app['id']}/deployments/{pending['id']}"
    error_body(api.get(f"{base}/logs"), 400, "bad_request")
    error_body(api.get(f"{base}/logs", params={"type": "build"}), 400, "bad_request")
    message = error_body(api.get(f"{base}/logs", params={"type": "DEPLOY"}), 400, "bad_request")
    assert "DEPLOY" in message
    body = api.get(f"{base}/components/web/logs", params={
        "type": "BUILD", "follow": "false", "tail_lines": "-1",
        "pod_connection_timeout": "3m"}).json()
    assert body["live_url"] == ""
    [url] = body["historic_urls"]
    assert url == f"{api.url}/_logs/{pending['id']}/web/BUILD.log"
    assert "building..." in requests.get(url, timeout=5).text
    clock.advance(30)
    text = requests.get(url, timeout=5).text
    assert "build complete" in text and "pulling image" in text
    aggregate = api.get(f"{base}/logs", params={"type": "DEPLOY", "component_name": "worker"})
    assert "/worker/DEPLOY.log" in aggregate.json()["historic_urls"][0]
    deploy_text = requests.get(aggregate.json()["historic_urls"][0], timeout=5).text
    assert "deployed" in deploy_text
    everything = api.get(f"{base}/logs", params={"type": "BUILD"}).json()["historic_urls"][0]
    assert "web " in requests.get(everything, timeout=5).text
    active = api.get(f"/v2/apps/{app['id']}/components/web/logs", params={"type": "RUN"}).json()
    assert "running on 0.0.0.0:8069" in requests.get(active["historic_urls"][0], timeout=5).text
    assert api.get(f"/v2/apps/{app['id']}/logs", params={"type": "RUN"}).status_code == 200
    error_body(api.get(f"{base}/components/nope/logs", params={"type": "BUILD"}), 404,
               "not_found")
    assert requests.get(f"{api.url}/_logs/nope/web/BUILD.log", timeout=5).status_code == 404
    assert requests.get(f"{api.url}/_logs/x", timeout=5).status_code == 404


def test_active_logs_need_an_active_deployment(api):
    created = api.post("/v2/apps", json={"spec": sample_spec(name="fresh")}).json()["app"]
    # POST /v2/apps uses the simulator's default timing (0 s): live at once
    assert api.get(f"/v2/apps/{created['id']}/logs", params={"type": "RUN"}).status_code == 200
    slow = Simulator(clock=ManualClock(), build_seconds=5, deploy_seconds=5)
    with SimulatorServer(slow) as server:
        other = Api(server)
        app = other.post("/v2/apps", json={"spec": sample_spec(name="slow")}).json()["app"]
        assert app["live_url"] == ""
        error_body(other.get(f"/v2/apps/{app['id']}/logs", params={"type": "RUN"}), 404,
                   "not_found")
        dep = app["pending_deployment"]["id"]
        error_body(other.get(f"/v2/apps/{app['id']}/deployments/{dep}/logs",
                             params={"type": "RUN"}), 400, "bad_request")
        assert requests.get(f"{app['default_ingress']}/web/login", timeout=5).status_code == 503
        other.post(f"/v2/apps/{app['id']}/deployments/{dep}/cancel")
        url = other.get(f"/v2/apps/{app['id']}/deployments/{dep}/logs",
                        params={"type": "BUILD"}).json()["historic_urls"][0]
        assert "canceled" in requests.get(url, timeout=5).text


def test_log_hang_makes_the_log_url_never_answer_promptly(api, simulator, make_app):
    app = make_app()
    simulator.sim.set_scenario("log-hang", app_id=app["id"])
    url = api.get(f"/v2/apps/{app['id']}/logs", params={"type": "BUILD"}).json()[
        "historic_urls"][0]
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, timeout=(5, 0.2))


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------

def test_registry_and_tag_paging(api, simulator):
    for tag in ("v1", "v2", "v3"):
        simulator.sim.push_tag("team/odoo", tag)
    registry = api.get("/v2/registry").json()["registry"]
    assert registry["name"] == "sim-registry"
    assert api.get("/v2/registries").json()["registries"][0]["name"] == "sim-registry"
    assert api.get("/v2/registries/sim-registry").status_code == 200
    error_body(api.get("/v2/registries/other"), 404, "not_found")
    page = api.get("/v2/registry/sim-registry/repositories/team%2Fodoo/tags",
                   params={"per_page": 2}).json()
    assert [t["tag"] for t in page["tags"]] == ["v3", "v2"]
    assert page["meta"]["total"] == 3
    assert "team%2Fodoo" in page["links"]["pages"]["next"]
    assert page["tags"][0]["manifest_digest"].startswith("sha256:")
    same = api.get("/v2/registries/sim-registry/repositories/team%2Fodoo/tags").json()
    assert same["meta"]["total"] == 3
    error_body(api.get("/v2/registry/sim-registry/repositories/nope/tags"), 404, "not_found")
    repositories = api.get("/v2/registry/sim-registry/repositories").json()
    assert repositories["repositories"][0]["tag_count"] == 3
    assert api.get("/v2/registries/sim-registry/repositoriesV2").status_code == 200
    repushed = simulator.sim.push_tag("team/odoo", "v1")
    assert repushed["manifest_digest"] != page["tags"][0]["manifest_digest"]


def test_missing_tag_in_known_repository_fails_the_deployment(api, simulator, make_app):
    app = make_app()
    response = update(api, app, "v9.9.9")
    failed = response.json()["app"]["pending_deployment"]
    assert failed["phase"] == "ERROR"
    step = failing_step(failed)
    assert step["reason"]["code"] == "ImagePullFailed"
    assert step["reason"]["message"].startswith("IMAGE_PULL:")
    assert failed["progress"]["error_steps"] == 1
    url = api.get(f"/v2/apps/{app['id']}/deployments/{failed['id']}/components/web/logs",
                  params={"type": "BUILD"}).json()["historic_urls"][0]
    assert "IMAGE_PULL" in requests.get(url, timeout=5).text
    elsewhere = sample_spec("v9.9.9", name=app["spec"]["name"], repository="unknown-repo")
    ok = api.put(f"/v2/apps/{app['id']}", json={"spec": elsewhere}).json()["app"]
    assert ok["pending_deployment"]["phase"] == "ACTIVE"


# ---------------------------------------------------------------------------
# rate limits
# ---------------------------------------------------------------------------

def test_burst_and_hourly_rate_limits(make_app):
    clock = ManualClock()
    with SimulatorServer(Simulator(clock=clock, rate_limit_per_minute=3,
                                   rate_limit_per_hour=5)) as server:
        api = Api(server)
        remaining = [int(api.get("/v2/apps").headers["ratelimit-remaining"]) for _ in range(3)]
        assert remaining == [4, 3, 2]
        limited = api.get("/v2/apps")
        assert error_body(limited, 429, "too_many_requests") == "API rate limit exceeded."
        assert limited.headers["retry-after"] == "60"
        assert int(limited.headers["ratelimit-reset"]) == int(clock.now()) + 3600
        clock.advance(61)
        assert [api.get("/v2/apps").status_code for _ in range(3)] == [200, 200, 429]
        assert "retry-after" not in api.get("/v2/apps").headers
        clock.advance(3600)
        assert api.get("/v2/apps").headers["ratelimit-remaining"] == "4"


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    ("build-fail", "BUILDING", "web", "BuildJobExitNonZero"),
    ("image-missing", "BUILDING", "web", "ImagePullFailed"),
    ("deploy-fail", "DEPLOYING", "deploy", "DeployContainerExitNonZero"),
    ("health-check-timeout", "DEPLOYING", "wait", "DeployContainerHealthChecksFailed"),
])
def test_failing_deployment_scenarios_by_tag_suffix(api, simulator, make_app, clock, case):
    scenario, phase_before, step_name, code = case
    app = make_app(build_seconds=20, deploy_seconds=10)
    pending = deploy(api, simulator, app, f"v1.4.0--{scenario}")
    fails_at = 20 if phase_before == "BUILDING" else 20 + (6 if step_name == "deploy" else 9)
    clock.advance(fails_at - 0.5)
    assert deployment(api, app["id"], pending["id"])["phase"] == phase_before
    clock.advance(0.5)
    failed = deployment(api, app["id"], pending["id"])
    assert failed["phase"] == "ERROR"
    step = failing_step(failed)
    assert (step["name"], step["component_name"], step["reason"]["code"]) == (
        step_name, "web", code)
    assert failed["progress"]["success_steps"] < failed["progress"]["total_steps"]
    clock.advance(60)
    current = api.get(f"/v2/apps/{app['id']}").json()["app"]
    assert current["active_deployment"]["id"] == app["active_deployment"]["id"]
    log_type = "BUILD" if phase_before == "BUILDING" else "DEPLOY"
    url = api.get(f"/v2/apps/{app['id']}/deployments/{pending['id']}/components/web/logs",
                  params={"type": log_type}).json()["historic_urls"][0]
    text = requests.get(url, timeout=5).text
    assert "✘" in text
    if scenario == "build-fail":
        assert "RUN pip install" in text
    if phase_before == "BUILDING":
        error_body(api.get(f"/v2/apps/{app['id']}/deployments/{pending['id']}/logs",
                           params={"type": "DEPLOY"}), 400, "bad_request")


def test_app_scenario_fails_the_worker_when_told_by_tag(api, simulator, make_app):
    app = make_app()
    spec = sample_spec("v1.0.0", name=app["spec"]["name"])
    spec["workers"][0]["image"]["tag"] = "v1.0.0-worker"
    simulator.sim.push_tag("odoo", "v1.0.0-worker")
    simulator.sim.set_scenario("deploy-fail", tag="v1.0.0-worker")
    pending = api.put(f"/v2/apps/{app['id']}", json={"spec": spec}).json()["app"][
        "pending_deployment"]
    assert failing_step(pending)["component_name"] == "worker"
    assert pending["progress"]["pending_steps"] > 0


def test_version_not_switched_keeps_the_old_version_live(api, simulator, make_app):
    app = make_app()
    simulator.sim.set_scenario("version-not-switched", app_id=app["id"])
    pending = deploy(api, simulator, app, "v1.1.0")
    assert deployment(api, app["id"], pending["id"])["phase"] == "ACTIVE"
    current = api.get(f"/v2/apps/{app['id']}").json()["app"]
    assert current["active_deployment"]["id"] == app["active_deployment"]["id"]
    assert deployment(api, app["id"], app["active_deployment"]["id"])["phase"] == "ACTIVE"
    health = requests.get(current["live_url"] + "/api/v1/health", timeout=5)
    assert health.json()["version"] == "v1.0.0"
    assert health.headers["X-Deployment-ID"] == app["active_deployment"]["id"]


def test_quota_scenario_answers_422(api, simulator, make_app):
    app = make_app()
    simulator.sim.set_scenario("quota", app_id=app["id"])
    assert "quota" in error_body(update(api, app, "v1.0.0", region="ams"), 422,
                                 "unprocessable_entity")
    assert "limit" in error_body(api.post(f"/v2/apps/{app['id']}/deployments", json={}), 422,
                                 "unprocessable_entity")
    simulator.sim.set_scenario("quota", tag="v7.0.0")
    error_body(api.post("/v2/apps", json={"spec": sample_spec("v7.0.0", name="new")}), 422,
               "unprocessable_entity")
    simulator.sim.set_scenario(None, app_id=app["id"])
    assert api.post(f"/v2/apps/{app['id']}/deployments", json={}).status_code == 200


def ingress(app, path, **kwargs):
    return requests.get(app["live_url"] + path, timeout=kwargs.pop("timeout", 5), **kwargs)


def test_ingress_serves_the_live_version(make_app, simulator):
    app = make_app("v1.2.0")
    health = ingress(app, "/api/v1/health")
    assert health.json() == {"status": "ok", "database": "connected", "version": "v1.2.0",
                             "deployment_id": app["active_deployment"]["id"]}
    assert health.headers["X-Deployment-ID"] == app["active_deployment"]["id"]
    assert ingress(app, "/web/health").json() == {"status": "pass"}
    assert "Login" in ingress(app, "/web/login").text
    assert "Database" in ingress(app, "/web/database/selector").text
    css = ingress(app, "/web/static/src/css/base.css")
    assert css.headers["Content-Type"].startswith("text/css")
    assert ingress(app, "/web/static/src/js/app.js").headers["Content-Type"].startswith(
        "application/javascript")
    assert ingress(app, "/nowhere").status_code == 404
    head = requests.head(app["live_url"] + "/web/login", timeout=5)
    assert head.status_code == 200 and head.content == b""
    missing = requests.get(f"{simulator.url}/_ingress/nope/web/login", timeout=5)
    assert missing.status_code == 404


def test_version_env_wins_over_the_image_tag(make_app):
    spec = sample_spec("v1.0.0", name="env-version")
    spec["services"][0]["envs"][0]["value"] = "2026.01.1"
    assert ingress(make_app(spec=spec), "/api/v1/health").json()["version"] == "2026.01.1"
    plain = sample_spec("v1.0.0", name="no-env")
    del plain["services"][0]["envs"]
    assert ingress(make_app(spec=plain), "/api/v1/health").json()["version"] == "v1.0.0"


def test_health_fail_once_then_ok_per_version(api, simulator, make_app):
    app = make_app(scenario="health-fail-once")
    assert ingress(app, "/api/v1/health").status_code == 503
    assert ingress(app, "/api/v1/health").status_code == 200
    deploy(api, simulator, app, "v1.1.0")
    assert ingress(app, "/api/v1/health").status_code == 503
    assert ingress(app, "/web/health").json() == {"status": "pass"}


def test_health_fail_always_and_app_health(api, simulator, make_app):
    app = make_app()
    healthy = api.get(f"/v2/apps/{app['id']}/health").json()["app_health"]["components"]
    assert {c["state"] for c in healthy} == {"HEALTHY"}
    simulator.sim.set_scenario("health-fail-always", app_id=app["id"])
    for _ in range(2):
        failing = ingress(app, "/api/v1/health")
        assert failing.status_code == 503 and failing.json()["status"] == "error"
    assert ingress(app, "/web/health").json() == {"status": "fail"}
    components = api.get(f"/v2/apps/{app['id']}/health").json()["app_health"]["components"]
    assert [(c["name"], c["state"], c["replicas_ready"]) for c in components] == [
        ("web", "UNHEALTHY", 0), ("worker", "UNHEALTHY", 0)]
    run_url = api.get(f"/v2/apps/{app['id']}/logs", params={"type": "RUN"}).json()[
        "historic_urls"][0]
    assert " 503 " in requests.get(run_url, timeout=5).text


def test_db_down(make_app, api):
    app = make_app(scenario="db-down")
    response = ingress(app, "/api/v1/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert ingress(app, "/web/health").json() == {"status": "fail"}
    run_url = api.get(f"/v2/apps/{app['id']}/logs", params={"type": "RUN"}).json()[
        "historic_urls"][0]
    assert "OperationalError" in requests.get(run_url, timeout=5).text


def test_slow_health_and_slow_endpoints(make_app, simulator):
    slow = make_app()
    simulator.sim.set_scenario("health-slow", app_id=slow["id"], delay=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        ingress(slow, "/api/v1/health", timeout=(5, 0.2))
    simulator.sim.set_scenario("health-slow", app_id=slow["id"], delay=0.01)
    assert ingress(slow, "/api/v1/health").status_code == 200
    endpoints = make_app()
    simulator.sim.set_scenario("slow-endpoints", app_id=endpoints["id"], delay=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        ingress(endpoints, "/web/login", timeout=(5, 0.2))
    assert ingress(endpoints, "/api/v1/health").status_code == 200


def test_endpoint_static_and_api_errors(make_app, simulator):
    app = make_app()
    sim = simulator.sim
    sim.set_scenario("endpoint-missing", app_id=app["id"])
    assert ingress(app, "/web/login").status_code == 404
    sim.set_scenario("endpoint-missing", app_id=app["id"], path=["/web/database/selector"])
    assert ingress(app, "/web/login").status_code == 200
    assert ingress(app, "/web/database/selector").status_code == 404
    sim.set_scenario("static-missing", app_id=app["id"])
    assert ingress(app, "/web/static/src/css/base.css").status_code == 404
    sim.set_scenario("api-error", app_id=app["id"])
    assert ingress(app, "/api/v1/health").status_code == 500
    assert ingress(app, "/api/v1/other").json()["status"] == "error"
    sim.set_scenario("api-error", app_id=app["id"], status=200)
    error_200 = ingress(app, "/api/v1/health")
    assert error_200.status_code == 200 and error_200.json()["status"] == "error"
    assert set(sim.scenarios()[f"app:{app['id']}"]) == {
        "endpoint-missing", "static-missing", "api-error"}


def test_rate_limit_burst_scenario(api, simulator, make_app):
    app = make_app()
    simulator.sim.set_scenario("rate-limit-burst", app_id=app["id"])
    for _ in range(3):
        limited = api.get(f"/v2/apps/{app['id']}")
        error_body(limited, 429, "too_many_requests")
        assert limited.headers["retry-after"] == "1"
        assert "ratelimit-remaining" in limited.headers
    assert api.get(f"/v2/apps/{app['id']}").status_code == 200
    assert api.get("/v2/apps").status_code == 200


def test_server_error_scenario_and_apply(api, simulator, make_app):
    app = make_app()
    simulator.sim.set_scenario("server-error")
    error_body(api.get("/v2/apps"), 500, "server_error")
    assert api.get("/v2/apps").status_code == 200
    simulator.sim.set_scenario("server-error", apply=True, operation="apps_create_deployment")
    assert api.get(f"/v2/apps/{app['id']}").status_code == 200
    error_body(api.post(f"/v2/apps/{app['id']}/deployments", json={}), 500, "server_error")
    # the deployment happened although the answer was a 500
    assert api.get(f"/v2/apps/{app['id']}/deployments").json()["meta"]["total"] == 2


def test_drop_connection_closes_the_socket(api, simulator, make_app):
    app = make_app()
    simulator.sim.set_scenario("drop-connection", app_id=app["id"], count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get(f"/v2/apps/{app['id']}")
    assert api.get(f"/v2/apps/{app['id']}").status_code == 200
    simulator.sim.set_scenario("drop-connection", app_id=app["id"], apply=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post(f"/v2/apps/{app['id']}/deployments", json={})
    assert api.get(f"/v2/apps/{app['id']}/deployments").json()["meta"]["total"] == 2
    with socket.create_connection((simulator.host, simulator.port), timeout=5) as raw:
        simulator.sim.set_scenario("drop-connection")
        raw.sendall(f"GET /v2/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                    f"{DEFAULT_TOKEN}\r\n\r\n".encode())
        assert raw.recv(100) == b""


def test_malformed_body_scenario(api, simulator, make_app):
    app = make_app()
    simulator.sim.set_scenario("malformed-body", app_id=app["id"], count=2)
    error_body(api.get(f"/v2/apps/{app['id']}/deployments/nope"), 404, "not_found")
    for _ in range(2):
        broken = api.get(f"/v2/apps/{app['id']}")
        assert broken.status_code == 200
        with pytest.raises(ValueError):
            broken.json()
    assert api.get(f"/v2/apps/{app['id']}").json()["app"]["id"] == app["id"]


def fault_outcome(api, path):
    """What one GET of ``path`` met: its status, "dropped" or "malformed"."""
    try:
        response = api.get(path)
    except requests.exceptions.ConnectionError:
        return "dropped"
    try:
        response.json()
    except ValueError:
        return "malformed"
    return response.status_code


@pytest.mark.parametrize("scenario, faults", [
    ("server-error", [500]),
    ("rate-limit-burst", [429, 429, 429]),
    ("drop-connection", ["dropped"]),
    ("malformed-body", ["malformed"]),
])
def test_request_faults_chosen_by_tag_suffix_are_transient(api, simulator, make_app, scenario,
                                                           faults):
    """Issue 9 defect 9: the fault fires its documented count, then the app is usable again,
    rollback included, as DigitalOcean's transient errors are."""
    app = make_app()
    first_id = app["active_deployment"]["id"]
    deploy(api, simulator, app, f"v1.2.0--{scenario}")
    path = f"/v2/apps/{app['id']}"
    assert [fault_outcome(api, path) for _ in faults] == faults
    assert [fault_outcome(api, path) for _ in range(5)] == [200] * 5
    rollback = api.post(f"{path}/rollback", json={"deployment_id": first_id})
    assert rollback.status_code == 200, rollback.text
    assert api.post(f"{path}/rollback/commit").status_code == 200


def test_tag_suffix_faults_are_counted_per_app_and_per_deployment(api, simulator, make_app):
    sim = simulator.sim
    one, two = make_app(), make_app()
    for app in (one, two):
        deploy(api, simulator, app, "v1.2.0--server-error")
    armed = {"v1.2.0--server-error": {"server-error": {"count": 1}}}
    assert sim.scenarios() == {f"app:{app['id']} tag:{tag}": values
                               for app in (one, two) for tag, values in armed.items()}
    one_path, two_path = f"/v2/apps/{one['id']}", f"/v2/apps/{two['id']}"
    assert [fault_outcome(api, one_path) for _ in range(2)] == [500, 200]
    assert [fault_outcome(api, two_path) for _ in range(2)] == [500, 200]
    assert sim.scenarios() == {}
    # A new deployment of the same spec arms the fault again, once.
    assert api.post(f"{one_path}/deployments", json={}).status_code == 200
    assert [fault_outcome(api, one_path) for _ in range(2)] == [500, 200]
    assert fault_outcome(api, two_path) == 200
    # Deploying a plain tag disarms; so do deleting the app and a reset.
    deploy(api, simulator, two, "v1.3.0")
    assert fault_outcome(api, two_path) == 200
    deploy(api, simulator, one, "v1.4.0--malformed-body")
    assert len(sim.scenarios()) == 1
    assert api.delete(one_path).status_code == 200
    assert sim.scenarios() == {}
    sim.create_app(sample_spec("v1.5.0--malformed-body", name="armed-at-creation"))
    assert len(sim.scenarios()) == 1
    sim.reset()
    assert sim.scenarios() == {}


def test_scenario_selection_rules(api, simulator, make_app):
    sim = simulator.sim
    with pytest.raises(Exception, match="unknown scenario"):
        sim.set_scenario("meteor-strike")
    with pytest.raises(Exception, match="could not be found"):
        sim.set_scenario("quota", app_id="nope")
    app = make_app()
    sim.set_scenario("build-fail", app_id=app["id"], count=1)
    assert deploy(api, simulator, app, "v1.1.0")["phase"] == "ERROR"
    assert deploy(api, simulator, app, "v1.2.0")["phase"] == "ACTIVE"
    sim.set_scenario("deploy-fail", tag="v1.3.0")
    assert sim.scenarios() == {"tag:v1.3.0": {"deploy-fail": {}}}
    sim.set_scenario(None, tag="v1.3.0")
    sim.set_scenario("server-error", count=5)
    sim.set_scenario(None)
    assert sim.scenarios() == {}
    assert set(SCENARIOS) >= {"health-fail-once", "log-hang", "drop-connection"}


# ---------------------------------------------------------------------------
# control API, clocks, demo, server, CLI
# ---------------------------------------------------------------------------

def test_control_api_over_http(simulator):
    base = f"{simulator.url}/_sim"
    app = requests.post(f"{base}/apps", json={"spec": sample_spec(name="ctl"), "build_seconds": 4,
                                              "scenario": "db-down"}, timeout=5).json()
    assert app["active_deployment"]["phase"] == "ACTIVE"
    assert requests.get(f"{base}/apps/{app['id']}", timeout=5).json()["id"] == app["id"]
    timing = requests.post(f"{base}/apps/{app['id']}/timing", json={"deploy_seconds": 7},
                           timeout=5).json()
    assert timing == {"build_seconds": 4.0, "deploy_seconds": 7.0}
    chosen = requests.post(f"{base}/scenarios", json={
        "scenario": "health-slow", "app_id": app["id"], "params": {"delay": 0.5}},
        timeout=5).json()
    assert chosen["health-slow"] == {"delay": 0.5}
    assert f"app:{app['id']}" in requests.get(f"{base}/scenarios", timeout=5).json()
    assert requests.post(f"{base}/scenarios", json={"scenario": "nope"}, timeout=5
                         ).status_code == 400
    tag = requests.post(f"{base}/registry/tags", json={"repository": "odoo", "tag": "v2"},
                        timeout=5).json()
    assert tag["tag"] == "v2" and tag["registry_name"] == "sim-registry"
    assert requests.post(f"{base}/registry/tags", json={}, timeout=5).status_code == 400
    now = requests.get(f"{base}/clock", timeout=5).json()["now"]
    moved = requests.post(f"{base}/clock/advance", json={"seconds": 10}, timeout=5).json()
    assert moved["now"] == now + 10
    assert requests.post(f"{base}/clock/advance", json={"seconds": -1}, timeout=5
                         ).status_code == 400
    requests.get(f"{simulator.url}/v2/apps", headers=auth_headers(), timeout=5)
    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert stats["requests"] == 1 and stats["by_operation"] == {"apps_list": 1}
    assert requests.post(f"{base}/reset", timeout=5).json() == {}
    assert requests.get(f"{base}/stats", timeout=5).json()["requests"] == 0
    assert requests.get(f"{base}/apps/{app['id']}", timeout=5).status_code == 404
    assert requests.get(f"{base}/nothing", timeout=5).status_code == 404
    assert requests.post(f"{base}/nothing", timeout=5).status_code == 404


def test_create_app_with_fixed_id_conflicts(simulator):
    spec = sample_spec(name="fixed")
    simulator.sim.create_app(spec, app_id="6f1c2b9e-0000-4000-8000-000000000009")
    with pytest.raises(Exception, match="already exists"):
        simulator.sim.create_app(sample_spec(name="other"),
                                 app_id="6f1c2b9e-0000-4000-8000-000000000009")


def test_clocks():
    manual = ManualClock(start=100)
    assert manual.advance(5) == 105 == manual.now()
    with pytest.raises(ValueError):
        manual.advance(-1)
    offset = OffsetClock()
    before = offset.now()
    assert offset.advance(3600) >= before + 3600
    with pytest.raises(ValueError):
        offset.advance(-1)


def test_demo_seed(simulator):
    apps = seed_demo(simulator.sim)
    assert [a["id"] for a in apps] == [entry["id"] for entry in DEMO_APPS]
    assert [a["spec"]["name"] for a in apps] == ["odoo-staging", "odoo-production"]
    assert {entry["environment"] for entry in DEMO_APPS} == {"staging", "production"}
    assert [t["tag"] for t in simulator.sim.registry.tags(DEMO_REPOSITORY)] == list(
        reversed((*DEMO_TAGS, *DEMO_SCENARIO_TAGS)))
    # Each ready-made failure tag selects a scenario the simulator knows.
    assert all(tag.rpartition("--")[2] in SCENARIOS for tag in DEMO_SCENARIO_TAGS)
    web = apps[0]["spec"]["services"][0]
    assert (web["http_port"], web["instance_size_slug"]) == (8069, "apps-s-1vcpu-1gb")
    assert apps[0]["spec"]["workers"][0]["name"] == "worker"
    assert simulator.sim.get_app(apps[0]["id"])["active_deployment"]["phase"] == "ACTIVE"


def test_official_pydo_client_works_unchanged(simulator, make_app):
    """pydo only needs azure-core's ``enforce_https=False`` to send a token over plain http."""
    app = make_app()
    client = pydo.Client(token=DEFAULT_TOKEN, endpoint=simulator.url)
    http = {"enforce_https": False}
    assert client.apps.get(app["id"], **http)["app"]["id"] == app["id"]
    assert client.apps.list(**http)["meta"]["total"] == 1
    simulator.sim.push_tag("odoo", "v1.1.0")
    spec = sample_spec("v1.1.0", name=app["spec"]["name"])
    assert client.apps.validate_app_spec({"spec": spec}, **http)["app_cost"] == 24
    updated = client.apps.update(app["id"], {"spec": spec}, **http)["app"]
    created = client.apps.create_deployment(app["id"], {"force_build": True}, **http)
    fetched = client.apps.get_deployment(app["id"], created["deployment"]["id"], **http)
    assert fetched["deployment"]["phase"] == "ACTIVE"
    assert updated["pending_deployment"]["id"] != created["deployment"]["id"]
    first = app["active_deployment"]["id"]
    assert client.apps.validate_rollback(app["id"], {"deployment_id": first}, **http)["valid"]
    client.apps.create_rollback(app["id"], {"deployment_id": first}, **http)
    assert client.apps.commit_rollback(app["id"], **http) is None
    tags = client.registry.list_repository_tags("sim-registry", "odoo", **http)
    assert tags["meta"]["total"] == 2
    logs = client.apps.get_logs_aggregate(app["id"], first, type="BUILD", **http)
    assert logs["historic_urls"]


def test_server_context_manager_and_double_stop():
    server = SimulatorServer(Simulator())
    with server as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert running.sim.base_url == running.url
        with server as same:
            assert same is running
    server.stop()


def test_unexpected_errors_answer_500(simulator, make_app):
    app = make_app()
    simulator.sim._apps[app["id"]].deployments = None  # corrupt state on purpose
    response = requests.get(f"{simulator.url}/v2/apps/{app['id']}", headers=auth_headers(),
                            timeout=5)
    error_body(response, 500, "server_error")


def test_command_line_serves_the_demo():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.simulator", "--host", "127.0.0.1", "--port", str(port),
         "--seed", "demo", "--build-seconds", "1", "--deploy-seconds", "1"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert "simulator on" in process.stdout.readline()
        apps = requests.get(f"http://127.0.0.1:{port}/v2/apps", headers=auth_headers(),
                            timeout=5).json()["apps"]
        assert {a["id"] for a in apps} == {entry["id"] for entry in DEMO_APPS}
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_time_only_moves_when_the_clock_is_advanced(api, make_app):
    app = make_app(build_seconds=20, deploy_seconds=10)
    created = api.post(f"/v2/apps/{app['id']}/deployments", json={}).json()["deployment"]
    assert deployment(api, app["id"], created["id"])["phase"] == "PENDING_BUILD"
