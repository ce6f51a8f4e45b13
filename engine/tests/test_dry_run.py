"""The dry run against the simulator: the diff, DigitalOcean's verdict and the cost, and the
app and its deployments left exactly as they were."""

import copy

import pytest

from engine.appspec import set_image_tag
from engine.client import AppPlatformClient
from engine.dry_run import dry_run, image_text, read_proposal, spec_diff
from engine.errors import DeployError
from engine.gates import spec_hash
from engine.simulator.state import INSTANCE_PRICES
from engine.tests.common import sample_spec


@pytest.fixture
def client(simulator, sim_token):
    return AppPlatformClient(sim_token, simulator.url, sleep=lambda _s: None, max_retries=0,
                             clock=simulator.sim.clock.now)


def snapshot(client, app_id):
    app = client.get_app(app_id)
    return app["spec"], app.get("updated_at"), [
        (item["id"], item["phase"]) for item in client.list_deployments(app_id, per_page=100)]


def test_a_dry_run_shows_the_change_and_cost_and_leaves_the_app_alone(client, simulator,
                                                                     make_app):
    app = make_app("v1.0.0")
    before = snapshot(client, app["id"])
    operations_before = dict(simulator.sim.stats()["by_operation"])
    result = dry_run(client, app["id"], tag="v1.1.0")
    operations = {name: count - operations_before.get(name, 0)
                  for name, count in simulator.sim.stats()["by_operation"].items()
                  if count != operations_before.get(name, 0)}
    assert operations == {"apps_get": 1, "apps_validate_appSpec": 2}
    simulator.sim.clock.advance(3600)
    assert snapshot(client, app["id"]) == before
    assert result["valid"] is True and result["error"] is None
    assert result["live_deployment_id"] == before[2][0][0]
    monthly = float(INSTANCE_PRICES["apps-s-1vcpu-1gb"] * 2)  # web and worker
    assert result["cost"] == {"currency": "USD", "before": monthly, "after": monthly,
                              "delta": 0.0}
    assert result["proposal"]["app_name_available"] is True
    diff = result["diff"]
    assert diff["images"] == [
        {"kind": "service", "component": "web", "before": "odoo:v1.0.0", "after": "odoo:v1.1.0"},
        {"kind": "worker", "component": "worker", "before": "odoo:v1.0.0",
         "after": "odoo:v1.1.0"}]
    assert [(env["component"], env["key"], env["before"], env["after"]) for env in diff["envs"]] \
        == [("web", "DO_DEPLOY_VERSION", "v1.0.0", "v1.1.0"),
            ("worker", "DO_DEPLOY_VERSION", "v1.0.0", "v1.1.0")]
    assert diff["components"] == [] and diff["app"] == [] and diff["changed"]


def test_the_spec_hash_is_the_one_approvals_bind_to(client, make_app):
    app = make_app("v1.0.0")
    live = client.get_app(app["id"])["spec"]
    result = dry_run(client, app["id"], tag="v2.0.0", components=["web"])
    assert result["spec_hash"] == spec_hash(set_image_tag(live, "v2.0.0", ["web"]))
    assert [image["component"] for image in result["diff"]["images"]] == ["web"]


def test_a_bigger_spec_costs_more(client, make_app):
    app = make_app("v1.0.0")
    spec = copy.deepcopy(client.get_app(app["id"])["spec"])
    spec["services"][0].update(instance_count=3, instance_size_slug="apps-s-2vcpu-4gb")
    result = dry_run(client, app["id"], spec=spec)
    cost = result["cost"]
    assert cost["before"] == 24.0 and cost["after"] == 3 * 50.0 + 12.0
    assert cost["delta"] == cost["after"] - cost["before"]
    (web,) = result["diff"]["components"]
    assert web == {"kind": "service", "name": "web", "change": "changed", "fields": [
        {"field": "instance_size_slug", "before": "apps-s-1vcpu-1gb", "after": "apps-s-2vcpu-4gb"},
        {"field": "instance_count", "before": 1, "after": 3}]}
    assert result["diff"]["images"] == []


