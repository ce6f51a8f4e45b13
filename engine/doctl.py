"""doctl backend: the :class:`~engine.client.AppPlatformClient` interface on
top of DigitalOcean's ``doctl`` command line tool (v1.166).

Every call runs ``doctl ... --output json`` as a subprocess and parses its
output into the same data the REST client returns; doctl's exit codes and
error texts are mapped to the same :class:`~engine.errors.DeployError` codes
and details (``operation`` uses the REST client's OpenAPI operation ids).

The token travels in the environment (``DIGITALOCEAN_ACCESS_TOKEN``), never on
the command line, where any local user could read it in the process list.
doctl honours that variable only for its ``default`` authentication context,
so every command runs with ``--context default``: a ``context:`` chosen in the
user's doctl config file would otherwise silently use another account.

doctl has no command to cancel a deployment, to read app health or to roll
back; those calls go through an internal ``AppPlatformClient`` with the same
token and API URL.

Known differences from the REST client, all due to doctl:

* ``list_deployments`` - doctl always downloads every page; the page asked
  for is cut out of the full list.
* ``get_logs`` - doctl prints only the first log archive, also for the
  aggregate of all components.
* ``rate_limit`` and ``request_count`` - doctl does not show rate-limit
  headers, its own retries or its pagination.
"""

import json
import os
import re
import subprocess

from .api_errors import CREATE_OPS, SPEC_OPS, failure_code, status_error
from .do_api import DEFAULT_API_URL, check_token, log_operation, log_type_of
from .errors import DeployError, redact

LOG_TAIL_BYTES = 65536

# godo's ErrorResponse.Error(): 'GET https://.../v2/apps/x: 404 (request "id") message',
# with '; giving up after N attempt(s)' once doctl's own retries ran out.
_API_ERROR_RE = re.compile(
    r"\b(?:GET|POST|PUT|PATCH|DELETE) \S+: (?P<status>\d{3})"
    r"(?: \(request \"(?P<request_id>[^\"]*)\"\))?(?: (?P<message>.*?))?"
    r"(?:; giving up after (?P<attempts>\d+) attempt\(s\))?$",
    re.S,
)
# Go's dial errors: the request never left this machine.
_NEVER_SENT_RE = re.compile(r"connection refused|no such host|network is unreachable", re.I)
_SPEC_READ_PREFIXES = ("parsing app spec", "reading app spec")
_USAGE_EXIT_CODE = 255
_TEXT_LIMIT = 2000



