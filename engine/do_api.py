"""What the REST client and the doctl backend say alike about DigitalOcean's API.

Defined once so that both backends accept the same tokens and log types and
name the same OpenAPI operation for a log request. Imports neither
``requests`` nor ``subprocess``: :mod:`.doctl` loads it without the HTTP stack.
"""

import re

from .errors import DeployError

DEFAULT_API_URL = "https://api.digitalocean.com"
LOG_TYPES = ("UNSPECIFIED", "BUILD", "DEPLOY", "RUN", "RUN_RESTARTED", "AUTOSCALE_EVENT")
# A token is sent in a header (REST) or the environment (doctl): printable ASCII, no space.
TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")
# (deployment given, component given) -> the OpenAPI operation id of the log request.
LOG_OPERATIONS = {
    (True, True): "apps_get_logs",
    (True, False): "apps_get_logs_aggregate",
    (False, True): "apps_get_logs_active_deployment",
    (False, False): "apps_get_logs_active_deployment_aggregate",
}


def check_token(token):
    """Refuse an empty or malformed token before it is used, without echoing it."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        # Never echo the value: a malformed token is still a secret.
        raise DeployError("UNAUTHORIZED", "The DigitalOcean access token is empty or malformed.")


def log_type_of(value):
    """``value`` as one of LOG_TYPES (case-insensitive); ValueError otherwise."""
    log_type = str(value).upper()
    if log_type not in LOG_TYPES:
        raise ValueError(f"log_type must be one of {', '.join(LOG_TYPES)}")
    return log_type


def log_operation(deployment_id, component):
    """The operation id of a log request for that deployment (else the active one) and
    component (else all of them)."""
    return LOG_OPERATIONS[(bool(deployment_id), bool(component))]