def test_a_spec_refused_locally_or_by_digitalocean_is_reported_not_raised(client, make_app):
    app = make_app("v1.0.0")
    unknown = dry_run(client, app["id"], tag="v2", components=["nope"])
    assert unknown["valid"] is False and unknown["error"]["code"] == "INVALID_RESOURCE_SPEC"
    assert unknown["diff"] is None and unknown["cost"]["before"] == 24.0
    spec = copy.deepcopy(client.get_app(app["id"])["spec"])
    spec["region"] = "atlantis"
    refused = dry_run(client, app["id"], spec=spec)
    assert refused["valid"] is False and refused["error"]["code"] == "SPEC_VALIDATION_FAILED"
    assert "atlantis" in refused["error"]["message"]
    assert refused["diff"]["app"] == [{"field": "region", "before": "fra", "after": "atlantis"}]
    assert refused["cost"]["after"] is None and refused["proposal"] is None


def test_a_refused_token_or_unknown_app_raises(client, simulator):
    with pytest.raises(DeployError) as caught:
        dry_run(client, "00000000-0000-0000-0000-000000000000", tag="v1")
    assert caught.value.code == "APP_NOT_FOUND"
    with pytest.raises(ValueError):
        dry_run(client, "x", tag="v1", spec={"name": "x"})
    with pytest.raises(ValueError):
        dry_run(client, "x")