class DoctlBackend:
    """Same public methods and return values as ``AppPlatformClient``.

    ``doctl_path`` is the executable (looked up on ``PATH`` when bare),
    ``api_url`` points doctl at another endpoint (e.g. the simulator),
    ``timeout`` bounds each doctl run in seconds and ``rest_client`` replaces
    the internal REST client used for what doctl cannot do. ``max_retries``,
    when given, is doctl's ``--http-retry-max`` for every command (doctl's own
    default retries a 429 or a 5xx five times, waiting up to 30 s in between;
    creating calls never retry). ``before_request(operation)``, if given, runs
    before every doctl run, as the REST client's does before every request, and
    may refuse it by raising a DeployError.
    """

    def __init__(self, token, *, doctl_path="doctl", api_url=None, timeout=120, rest_client=None,
                 max_retries=None, before_request=None):
        check_token(token)
        self._token = token
        self.doctl_path = doctl_path
        self.api_url = api_url
        self.timeout = timeout
        self._rest_client = rest_client
        self.max_retries = max_retries
        self._before_request = before_request
        self.command_count = 0

    def __repr__(self):
        return f"<DoctlBackend {self.doctl_path} {self.api_url or DEFAULT_API_URL}>"

    # ------------------------------------------------------------------ apps

    def list_apps(self):
        return self._json(["apps", "list"], "apps_list")

    def get_app(self, app_id):
        _check_ids(app_id)
        return self._one(["apps", "get", app_id], "apps_get")

    def create_app(self, spec, project_id=None):
        args = ["apps", "create", "--spec", "-"]
        if project_id:
            args.append(f"--project-id={project_id}")
        return self._one(args, "apps_create", spec=spec)

    def update_app(self, app_id, spec, update_all_source_versions=False):
        """Replace the app's spec; DigitalOcean deploys it by itself.

        The returned app's ``pending_deployment`` is the deployment this call
        created: do not call :meth:`create_deployment` after it.
        """
        _check_ids(app_id)
        args = ["apps", "update", app_id, "--spec", "-"]
        if update_all_source_versions:
            args.append("--update-sources")
        return self._one(args, "apps_update", spec=spec)

    def propose(self, spec, app_id=None):
        """Validate ``spec`` (as an update of ``app_id`` if given) and price it."""
        args = ["apps", "propose", "--spec", "-"]
        if app_id:
            args.append(f"--app={app_id}")
        return self._json(args, "apps_validate_appSpec", spec=spec)

    # ----------------------------------------------------------- deployments

    def create_deployment(self, app_id, force_build=False):
        """Redeploy the app's current spec; never repeated by doctl itself."""
        _check_ids(app_id)
        args = ["apps", "create-deployment", app_id]
        if force_build:
            args.append("--force-rebuild")
        return self._one(args, "apps_create_deployment")

    def get_deployment(self, app_id, deployment_id):
        _check_ids(app_id, deployment_id)
        return self._one(["apps", "get-deployment", app_id, deployment_id], "apps_get_deployment")

    def list_deployments(self, app_id, page=1, per_page=20):
        _check_ids(app_id)
        deployments = self._json(["apps", "list-deployments", app_id], "apps_list_deployments")
        start = (max(int(page), 1) - 1) * int(per_page)
        return deployments[start:start + int(per_page)]

    # ------------------------------------------------------------------ logs

    def get_logs(self, app_id, deployment_id=None, component=None, log_type="BUILD"):
        """Return the tail (``LOG_TAIL_BYTES``) of a deployment's archived log.

        Without ``deployment_id`` doctl reads the active (else the in-progress)
        deployment. An empty string means there is no log: DigitalOcean
        answers 400 when a phase was never reached. doctl prints the log raw
        whatever ``--output`` says and wants the type in lower case.
        """
        log_type = log_type_of(log_type)
        _check_ids(app_id, *(value for value in (deployment_id, component) if value is not None))
        args = ["apps", "logs", app_id]
        if component:
            args.append(component)
        args.append(f"--type={log_type.lower()}")
        if deployment_id:
            args.append(f"--deployment={deployment_id}")
        operation = log_operation(deployment_id, component)
        try:
            text = self._run(args, operation)
        except DeployError as error:
            if error.details.get("http_status") == 400:
                return ""
            raise
        return _log_tail(text)

    # -------------------------------------------------------------- registry

    def tag_exists(self, repository, tag, registry=None):
        """Tell whether ``repository:tag`` is in the registry.

        An unknown tag is ``False``; an unknown repository or registry raises
        IMAGE_PULL_FAILURE, because no tag of it can ever be deployed.
        """
        if not repository or not isinstance(repository, str) or repository.startswith("-"):
            raise DeployError("IMAGE_PULL_FAILURE", "No image repository was given.")
        if not tag or not isinstance(tag, str):
            raise DeployError("IMAGE_TAG_MISSING", "No image tag was given.")
        args = ["registry", "repository", "list-tags", repository]
        if registry:
            args.append(f"--registry={registry}")
        tags = self._json(args, "registry_list_repositoryTags")
        return any(item.get("tag") == tag for item in tags)

    # ------------------------------------------- through the REST API instead

    @property
    def rest_client(self):
        """REST client for the calls doctl lacks, created on first use so that
        a caller that never needs it never imports ``requests``."""
        if self._rest_client is None:
            from .client import AppPlatformClient

            self._rest_client = AppPlatformClient(
                self._token, base_url=self.api_url or DEFAULT_API_URL)
        return self._rest_client

    def cancel_deployment(self, app_id, deployment_id):
        return self.rest_client.cancel_deployment(app_id, deployment_id)

    def get_app_health(self, app_id):
        return self.rest_client.get_app_health(app_id)

    def registry_name(self):
        """doctl finds the default registry by itself; the name comes over REST."""
        return self.rest_client.registry_name()

    def validate_rollback(self, app_id, deployment_id, skip_pin=False):
        return self.rest_client.validate_rollback(app_id, deployment_id, skip_pin=skip_pin)

    def create_rollback(self, app_id, deployment_id, skip_pin=False):
        return self.rest_client.create_rollback(app_id, deployment_id, skip_pin=skip_pin)

    def commit_rollback(self, app_id):
        return self.rest_client.commit_rollback(app_id)

    def revert_rollback(self, app_id):
        return self.rest_client.revert_rollback(app_id)

    @property
    def rate_limit(self):
        """Known only from REST calls: doctl does not show the headers."""
        if self._rest_client is None:
            return {"limit": None, "remaining": None, "reset": None}
        return self._rest_client.rate_limit

    @property
    def request_count(self):
        """doctl runs plus REST requests: a lower bound of the API requests."""
        rest_count = self._rest_client.request_count if self._rest_client is not None else 0
        return self.command_count + rest_count

    # ------------------------------------------------------------- plumbing

    def _environment(self):
        """The caller's environment without any DIGITALOCEAN_* variable (a
        stray DIGITALOCEAN_CONTEXT or token must not win), plus ours."""
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("DIGITALOCEAN_")}
        env["DIGITALOCEAN_ACCESS_TOKEN"] = self._token
        if self.api_url:
            env["DIGITALOCEAN_API_URL"] = self.api_url
        return env

    def _argv(self, args, operation):
        """Flag values are attached with "=" so that none is read as a flag."""
        argv = [self.doctl_path, *args, "--context=default", "--output=json"]
        if operation in CREATE_OPS:
            # doctl retries 429/5xx up to 5 times, POST and PUT included: a
            # repeat could start a second deployment. The caller decides.
            argv.append("--http-retry-max=0")
        elif self.max_retries is not None:
            argv.append(f"--http-retry-max={int(self.max_retries)}")
        return argv

    def _run(self, args, operation, spec=None):
        """Run doctl; return its stdout or raise the mapped DeployError."""
        stdin = _spec_json(spec) if operation in SPEC_OPS else ""
        if self._before_request is not None:
            self._before_request(operation)
        self.command_count += 1
        try:
            completed = subprocess.run(
                self._argv(args, operation), input=stdin, capture_output=True,
                encoding="utf-8", errors="replace", env=self._environment(),
                timeout=self.timeout, check=False,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise DeployError(
                "SERVICE_UNAVAILABLE",
                f"doctl is not installed or not executable at {self.doctl_path!r}.",
                details={"operation": operation, "doctl_path": self.doctl_path,
                         "reason": type(exc).__name__},
            ) from None
        except subprocess.TimeoutExpired:
            raise self._failure(operation, f"doctl did not finish within {self.timeout} seconds",
                                {"timeout": self.timeout}) from None
        if completed.returncode != 0:
            raise self._command_error(operation, completed)
        return completed.stdout

    def _json(self, args, operation, spec=None):
        stdout = self._run(args, operation, spec=spec)
        try:
            return json.loads(stdout)
        except ValueError:
            raise self._failure(operation, "doctl printed output that is not JSON",
                                {"stdout": self._redact(stdout)[:_TEXT_LIMIT]}) from None

    def _one(self, args, operation, spec=None):
        """doctl prints one app or deployment as a one-element JSON array."""
        items = self._json(args, operation, spec=spec)
        if isinstance(items, list) and len(items) == 1 and isinstance(items[0], dict):
            return items[0]
        raise self._failure(operation, "doctl printed something other than one object", {})

    def _redact(self, text):
        return redact(text, [self._token])

    def _failure(self, operation, text, details, never_sent=False):
        """A failure on DigitalOcean's side or in transit (5xx, timeout,
        unreadable answer): a read may be retried, a creating call may have
        created its deployment all the same."""
        details = dict(details, operation=operation)
        maybe_created = operation in CREATE_OPS and not never_sent
        if operation in CREATE_OPS:
            details["maybe_created"] = maybe_created
        code = failure_code(operation)
        return DeployError(code, _sentence(text), details=details, retryable=not maybe_created)

    def _command_error(self, operation, completed):
        details = {"operation": operation, "exit_code": completed.returncode}
        stderr = self._redact(completed.stderr.strip())
        if stderr:
            details["stderr"] = stderr[-_TEXT_LIMIT:]
        if completed.returncode == _USAGE_EXIT_CODE:
            # A cobra usage error: nothing was sent, this doctl lacks a command or flag.
            if operation in CREATE_OPS:
                details["maybe_created"] = False
            return DeployError(
                failure_code(operation),
                "doctl rejected its command line; doctl 1.166 or newer is needed.",
                details=details,
            )
        detail = self._redact(_error_detail(completed.stdout) or stderr or "no error message")
        details["detail"] = detail[:_TEXT_LIMIT]
        match = _API_ERROR_RE.search(detail)
        if match:
            return _status_error(operation, match, details)
        if detail.startswith(_SPEC_READ_PREFIXES):
            return DeployError("SPEC_VALIDATION_FAILED",
                               _sentence(f"doctl could not read the app spec: {detail}"),
                               details=details)
        if detail.startswith("Cannot find app") or "no deployment found for app" in detail:
            return DeployError("APP_NOT_FOUND", _sentence(detail), details=details)
        if "access token is required" in detail:
            return DeployError("UNAUTHORIZED", "doctl was given no access token.", details=details)
        # Transport errors and undecodable answers: no HTTP status is known.
        return self._failure(operation, f"doctl failed: {detail}", details,
                             never_sent=bool(_NEVER_SENT_RE.search(detail)))


def _status_error(operation, match, details):
    """Map the HTTP status in godo's error text as the REST client does."""
    details.update(request_id=match.group("request_id"),
                   attempts=int(match.group("attempts") or 1))
    do_message = " ".join((match.group("message") or "").split())
    return status_error(operation, int(match.group("status")), do_message, details)


def _check_ids(*ids):
    """Ids become doctl arguments: one starting with "-" would be read as a flag."""
    for value in ids:
        if not value or not isinstance(value, str) or value.startswith("-"):
            raise DeployError("APP_NOT_FOUND",
                              "An app, deployment or component id is empty or not an id.")


def _spec_json(spec):
    if not isinstance(spec, dict) or not spec:
        raise DeployError("APP_SPEC_SYNTAX_ERROR", "The app spec must be a non-empty mapping.")
    try:
        return json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DeployError("APP_SPEC_SYNTAX_ERROR",
                          f"The request cannot be sent as JSON: {exc}.") from None


def _error_detail(stdout):
    """The message of doctl's ``{"errors":[{"detail":...}]}``, the last JSON
    document on stdout (a failing ``--wait`` prints the app array first)."""
    start = stdout.rfind('{"errors"')
    if start < 0:
        return ""
    try:
        errors = json.loads(stdout[start:])["errors"]
        return "; ".join(str(error.get("detail", "")) for error in errors).strip()
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def _log_tail(text):
    """The last LOG_TAIL_BYTES of a log, cut at a line start like the REST client."""
    data = text.encode("utf-8")
    if len(data) > LOG_TAIL_BYTES:
        data = data[-LOG_TAIL_BYTES:]
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            data = data[newline + 1:]
    return data.decode("utf-8", errors="replace")


def _sentence(text):
    """One line ending with a full stop, as DeployError messages are."""
    text = " ".join(str(text).split())
    return text if text.endswith((".", "!", "?")) else text + "."
