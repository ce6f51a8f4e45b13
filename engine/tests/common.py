"""Shared helpers for engine tests that talk to the simulator."""

from engine.simulator import DEFAULT_TOKEN

VERSION_ENV = "DO_DEPLOY_VERSION"


def sample_spec(tag="v1.0.0", name="odoo-test", repository="odoo"):
    """An Odoo spec: service ``web`` (port 8069), worker ``worker``, DOCR ``repository:tag``.

    ``DO_DEPLOY_VERSION`` is stamped with ``tag`` so the fake ingress reports it.
    """
    def component(extra):
        return dict({"image": {"registry_type": "DOCR", "repository": repository, "tag": tag},
                     "instance_size_slug": "apps-s-1vcpu-1gb", "instance_count": 1,
                     "envs": [{"key": VERSION_ENV, "value": tag, "scope": "RUN_TIME"}]}, **extra)

    return {"name": name, "region": "fra",
            "services": [component({"name": "web", "http_port": 8069,
                                    "health_check": {"http_path": "/web/health"}})],
            "workers": [component({"name": "worker"})]}


def auth_headers(token=DEFAULT_TOKEN):
    return {"Authorization": f"Bearer {token}"}