def test_digitalocean_failing_to_answer_raises(client, simulator, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("rate-limit-burst", count=5, retry_after=1)
    with pytest.raises(DeployError) as caught:
        dry_run(client, app["id"], tag="v1.0.1")
    assert caught.value.code == "RATE_LIMIT_EXCEEDED" and caught.value.retryable

    class Down:
        def get_app(self, app_id):
            return {"id": app_id, "spec": sample_spec("v1", name="shop")}

        def propose(self, spec, app_id=None):
            raise DeployError("SERVICE_UNAVAILABLE", "HTTP 503", retryable=True)

    with pytest.raises(DeployError) as caught:
        dry_run(Down(), "app-1", tag="v2")
    assert caught.value.code == "SERVICE_UNAVAILABLE"


def test_a_live_spec_digitalocean_refuses_leaves_the_cost_before_unknown(client, make_app):
    class Refusing:
        """The app as DigitalOcean gives it, but propose refuses the live spec only."""

        def __init__(self, live):
            self.live = live

        def get_app(self, app_id):
            return {"id": app_id, "spec": self.live, "active_deployment": None}

        def propose(self, spec, app_id=None):
            if spec == self.live:
                raise DeployError("SPEC_VALIDATION_FAILED", "region retired")
            return {"app_cost": 7}

    live = sample_spec("v1.0.0", name="shop")
    result = dry_run(Refusing(live), "app-1", tag="v1.0.1")
    assert result["live_error"]["code"] == "SPEC_VALIDATION_FAILED"
    assert result["cost"] == {"currency": "USD", "before": None, "after": 7.0, "delta": None}


def test_secret_values_are_never_shown():
    live = sample_spec("v1", name="shop")
    live["envs"] = [{"key": "DB_PASSWORD", "value": "EV[1:abc:def]", "type": "SECRET"},
                    {"key": "API_KEY", "value": "EV[1:old]", "type": "SECRET"},
                    {"key": "LOG_LEVEL", "value": "info"}]
    proposed = copy.deepcopy(live)
    proposed["envs"] = [{"key": "DB_PASSWORD", "value": "hunter2", "type": "SECRET"},
                        {"key": "LOG_LEVEL", "value": "debug", "type": "SECRET"},
                        {"key": "NEW_SECRET", "value": "s3cr3t", "type": "SECRET"}]
    proposed["services"][0]["envs"].append({"key": "TOKEN", "value": "t0k3n", "type": "SECRET",
                                            "scope": "RUN_TIME"})
    diff = spec_diff(live, proposed)
    text = repr(diff)
    for secret in ("hunter2", "EV[1:abc:def]", "EV[1:old]", "s3cr3t", "t0k3n", "debug"):
        assert secret not in text
    by_key = {env["key"]: env for env in diff["envs"]}
    assert by_key["DB_PASSWORD"] == {"component": None, "key": "DB_PASSWORD", "change": "changed",
                                     "secret": True, "before": None, "after": None,
                                     "fields": ["value"]}
    assert (by_key["API_KEY"]["change"], by_key["API_KEY"]["secret"]) == ("removed", True)
    assert by_key["LOG_LEVEL"]["fields"] == ["value", "type"] and by_key["LOG_LEVEL"]["secret"]
    assert (by_key["NEW_SECRET"]["change"], by_key["TOKEN"]["component"]) == ("added", "web")


def test_components_added_removed_and_app_settings():
    live = sample_spec("v1", name="shop")
    proposed = copy.deepcopy(live)
    del proposed["workers"]
    proposed["jobs"] = [{"name": "migrate", "kind": "PRE_DEPLOY",
                         "image": {"registry_type": "DOCR", "repository": "odoo",
                                   "digest": "sha256:" + "a" * 64}}]
    proposed["services"][0]["health_check"]["http_path"] = "/healthz"
    proposed["alerts"] = [{"rule": "DEPLOYMENT_FAILED"}]
    diff = spec_diff(live, proposed)
    assert [(item["kind"], item["name"], item["change"]) for item in diff["components"]] == [
        ("service", "web", "changed"), ("worker", "worker", "removed"), ("job", "migrate", "added")]
    assert diff["components"][0]["fields"] == [
        {"field": "health_check.http_path", "before": "/web/health", "after": "/healthz"}]
    assert diff["images"] == [
        {"kind": "worker", "component": "worker", "before": "odoo:v1", "after": None},
        {"kind": "job", "component": "migrate", "before": None,
         "after": "odoo@sha256:" + "a" * 64}]
    assert diff["app"] == [{"field": "alerts", "before": None,
                            "after": [{"rule": "DEPLOYMENT_FAILED"}]}]
    assert [(env["component"], env["change"]) for env in diff["envs"]] == [("worker", "removed")]
    assert spec_diff(live, copy.deepcopy(live)) == {"app": [], "components": [], "images": [],
                                                    "envs": [], "changed": False}


def test_image_text():
    assert image_text({"registry_type": "DOCKER_HUB", "registry": "library",
                       "repository": "nginx", "tag": "1.25"}) == "library/nginx:1.25"
    assert image_text({"repository": "odoo"}) == "odoo:latest"
    assert image_text(None) is None


def test_read_proposal_types_what_digitalocean_sends():
    proposal = read_proposal({
        "app_name_available": True, "app_name_suggestion": "", "app_is_static": False,
        "existing_static_apps": "2", "max_free_static_apps": "3", "app_cost": 5,
        "app_tier_upgrade_cost": 17.5, "app_tier_downgrade_cost": "12", "app_is_starter": "no",
        "existing_starter_apps": "many", "max_free_starter_apps": True})
    assert proposal == {
        "app_cost": 5.0, "app_tier_upgrade_cost": 17.5, "app_tier_downgrade_cost": 12.0,
        "existing_static_apps": 2, "max_free_static_apps": 3, "existing_starter_apps": None,
        "max_free_starter_apps": None, "app_is_static": False, "app_is_starter": None,
        "app_name_available": True, "app_name_suggestion": None}
    assert read_proposal(None)["app_cost"] is None
    assert read_proposal({"app_cost": "", "existing_static_apps": "2.5"})["existing_static_apps"] \
        is None
    assert read_proposal({"app_name_suggestion": "shop-ab12"})["app_name_suggestion"] == \
        "shop-ab12"
