"""Log text served at a deployment's ``historic_urls``.

The text follows the deployment's timeline at the moment it is read, so a
client that fetches a build log after a build failure finds the failing step.
"""

from .clock import rfc3339
from .state import BUILD_FAIL_STEP, FAILURES, KIND_LABELS, components, image_ref, spec_version

LOG_TYPES = ("UNSPECIFIED", "BUILD", "DEPLOY", "RUN", "RUN_RESTARTED", "AUTOSCALE_EVENT")


def reached(deployment, log_type, now):
    """Whether ``deployment`` got far enough to have a log of ``log_type`` at ``now``."""
    if log_type == "DEPLOY":
        end = _end(deployment, now)
        built = deployment.created_at + deployment.build_seconds
        failed_in_build = (deployment.failure and FAILURES[deployment.failure["scenario"]][0]
                           == "build" and deployment.failed_at <= built)
        return end >= built and not failed_in_build
    if log_type in ("RUN", "RUN_RESTARTED", "UNSPECIFIED"):
        active_at = deployment.active_at()
        return active_at is not None and active_at <= now
    return True


def _end(deployment, now):
    """The moment the deployment's logs stop growing, as seen at ``now``."""
    end = now
    if deployment.stopped_at is not None:
        end = min(end, deployment.stopped_at)
    if deployment.failed_at is not None:
        end = min(end, deployment.failed_at)
    return end


def log_text(deployment, component_name, log_type, now, *, health_scenarios=()):
    """The log of one component (or of all, when ``component_name`` is None)."""
    names = [(kind, component) for kind, component in components(deployment.spec)
             if component_name is None or component["name"] == component_name]
    writer = {"BUILD": _build_lines, "DEPLOY": _deploy_lines}.get(log_type, _run_lines)
    lines = []
    for kind, component in names:
        prefix = f"{component['name']} " if component_name is None else ""
        for at, text in writer(deployment, kind, component, now, health_scenarios):
            lines.append(f"{prefix}{rfc3339(at)} {text}")
    return "\n".join(lines) + ("\n" if lines else "")


def _failure_here(deployment, component, step):
    failure = deployment.failure
    return (failure and failure["component"] == component["name"]
            and FAILURES[failure["scenario"]][0] == step)


def _build_lines(deployment, kind, component, now, _health):
    t0 = deployment.created_at
    end = _end(deployment, now)
    done = t0 + deployment.build_seconds
    image = component.get("image")
    lines = [(t0, f"starting build of {KIND_LABELS[kind]} {component['name']} "
                  f"for deployment {deployment.id}")]
    if image:
        lines.append((t0, f"pulling image {image_ref(image)}"))
    if _failure_here(deployment, component, "build") and deployment.failed_at <= end:
        at = deployment.failed_at
        if deployment.failure["scenario"] == "image-missing":
            lines.append((at, deployment.failure["message"]))
        else:
            lines += [(at, "Step 1/4 : FROM odoo:19.0"),
                      (at, "Step 2/4 : COPY requirements.txt /tmp/requirements.txt"),
                      (at, f"Step 3/4 : {BUILD_FAIL_STEP}"),
                      (at, "ERROR: No matching distribution found for odoo-addon-missing==19.0.1"),
                      (at, f"error: build step '{BUILD_FAIL_STEP}' failed with exit code 1")]
        lines.append((at, "✘ build failed"))
    elif done <= end:
        lines.append((done, "✔ build complete"))
    elif deployment.stopped_at is not None and deployment.stopped_at <= now:
        lines.append((deployment.stopped_at, f"build stopped: deployment "
                                             f"{deployment.stopped_as.lower()}"))
    else:
        lines.append((end, "building..."))
    return lines


def _deploy_lines(deployment, kind, component, now, _health):
    start = deployment.created_at + deployment.build_seconds
    end = _end(deployment, now)
    version = spec_version(deployment.spec)
    lines = [(start, f"deploying {KIND_LABELS[kind]} {component['name']} version {version}")]
    if _failure_here(deployment, component, "deploy") and deployment.failed_at <= end:
        at = deployment.failed_at
        lines += [(at, "odoo: error: relation \"ir_module_module\" does not exist"),
                  (at, "container exited with non-zero exit code 1"),
                  (at, f"✘ {deployment.failure['message']}")]
    elif _failure_here(deployment, component, "wait") and deployment.failed_at <= end:
        at = deployment.failed_at
        port = component.get("http_port", 8080)
        lines += [(at, f"Readiness probe failed: Get \"http://10.244.0.17:{port}/web/health\": "
                       "context deadline exceeded"),
                  (at, f"✘ {deployment.failure['message']}")]
    elif deployment.active_at() is not None and deployment.active_at() <= now:
        lines.append((deployment.active_at(), "✔ deployed, health checks passed"))
    else:
        lines.append((end, "rolling out..."))
    return lines


def _run_lines(deployment, kind, component, now, health):
    at = deployment.active_at()
    version = spec_version(deployment.spec)
    lines = [(at, f"odoo.service.server: HTTP service (werkzeug) running on 0.0.0.0:"
                  f"{component.get('http_port', 8069)} (version {version})")]
    if "db-down" in health:
        lines.append((now, "psycopg2.OperationalError: connection to server at \"db\" failed: "
                           "Connection refused"))
    if {"health-fail-always", "health-fail-once", "api-error"} & set(health):
        lines.append((now, "werkzeug: \"GET /api/v1/health HTTP/1.1\" 503 -"))
    return lines
