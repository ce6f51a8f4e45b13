"""DigitalOcean API errors as SOP codes: one mapping for the REST client and
the doctl backend, so both raise the same code for the same refusal."""

import re

from .errors import DeployError

_RESOURCE_RE = re.compile(r"(?i)instance[ _-]?(size|count)")
_QUOTA_RE = re.compile(r"(?i)\bquota\b|\blimits? (?:reached|exceeded)\b")

# Operations (OpenAPI operation ids) by how their failures map to SOP codes.
SPEC_OPS = frozenset({"apps_create", "apps_update", "apps_validate_appSpec"})
# These create a deployment: never repeated blindly, "maybe created" after a 5xx.
CREATE_OPS = frozenset({
    "apps_create", "apps_update", "apps_create_deployment", "apps_create_rollback",
    "apps_revert_rollback",
})
# Refusals of these are refusals to deploy (a 4xx of apps_create/update is a spec problem).
DEPLOY_OPS = frozenset({
    "apps_create_deployment", "apps_create_rollback", "apps_revert_rollback",
    "apps_validate_rollback", "apps_commit_rollback",
})
REGISTRY_OPS = frozenset({"registry_get", "registry_list_repositoryTags"})


def failure_code(operation):
    """Code of a failure on DigitalOcean's side (5xx, transport, bad body)."""
    return "DEPLOYMENT_CREATE_FAILED" if operation in CREATE_OPS else "SERVICE_UNAVAILABLE"


def status_error(operation, status, do_message, details):
    """The DeployError for an HTTP error ``status`` of ``operation``.

    ``do_message`` is DigitalOcean's own (redacted) message; it ends the sentence.
    ``details`` (operation, request id, ...) are completed with the status and,
    after a 5xx of a creating call, ``maybe_created``.
    """
    details.update(http_status=status, message=do_message)
    retryable = False
    if status in (401, 403):
        code, text = "UNAUTHORIZED", f"DigitalOcean refused the access token (HTTP {status})"
    elif status == 429:
        code, text = "RATE_LIMIT_EXCEEDED", "DigitalOcean's API rate limit is exhausted"
        retryable = True
    elif operation in REGISTRY_OPS and status < 500:
        code = "IMAGE_PULL_FAILURE"
        text = f"The container registry or repository is not usable (HTTP {status})"
    elif status == 404:
        code, text = "APP_NOT_FOUND", "DigitalOcean does not know this app or deployment"
    elif status >= 500:
        code, text = failure_code(operation), f"DigitalOcean's API failed (HTTP {status})"
        if operation in CREATE_OPS:
            details["maybe_created"] = True
        else:
            retryable = status != 501
    elif operation in (SPEC_OPS | DEPLOY_OPS) and _QUOTA_RE.search(do_message):
        code = "INSUFFICIENT_QUOTA"
        text = f"DigitalOcean refused the change for lack of quota (HTTP {status})"
    elif operation in SPEC_OPS:
        resource = _RESOURCE_RE.search(do_message)
        code = "INVALID_RESOURCE_SPEC" if resource else "SPEC_VALIDATION_FAILED"
        text = f"DigitalOcean rejected the app spec (HTTP {status})"
    elif operation in DEPLOY_OPS:
        code = "DEPLOYMENT_CREATE_FAILED"
        text = f"DigitalOcean refused the deployment (HTTP {status})"
    else:
        code = "SERVICE_UNAVAILABLE"
        text = f"DigitalOcean's API refused {operation} (HTTP {status})"
    message = f"{text}: {do_message.rstrip('.')}." if do_message else f"{text}."
    return DeployError(code, message, details=details, retryable=retryable)
