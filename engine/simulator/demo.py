"""The demo account: two Odoo apps (staging, production) and an ``odoo`` repository.

Ids are fixed so that demo data in the addon can refer to them. Besides the release
tags, the repository holds tags that choose a failure scenario by their ``--<scenario>``
suffix, so the demo shows each failure without touching the registry first.
"""

DEMO_REPOSITORY = "odoo"
DEMO_TAGS = ("v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0")
# Ready-made failure tags of the demo registry, with what deploying each one shows.
DEMO_SCENARIO_TAGS = {
    "v1.4.0--health-fail-always": "the health check fails twice (HEALTH_CHECK_FAIL): "
                                  "automatic rollback and an incident",
    "v1.4.0--health-fail-once": "the health check fails once: a warning, then the deployment "
                                "goes on",
    "v1.4.0--build-fail": "the build fails (BUILD_FAILED), with the build log on the step",
    "v1.4.0--deploy-fail": "the new containers crash (DEPLOY_ERROR), with the deploy log",
    "v1.4.0--db-down": "the app cannot reach its database (DATABASE_CONNECTION_ERROR)",
    "v1.4.0--version-not-switched": "traffic stays on the old version (TRAFFIC_SWITCH_FAILED)",
    "v1.4.0--endpoint-missing": "the login page answers 404 in the post-deployment validation "
                                "(ENDPOINT_404)",
}
DEMO_APPS = [
    {"id": "6f1c2b9e-5d4a-4c3b-9e8f-000000000001", "name": "odoo-staging",
     "environment": "staging"},
    {"id": "6f1c2b9e-5d4a-4c3b-9e8f-000000000002", "name": "odoo-production",
     "environment": "production"},
]
DEMO_BUILD_SECONDS = 20
DEMO_DEPLOY_SECONDS = 10


def demo_spec(name, tag="v1.0.0"):
    """The spec of a demo app: an Odoo web service and a worker on the same image."""
    image = {"registry_type": "DOCR", "repository": DEMO_REPOSITORY, "tag": tag}
    envs = [{"key": "DO_DEPLOY_VERSION", "value": tag, "scope": "RUN_TIME"}]
    return {
        "name": name,
        "region": "fra",
        "services": [{"name": "web", "image": dict(image), "http_port": 8069,
                      "instance_size_slug": "apps-s-1vcpu-1gb", "instance_count": 1,
                      "health_check": {"http_path": "/web/health"},
                      "envs": [dict(env) for env in envs]}],
        "workers": [{"name": "worker", "image": dict(image),
                     "instance_size_slug": "apps-s-1vcpu-1gb", "instance_count": 1,
                     "envs": [dict(env) for env in envs]}],
    }


def seed_demo(sim, build_seconds=DEMO_BUILD_SECONDS, deploy_seconds=DEMO_DEPLOY_SECONDS):
    """Fill ``sim`` with the demo apps (live on v1.0.0), tags v1.0.0 .. v1.3.0 and the
    scenario tags."""
    for tag in (*DEMO_TAGS, *DEMO_SCENARIO_TAGS):
        sim.push_tag(DEMO_REPOSITORY, tag)
    return [sim.create_app(demo_spec(entry["name"]), app_id=entry["id"],
                           build_seconds=build_seconds, deploy_seconds=deploy_seconds)
            for entry in DEMO_APPS]
