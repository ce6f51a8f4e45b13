"""The simulator as a WSGI application: ``/v2`` API, ``/_sim`` control, ingress, logs.

All state lives behind one lock; a request holds it only while it reads or
changes state, never while a scenario makes it wait.
"""

import collections
import copy
import json
import math
import threading
import traceback
import uuid
from urllib.parse import parse_qs, unquote

import yaml

from . import sealing
from .clock import OffsetClock, rfc3339
from .logs import LOG_TYPES, log_text, reached
from .state import (
    BUILD_FAIL_STEP,
    INSTANCE_PRICES,
    MAX_FREE_STATIC_APPS,
    REGIONS,
    REGISTRY_NAME,
    SIZED_KINDS,
    ApiError,
    App,
    Deployment,
    Registry,
    bad_request,
    components,
    image_ref,
    image_tags,
    monthly_cost,
    normalize_spec,
    not_found,
    plain_envs,
    region_object,
    spec_version,
    validate_spec,
)

DEFAULT_TOKEN = "dop_v1_simulator"

# name -> (kind, default parameters). Kinds: "request" (next /v2 requests),
# "deployment" (new deployments), "quota" (create/update/deploy calls),
# "ingress" (the app's live endpoints), "logs" (log URLs).
SCENARIOS = {
    "build-fail": ("deployment", {}),
    "deploy-fail": ("deployment", {}),
    "image-missing": ("deployment", {}),
    "health-check-timeout": ("deployment", {}),
    "version-not-switched": ("deployment", {}),
    "quota": ("quota", {}),
    "health-fail-once": ("ingress", {}),
    "health-fail-always": ("ingress", {}),
    "health-slow": ("ingress", {"delay": 2.0}),
    "db-down": ("ingress", {}),
    "endpoint-missing": ("ingress", {"path": "/web/login"}),
    "static-missing": ("ingress", {}),
    "api-error": ("ingress", {"status": 500}),
    "slow-endpoints": ("ingress", {"delay": 2.0}),
    "rate-limit-burst": ("request", {"count": 3, "retry_after": 1}),
    "server-error": ("request", {"count": 1}),
    "drop-connection": ("request", {"count": 1}),
    "malformed-body": ("request", {"count": 1}),
    "log-hang": ("logs", {"delay": 30.0}),
}
MAX_DELAY = 60.0
TAG_SCENARIO_SEPARATOR = "--"
JSON_HEADERS = [("Content-Type", "application/json; charset=utf-8")]
MALFORMED_BODY_MARK = b"<html><body><h1>502 Bad Gateway</h1>"


class DropConnection(Exception):
    """Raised by the app to make the server close the socket without answering.

    :class:`~.server.SimulatorServer` honours it; another WSGI server turns it
    into a 500.
    """


class Response:
    __slots__ = ("body", "delay", "headers", "status")

    def __init__(self, status, body=b"", headers=None, delay=0.0):
        self.status = status
        self.body = body
        self.headers = list(headers if headers is not None else JSON_HEADERS)
        self.delay = delay


STATUS_TEXT = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized",
               404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
               412: "Precondition Failed", 422: "Unprocessable Entity",
               429: "Too Many Requests", 500: "Internal Server Error",
               503: "Service Unavailable"}


def _json_response(status, data, headers=()):
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, JSON_HEADERS + list(headers))


def _route(pattern):
    parts = pattern.strip("/").split("/")
    return [(part[1:-1], None) if part.startswith("{") else (None, part) for part in parts]


# (method, pattern, operation id) as in the OpenAPI document.
ROUTES = [(method, _route(pattern), operation) for method, pattern, operation in (
    ("GET", "/v2/apps", "apps_list"),
    ("POST", "/v2/apps", "apps_create"),
    ("POST", "/v2/apps/propose", "apps_validate_appSpec"),
    ("GET", "/v2/apps/regions", "apps_list_regions"),
    ("GET", "/v2/apps/tiers/instance_sizes", "apps_list_instanceSizes"),
    ("GET", "/v2/apps/tiers/instance_sizes/{slug}", "apps_get_instanceSize"),
    ("GET", "/v2/apps/{app_id}", "apps_get"),
    ("PUT", "/v2/apps/{app_id}", "apps_update"),
    ("DELETE", "/v2/apps/{app_id}", "apps_delete"),
    ("POST", "/v2/apps/{app_id}/restart", "apps_restart"),
    ("GET", "/v2/apps/{app_id}/health", "apps_get_health"),
    ("GET", "/v2/apps/{app_id}/deployments", "apps_list_deployments"),
    ("POST", "/v2/apps/{app_id}/deployments", "apps_create_deployment"),
    ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}", "apps_get_deployment"),
    ("POST", "/v2/apps/{app_id}/deployments/{deployment_id}/cancel", "apps_cancel_deployment"),
    ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}/components/{component_name}/logs",
     "apps_get_logs"),
    ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}/logs", "apps_get_logs_aggregate"),
    ("GET", "/v2/apps/{app_id}/components/{component_name}/logs",
     "apps_get_logs_active_deployment"),
    ("GET", "/v2/apps/{app_id}/logs", "apps_get_logs_active_deployment_aggregate"),
    ("POST", "/v2/apps/{app_id}/rollback", "apps_create_rollback"),
    ("POST", "/v2/apps/{app_id}/rollback/validate", "apps_validate_rollback"),
    ("POST", "/v2/apps/{app_id}/rollback/commit", "apps_commit_rollback"),
    ("POST", "/v2/apps/{app_id}/rollback/revert", "apps_revert_rollback"),
    ("GET", "/v2/registry", "registry_get"),
    ("GET", "/v2/registries", "registries_list"),
    ("GET", "/v2/registries/{registry_name}", "registries_get"),
    ("GET", "/v2/registry/{registry_name}/repositories", "registry_list_repositories"),
    ("GET", "/v2/registry/{registry_name}/repositoriesV2", "registry_list_repositoriesV2"),
    ("GET", "/v2/registries/{registry_name}/repositoriesV2", "registries_list_repositoriesV2"),
    ("GET", "/v2/registry/{registry_name}/repositories/{repository_name}/tags",
     "registry_list_repositoryTags"),
    ("GET", "/v2/registries/{registry_name}/repositories/{repository_name}/tags",
     "registries_list_repositoryTags"),
)]


def _match(segments, method):
    """Return (operation, params) for the request, or raise 404/405."""
    allowed = False
    for route_method, parts, operation in ROUTES:
        if len(parts) != len(segments):
            continue
        params = {}
        for (name, literal), segment in zip(parts, segments, strict=False):
            if literal is not None:
                if literal != segment:
                    break
            else:
                params[name] = unquote(segment)
        else:
            if route_method == method:
                return operation, params
            allowed = True
    if allowed:
        raise ApiError(405, "method_not_allowed", f"Method {method} is not allowed here.")
    raise not_found()


def _page_args(query):
    """``page`` and ``per_page`` from the query (per_page is capped at 200 like DO)."""
    values = {}
    for name, default in (("page", 1), ("per_page", 20)):
        raw = query.get(name, [str(default)])[0]
        try:
            values[name] = int(raw)
        except ValueError:
            raise bad_request(f"{name} must be an integer, got {raw!r}") from None
        if values[name] < 1:
            raise bad_request(f"{name} must be at least 1")
    return values["page"], min(values["per_page"], 200)


def _paginate(items, query, base, path, key):
    page, per_page = _page_args(query)
    total = len(items)
    last = max(1, math.ceil(total / per_page))
    pages = {}
    url = f"{base}{path}?per_page={per_page}&page="
    if page > 1:
        pages["first"] = f"{url}1"
        pages["prev"] = f"{url}{min(page - 1, last)}"
    if page < last:
        pages["next"] = f"{url}{page + 1}"
        pages["last"] = f"{url}{last}"
    start = (page - 1) * per_page
    return {key: items[start:start + per_page], "links": {"pages": pages} if pages else {},
            "meta": {"total": total}}


class Simulator:
    """DigitalOcean App Platform in memory, as a WSGI callable.

    ``build_seconds``/``deploy_seconds`` are the timing of apps created
    through ``POST /v2/apps``; :meth:`create_app` takes its own.
    """

    def __init__(self, tokens=None, clock=None, rate_limit_per_minute=250,
                 rate_limit_per_hour=5000, *, build_seconds=0, deploy_seconds=0):
        self.tokens = set(tokens) if tokens else {DEFAULT_TOKEN}
        self.clock = clock or OffsetClock()
        self.rate_limit_per_minute = rate_limit_per_minute
        self.rate_limit_per_hour = rate_limit_per_hour
        self.build_seconds = build_seconds
        self.deploy_seconds = deploy_seconds
        self.base_url = "http://127.0.0.1:8799"
        self._lock = threading.RLock()
        self._wake = threading.Event()
        # The key SECRET values are encrypted with, the account's for every app.
        self._secret_key = sealing.new_key()
        self.reset()

    # ------------------------------------------------------------------
    # control API (also under /_sim/)
    # ------------------------------------------------------------------
    def reset(self):
        """Forget every app, tag, scenario, rate-limit window and counter."""
        with self._lock:
            self._apps = {}
            self._deployments = {}
            self.registry = Registry(self.clock.now())
            self._scenarios = {}
            # app id -> {tag: {request scenario: params}}: the faults that tag suffixes
            # of the app's spec armed, kept so that their counts are really spent.
            self._armed = {}
            self._health_failed = set()
            self._windows = {}
            self._stats = collections.Counter()
            self._requests = 0

    def create_app(self, spec, *, app_id=None, build_seconds=0, deploy_seconds=0,
                   scenario=None):
        """Create an app that is already live, as a test or demo starting point.

        Its tags are pushed to the registry and its first deployment is ACTIVE
        at once, whatever the timing and scenario: those apply to the
        deployments that follow.
        """
        with self._lock:
            validate_spec(spec)
            if app_id in self._apps:
                raise ApiError(409, "conflict", f"an app with id {app_id} already exists")
            self._check_name(spec["name"])
            now = self.clock.now()
            for _kind, component in components(spec):
                image = component.get("image")
                if image and image.get("registry_type") == "DOCR" and image.get("tag") and (
                        image["tag"] not in self.registry.repositories.get(image["repository"],
                                                                           ())):
                    self.registry.push(image["repository"], image["tag"], now)
            app = App(normalize_spec(spec, self._secret_key), now, app_id=app_id,
                      build_seconds=build_seconds, deploy_seconds=deploy_seconds)
            self._apps[app.id] = app
            if scenario:
                self.set_scenario(scenario, app_id=app.id)
            deployment = self._deploy(app, app.spec, now, cause="app created",
                                      cause_type="MANUAL", action="CREATE_DEPLOYMENT", seed=True)
            return self._app_dict(app, now, self.base_url, pending=deployment)

    def get_app(self, app_id):
        """The app as ``GET /v2/apps/{id}`` shows it."""
        with self._lock:
            return self._app_dict(self._app(app_id), self.clock.now(), self.base_url)

    def plain_envs(self, app_id):
        """The environment each component of the app's live deployment (its spec while
        nothing is live) runs with, secrets decrypted: what its containers see."""
        with self._lock:
            app = self._app(app_id)
            live = app.active_deployment(self.clock.now())
            return plain_envs(live.spec if live else app.spec, self._secret_key)

    def set_timing(self, app_id, build_seconds=None, deploy_seconds=None):
        """Change how long the app's next deployments build and deploy."""
        with self._lock:
            app = self._app(app_id)
            if build_seconds is not None:
                app.build_seconds = float(build_seconds)
            if deploy_seconds is not None:
                app.deploy_seconds = float(deploy_seconds)
            return {"build_seconds": app.build_seconds, "deploy_seconds": app.deploy_seconds}

    def set_scenario(self, scenario, *, app_id=None, tag=None, **params):
        """Select a failure scenario for one app, one image tag, or (neither) everything.

        ``scenario=None`` clears the scenarios of that target. ``count`` limits
        how many times the scenario fires; request scenarios default to a
        small count, the others last until cleared.
        """
        if scenario is not None and scenario not in SCENARIOS:
            raise bad_request(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        with self._lock:
            if app_id is not None:
                self._app(app_id)
                key = ("app", app_id)
            elif tag is not None:
                key = ("tag", tag)
            else:
                key = ("global", None)
            if scenario is None:
                self._scenarios.pop(key, None)
                return {}
            values = dict(SCENARIOS[scenario][1])
            values.update(params)
            self._scenarios.setdefault(key, {})[scenario] = values
            return copy.deepcopy(self._scenarios[key])

    def scenarios(self):
        """Every selected scenario, keyed ``app:<id>``, ``tag:<tag>`` or ``global``, and
        the request faults a tag suffix armed and not yet spent, keyed ``app:<id> tag:<tag>``."""
        with self._lock:
            found = {(f"{kind}:{name}" if name else kind): copy.deepcopy(values)
                     for (kind, name), values in self._scenarios.items() if values}
            found.update((f"app:{app_id} tag:{tag}", copy.deepcopy(values))
                         for app_id, tags in self._armed.items()
                         for tag, values in tags.items() if values)
            return found

    def push_tag(self, repository, tag):
        """Push ``repository:tag`` to ``sim-registry`` (again, if it exists: new digest)."""
        with self._lock:
            return self.registry.push(repository, tag, self.clock.now())

    def stats(self):
        with self._lock:
            return {"requests": self._requests, "by_operation": dict(self._stats)}

    def wake(self):
        """Cut short every scenario delay in progress (used when the server stops)."""
        self._wake.set()

    # ------------------------------------------------------------------
    # WSGI
    # ------------------------------------------------------------------
    def __call__(self, environ, start_response):
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get(
            "PATH_INFO", "/")
        raw_path = raw_path.split("?", 1)[0]
        method = environ["REQUEST_METHOD"]
        base = self._base(environ)
        request_id = str(uuid.uuid4())
        try:
            if raw_path.startswith("/v2/") or raw_path == "/v2":
                response = self._api(environ, method, raw_path, base, request_id)
            elif raw_path.startswith("/_ingress/"):
                response = self._ingress(method, raw_path)
            elif raw_path.startswith("/_logs/"):
                response = self._log_file(raw_path)
            elif raw_path.startswith("/_sim/"):
                response = self._control(environ, method, raw_path)
            else:
                raise not_found()
        except ApiError as error:
            response = self._error(error, request_id)
        except DropConnection:
            raise
        except Exception as error:  # the simulator must answer like DO, not crash
            traceback.print_exc()
            response = self._error(ApiError(500, "server_error", f"Server error: {error}"),
                                   request_id)
        if response.delay > 0:
            self._wake.wait(min(response.delay, MAX_DELAY))
        response.headers.append(("x-request-id", request_id))
        status = f"{response.status} {STATUS_TEXT.get(response.status, 'Unknown')}"
        start_response(status, response.headers)
        return [response.body] if method != "HEAD" else [b""]

    @staticmethod
    def _base(environ):
        host = environ.get("HTTP_HOST") or (
            f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '80')}")
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"

    @staticmethod
    def _error(error, request_id):
        return _json_response(error.status, {"id": error.error_id, "message": error.message,
                                             "request_id": request_id}, error.headers)

    @staticmethod
    def _body(environ):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length else b""
        if not raw.strip():
            return None
        content_type = environ.get("CONTENT_TYPE", "")
        try:
            if "yaml" in content_type:
                data = yaml.safe_load(raw)
            else:
                data = json.loads(raw)
        except (ValueError, yaml.YAMLError) as error:
            raise bad_request(f"unable to parse request body: {error}") from None
        if not isinstance(data, dict):
            raise bad_request("request body must be a JSON object")
        return data

    # ------------------------------------------------------------------
    # /v2
    # ------------------------------------------------------------------
    def _api(self, environ, method, raw_path, base, request_id):
        segments = raw_path.strip("/").split("/")
        with self._lock:
            self._requests += 1
            try:
                operation, params = _match(segments, method)
            except ApiError:
                self._stats["unknown"] += 1
                raise
            self._stats[operation] += 1
            now = self.clock.now()
            token = self._token(environ)
            if token is None:
                raise ApiError(401, "unauthorized", "Unable to authenticate you.",
                               self._rate_headers(None, now))
            headers = self._rate_limit(token, now)
            app = self._apps.get(params.get("app_id"))
            sources = self._sources(app, app.spec if app else None)
            burst = self._take("rate-limit-burst", sources, operation)
            if burst is not None:
                retry = burst.get("retry_after", 1)
                raise ApiError(429, "too_many_requests", "API rate limit exceeded.",
                               [*headers, ("retry-after", str(retry))])
            dropped = self._take("drop-connection", sources, operation)
            if dropped is not None and not dropped.get("apply"):
                raise DropConnection()
            failed = self._take("server-error", sources, operation)
            if failed is not None and not failed.get("apply"):
                raise ApiError(500, "server_error", "Server was unable to give you a response.",
                               headers)
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            handler = getattr(self, f"_op_{operation}")
            try:
                status, data = handler(params=params, query=query, environ=environ, now=now,
                                       base=base)
            except ApiError as error:
                error.headers.extend(headers)
                raise
            if dropped is not None:
                raise DropConnection()
            if failed is not None:
                raise ApiError(500, "server_error", "Server was unable to give you a response.",
                               headers)
            if data is None:
                response = Response(status, b"", headers)
            else:
                response = _json_response(status, data, headers)
            if status == 200 and self._take("malformed-body", sources, operation) is not None:
                response.body = MALFORMED_BODY_MARK + response.body[:len(response.body) // 2]
            return response

    def _token(self, environ):
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token in self.tokens else None

    def _rate_headers(self, window, now):
        hour = window[0] if window else ()
        reset = math.ceil(hour[0] + 3600) if hour else math.ceil(now)
        return [("ratelimit-limit", str(self.rate_limit_per_hour)),
                ("ratelimit-remaining", str(max(0, self.rate_limit_per_hour - len(hour)))),
                ("ratelimit-reset", str(reset))]

    def _rate_limit(self, token, now):
        """Count the request in the token's sliding windows or raise 429."""
        window = self._windows.setdefault(token, (collections.deque(), collections.deque()))
        hour, minute = window
        while hour and hour[0] <= now - 3600:
            hour.popleft()
        while minute and minute[0] <= now - 60:
            minute.popleft()
        if len(minute) >= self.rate_limit_per_minute:
            retry = max(1, math.ceil(minute[0] + 60 - now))
            raise ApiError(429, "too_many_requests", "API rate limit exceeded.",
                           [*self._rate_headers(window, now), ("retry-after", str(retry))])
        if len(hour) >= self.rate_limit_per_hour:
            raise ApiError(429, "too_many_requests", "API rate limit exceeded.",
                           self._rate_headers(window, now))
        hour.append(now)
        minute.append(now)
        return self._rate_headers(window, now)

    # -- scenarios ------------------------------------------------------
    def _sources(self, app, spec):
        """Scenario tables that apply to ``app`` running ``spec``, most specific first.

        A request fault named by a tag suffix comes from the table :meth:`_arm` keeps,
        so that spending its count lasts; other tag scenarios last as long as the tag.
        """
        sources = []
        for tag in image_tags(spec) if spec else ():
            if ("tag", tag) in self._scenarios:
                sources.append((tag, self._scenarios[("tag", tag)]))
            name = _tag_scenario(tag)
            if name is None:
                continue
            if SCENARIOS[name][0] != "request":
                sources.append((tag, {name: dict(SCENARIOS[name][1])}))
            elif app is not None and self._armed.get(app.id, {}).get(tag):
                sources.append((tag, self._armed[app.id][tag]))
        if app is not None and ("app", app.id) in self._scenarios:
            sources.append((None, self._scenarios[("app", app.id)]))
        if ("global", None) in self._scenarios:
            sources.append((None, self._scenarios[("global", None)]))
        return sources

    def _arm(self, app, spec):
        """Arm the request faults the tag suffixes of ``spec`` name, with their full count.

        DigitalOcean's 429s, 5xx and dropped connections pass; each deployment of a
        tagged spec makes its fault fire ``count`` times on that app's requests, then
        the app answers normally again (rollback included).
        """
        armed = {}
        for tag in image_tags(spec):
            name = _tag_scenario(tag)
            if name is not None and SCENARIOS[name][0] == "request":
                armed[tag] = {name: dict(SCENARIOS[name][1])}
        if armed:
            self._armed[app.id] = armed
        else:
            self._armed.pop(app.id, None)

    def _take(self, name, sources, operation=None):
        """Parameters of scenario ``name`` if it fires now (spending one of its count),
        with ``tag`` set when an image tag selected it."""
        for tag, table in sources:
            values = table.get(name)
            if values is None or values.get("operation") not in (None, operation):
                continue
            count = values.get("count")
            if count is not None:
                if count <= 1:
                    del table[name]
                else:
                    values["count"] = count - 1
            return dict(values, tag=tag) if tag else values
        return None

    # -- apps -----------------------------------------------------------
    def _app(self, app_id):
        app = self._apps.get(app_id)
        if app is None:
            raise not_found()
        return app

    def _check_name(self, name, app_id=None):
        for other in self._apps.values():
            if other.spec["name"] == name and other.id != app_id:
                raise ApiError(409, "conflict", f"an app named {name!r} already exists")

    def _check_quota(self, app, spec, operation):
        if self._take("quota", self._sources(app, spec), operation) is not None:
            size = sum(int(c.get("instance_count") or 1) for kind, c in components(spec)
                       if kind in SIZED_KINDS)
            raise ApiError(422, "unprocessable_entity",
                           f"This request would exceed your account's App Platform quota: "
                           f"limit reached for instances ({size} requested).")

    def _check_not_pinned(self, app):
        if app.pinned_id:
            raise bad_request(f"app is pinned to rollback deployment {app.pinned_id}: commit or "
                              "revert the rollback before creating a new deployment")

    def _deploy(self, app, spec, now, *, cause, cause_type, action, cloned_from=None,
                seed=False):
        """Create a deployment of ``spec``, choosing its fate from registry and scenarios."""
        failure = None
        switches = True
        if not seed:
            sources = self._sources(app, spec)
            failure = self._failure(spec, sources)
            switches = self._take("version-not-switched", sources) is None
        deployment = Deployment(app, copy.deepcopy(spec), now, cause=cause,
                                cause_type=cause_type, action=action, failure=failure,
                                switches=switches, cloned_from=cloned_from,
                                timing=(0, 0) if seed else None)
        app.add_deployment(deployment, now)
        self._deployments[deployment.id] = deployment
        self._arm(app, spec)
        return deployment

    def _failure(self, spec, sources):
        comps = [component for _kind, component in components(spec)]
        for component in comps:
            image = component.get("image")
            reason = self.registry.missing_image(image)
            if reason:
                return {"scenario": "image-missing", "component": component["name"],
                        "message": f"IMAGE_PULL: failed to pull image {image_ref(image)}: "
                                   f"{reason} in registry {REGISTRY_NAME}."}
        for scenario in ("image-missing", "build-fail", "deploy-fail", "health-check-timeout"):
            values = self._take(scenario, sources)
            if values is None:
                continue
            tagged = [c for c in comps if (c.get("image") or {}).get("tag") == values.get("tag")]
            imaged = [c for c in comps if c.get("image")]
            component = (tagged or imaged or comps)[0]
            return {"scenario": scenario, "component": component["name"],
                    "message": self._failure_message(scenario, component)}
        return None

    @staticmethod
    def _failure_message(scenario, component):
        if scenario == "image-missing":
            return (f"IMAGE_PULL: failed to pull image {image_ref(component['image'])}: "
                    f"manifest unknown in registry {REGISTRY_NAME}.")
        if scenario == "build-fail":
            return f"Build failed: step '{BUILD_FAIL_STEP}' exited with code 1."
        if scenario == "deploy-fail":
            return (f"Deploy failed: component {component['name']} exited with a non-zero "
                    "exit code.")
        health = component.get("health_check") or {}
        return (f"Health checks failed: component {component['name']} did not pass its "
                f"health check on {health.get('http_path', '/')} before the timeout.")

    def _app_dict(self, app, now, base, pending=None):
        superseded = app.superseded_times()
        active = app.active_deployment(now, superseded)
        in_progress = app.in_progress_deployment(now)
        ingress = f"{base}/_ingress/{app.id}"

        def render(deployment):
            return deployment.to_dict(now, superseded.get(deployment.id), self.registry)

        data = {
            "id": app.id,
            "owner_uuid": "00000000-0000-4000-8000-0000000000aa",
            "spec": app.spec,
            "default_ingress": ingress,
            "created_at": rfc3339(app.created_at),
            "updated_at": rfc3339(app.updated_at),
            "region": region_object(app.spec.get("region")),
            "tier_slug": "basic",
            "live_url": "", "live_url_base": "", "live_domain": "",
            "domains": [],
        }
        if app.deployments:
            data["last_deployment_created_at"] = rfc3339(app.deployments[-1].created_at)
        if active:
            data.update(live_url=ingress, live_url_base=ingress,
                        live_domain=base.split("://", 1)[1],
                        active_deployment=render(active),
                        last_deployment_active_at=rfc3339(active.active_at()))
        if in_progress:
            data["in_progress_deployment"] = render(in_progress)
        if pending is None:
            pending = next((d for d in reversed(app.deployments)
                            if d.phase(now) != "CANCELED"), None)
        if pending is not None:
            data["pending_deployment"] = render(pending)
        if app.pinned_id:
            data["pinned_deployment"] = render(app.deployment(app.pinned_id))
        return data

    def _op_apps_list(self, query, now, base, **_):
        apps = [self._app_dict(app, now, base) for app in self._apps.values()]
        return 200, _paginate(apps, query, base, "/v2/apps", "apps")

    def _spec_from(self, body):
        if not body or "spec" not in body:
            raise bad_request("spec is required")
        spec = body["spec"]
        validate_spec(spec)
        return spec

    def _op_apps_create(self, environ, now, base, **_):
        spec = self._spec_from(self._body(environ))
        self._check_name(spec["name"])
        self._check_quota(None, spec, "apps_create")
        app = App(normalize_spec(spec, self._secret_key), now,
                  build_seconds=self.build_seconds, deploy_seconds=self.deploy_seconds)
        self._apps[app.id] = app
        deployment = self._deploy(app, app.spec, now, cause="app created", cause_type="MANUAL",
                                  action="CREATE_DEPLOYMENT")
        return 200, {"app": self._app_dict(app, now, base, pending=deployment)}

    def _op_apps_get(self, params, query, now, base, **_):
        name = query.get("name", [""])[0]
        if name:
            app = next((a for a in self._apps.values() if a.spec["name"] == name), None)
            if app is None:
                raise not_found()
        else:
            app = self._app(params["app_id"])
        return 200, {"app": self._app_dict(app, now, base)}

    def _op_apps_update(self, params, environ, now, base, **_):
        app = self._app(params["app_id"])
        body = self._body(environ)
        spec = self._spec_from(body)
        refresh = body.get("update_all_source_versions", False)
        if not isinstance(refresh, bool):
            raise bad_request("update_all_source_versions must be a boolean")
        self._check_name(spec["name"], app.id)
        normalized = normalize_spec(spec, self._secret_key)
        changed = normalized != app.spec
        deployment = None
        if changed or refresh:
            self._check_not_pinned(app)
            self._check_quota(app, normalized, "apps_update")
            app.spec = normalized
            app.updated_at = now
            deployment = self._deploy(app, normalized, now, cause="app spec updated",
                                      cause_type="MANUAL", action="UPDATE_SPEC")
        return 200, {"app": self._app_dict(app, now, base, pending=deployment)}

    def _op_apps_delete(self, params, **_):
        app = self._app(params["app_id"])
        del self._apps[app.id]
        self._armed.pop(app.id, None)
        for deployment in app.deployments:
            self._deployments.pop(deployment.id, None)
        return 200, {"id": app.id}

    def _op_apps_validate_appSpec(self, environ, **_):
        body = self._body(environ)
        spec = self._spec_from(body)
        app_id = body.get("app_id") or None
        if app_id:
            self._app(app_id)
        taken = any(a.spec["name"] == spec["name"] and a.id != app_id
                    for a in self._apps.values())
        normalized = normalize_spec(spec, self._secret_key)
        is_static = _is_static(normalized)
        # The account's other static apps: a static app within the free allowance costs 0.
        static_apps = sum(1 for other in self._apps.values()
                          if other.id != app_id and _is_static(other.spec))
        cost = 0 if is_static and static_apps < MAX_FREE_STATIC_APPS else monthly_cost(
            normalized)
        return 200, {
            "app_name_available": not taken,
            "app_name_suggestion": f"{spec['name'][:27]}-{uuid.uuid4().hex[:4]}" if taken else "",
            "app_is_static": is_static,
            "existing_static_apps": str(static_apps),
            "max_free_static_apps": str(MAX_FREE_STATIC_APPS),
            "app_is_starter": False, "existing_starter_apps": "0", "max_free_starter_apps": "3",
            "spec": normalized,
            "app_cost": cost,
            "app_tier_upgrade_cost": cost,
            "app_tier_downgrade_cost": cost,
        }

    def _op_apps_list_regions(self, **_):
        return 200, {"regions": [region_object(slug) for slug in REGIONS]}

    def _op_apps_list_instanceSizes(self, **_):
        return 200, {"instance_sizes": [_instance_size(slug) for slug in INSTANCE_PRICES
                                        if slug.startswith("apps-")], "discount_percent": 0}

    def _op_apps_get_instanceSize(self, params, **_):
        if params["slug"] not in INSTANCE_PRICES:
            raise not_found()
        return 200, {"instance_size": _instance_size(params["slug"])}

    def _op_apps_get_health(self, params, now, **_):
        app = self._app(params["app_id"])
        active = app.active_deployment(now)
        health = self._health_scenarios(app, active) if active else {}
        unhealthy = {"health-fail-always", "db-down", "api-error"} & set(health)
        result = []
        for kind, component in components(active.spec if active else app.spec):
            if kind not in ("services", "workers"):
                continue
            desired = int(component.get("instance_count") or 1)
            state = "UNKNOWN" if not active else "UNHEALTHY" if unhealthy else "HEALTHY"
            result.append({"name": component["name"], "cpu_usage_percent": 12.5,
                           "memory_usage_percent": 41.0, "replicas_desired": desired,
                           "replicas_ready": desired if state == "HEALTHY" else 0,
                           "state": state})
        return 200, {"app_health": {"components": result, "functions_components": []}}

    # -- deployments ----------------------------------------------------
    def _deployment_dict(self, app, deployment, now):
        superseded = app.superseded_times()
        return deployment.to_dict(now, superseded.get(deployment.id), self.registry)

    def _op_apps_list_deployments(self, params, query, now, base, **_):
        app = self._app(params["app_id"])
        types = {value for raw in query.get("deployment_types", ()) for value in raw.split(",")
                 if value}
        superseded = app.superseded_times()
        items = [d.to_dict(now, superseded.get(d.id), self.registry)
                 for d in reversed(app.deployments) if not types or d.cause_type in types]
        return 200, _paginate(items, query, base, f"/v2/apps/{app.id}/deployments",
                              "deployments")

    def _op_apps_create_deployment(self, params, environ, now, **_):
        app = self._app(params["app_id"])
        body = self._body(environ) or {}
        if not isinstance(body.get("force_build", False), bool):
            raise bad_request("force_build must be a boolean")
        self._check_not_pinned(app)
        self._check_quota(app, app.spec, "apps_create_deployment")
        deployment = self._deploy(app, app.spec, now, cause="manual", cause_type="MANUAL",
                                  action="CREATE_DEPLOYMENT")
        return 200, {"deployment": self._deployment_dict(app, deployment, now)}

    def _op_apps_restart(self, params, environ, now, **_):
        app = self._app(params["app_id"])
        body = self._body(environ) or {}
        names = {c["name"] for _k, c in components(app.spec)}
        unknown = [name for name in body.get("components") or () if name not in names]
        if unknown:
            raise bad_request(f"unknown component {unknown[0]!r}")
        self._check_not_pinned(app)
        deployment = self._deploy(app, app.spec, now, cause="app restart", cause_type="MANUAL",
                                  action="RESTART")
        return 200, {"deployment": self._deployment_dict(app, deployment, now)}

    def _op_apps_get_deployment(self, params, now, **_):
        app = self._app(params["app_id"])
        deployment = app.deployment(params["deployment_id"])
        return 200, {"deployment": self._deployment_dict(app, deployment, now)}

    def _op_apps_cancel_deployment(self, params, now, **_):
        """Cancel a running deployment; a finished one is returned unchanged (not specified
        by DO: answering 200 keeps a cancel that races with completion harmless)."""
        app = self._app(params["app_id"])
        deployment = app.deployment(params["deployment_id"])
        deployment.stop(now, "CANCELED")
        return 200, {"deployment": self._deployment_dict(app, deployment, now)}

    # -- logs -----------------------------------------------------------
    def _logs(self, deployment, component_name, *, query, now, base):
        log_type = query.get("type", [""])[0]
        if not log_type:
            raise bad_request("type is required: one of " + ", ".join(LOG_TYPES))
        if log_type not in LOG_TYPES:
            raise bad_request(f"invalid log type {log_type!r}: one of " + ", ".join(LOG_TYPES))
        component_name = component_name or query.get("component_name", [""])[0] or None
        if component_name and component_name not in {
                c["name"] for _k, c in components(deployment.spec)}:
            raise not_found(f"component {component_name!r} not found in deployment")
        if not reached(deployment, log_type, now):
            raise bad_request(f"{log_type} logs are not available: deployment {deployment.id} "
                              f"did not reach that phase")
        url = f"{base}/_logs/{deployment.id}/{component_name or '_all'}/{log_type}.log"
        return 200, {"live_url": "", "historic_urls": [url]}

    def _active_for_logs(self, app, now):
        active = app.active_deployment(now)
        if active is None:
            raise not_found("the app has no active deployment")
        return active

    def _op_apps_get_logs(self, params, query, now, base, **_):
        app = self._app(params["app_id"])
        deployment = app.deployment(params["deployment_id"])
        return self._logs(deployment, params["component_name"], query=query, now=now, base=base)

    def _op_apps_get_logs_aggregate(self, params, query, now, base, **_):
        app = self._app(params["app_id"])
        deployment = app.deployment(params["deployment_id"])
        return self._logs(deployment, None, query=query, now=now, base=base)

    def _op_apps_get_logs_active_deployment(self, params, query, now, base, **_):
        app = self._app(params["app_id"])
        return self._logs(self._active_for_logs(app, now), params["component_name"],
                          query=query, now=now, base=base)

    def _op_apps_get_logs_active_deployment_aggregate(self, params, query, now, base, **_):
        app = self._app(params["app_id"])
        return self._logs(self._active_for_logs(app, now), None, query=query, now=now,
                          base=base)

    def _log_file(self, raw_path):
        parts = raw_path.strip("/").split("/")
        if len(parts) != 4 or not parts[3].endswith(".log"):
            raise not_found()
        _prefix, deployment_id, component, log_file = (unquote(part) for part in parts)
        log_type = log_file[:-4]
        with self._lock:
            deployment = self._deployments.get(deployment_id)
            if deployment is None or log_type not in LOG_TYPES:
                raise not_found()
            now = self.clock.now()
            app = deployment.app
            health = self._health_scenarios(app, deployment)
            text = log_text(deployment, None if component == "_all" else component, log_type,
                            now, health_scenarios=health)
            hang = self._take("log-hang", self._sources(app, deployment.spec))
        delay = float(hang.get("delay", 30.0)) if hang else 0.0
        return Response(200, text.encode(), [("Content-Type", "text/plain; charset=utf-8")],
                        delay=delay)

    # -- rollback -------------------------------------------------------
    def _rollback_body(self, app, environ):
        body = self._body(environ) or {}
        deployment_id = body.get("deployment_id")
        if not deployment_id or not isinstance(deployment_id, str):
            raise bad_request("deployment_id is required")
        skip_pin = body.get("skip_pin", False)
        if not isinstance(skip_pin, bool):
            raise bad_request("skip_pin must be a boolean")
        return app.deployment(deployment_id), skip_pin

    def _rollback_check(self, app, target, now):
        """(error condition or None, warnings) for rolling ``app`` back to ``target``."""
        error = None
        active_at = target.active_at()
        if app.pinned_id:
            error = {"code": "app_pinned", "message": "the app is pinned to rollback deployment "
                                                      f"{app.pinned_id}"}
        elif active_at is None or active_at > now:
            error = {"code": "incompatible_phase", "message": f"deployment {target.id} was "
                     "never active and cannot be rolled back to"}
        elif target.spec.get("region") != app.spec.get("region"):
            error = {"code": "region_conflict", "message": "the deployment's region differs "
                     "from the app's current region"}
        undigested = [c["name"] for _k, c in components(target.spec)
                      if c.get("image") and not c["image"].get("digest")]
        warnings = []
        if undigested:
            warnings.append({"code": "image_source_missing_digest", "components": undigested,
                             "message": "image sources without a digest may not return to the "
                                        "exact image that was deployed"})
        return error, warnings

    def _op_apps_validate_rollback(self, params, environ, now, **_):
        app = self._app(params["app_id"])
        target, _skip_pin = self._rollback_body(app, environ)
        error, warnings = self._rollback_check(app, target, now)
        data = {"valid": error is None, "warnings": warnings}
        if error:
            data["error"] = error
        return 200, data

    def _op_apps_create_rollback(self, params, environ, now, **_):
        app = self._app(params["app_id"])
        target, skip_pin = self._rollback_body(app, environ)
        error, _warnings = self._rollback_check(app, target, now)
        if error:
            raise bad_request(f"rollback is not possible ({error['code']}): {error['message']}")
        spec = copy.deepcopy(target.spec)
        self._check_quota(app, spec, "apps_create_rollback")
        pre_rollback = app.spec
        app.spec = spec
        deployment = self._deploy(app, spec, now, cause=f"rollback to deployment {target.id}",
                                  cause_type="MANUAL_ROLLBACK", action="ROLLBACK_APP",
                                  cloned_from=target.id)
        if not skip_pin:
            app.pinned_id = deployment.id
            app.pre_rollback_spec = pre_rollback
        return 200, {"deployment": self._deployment_dict(app, deployment, now)}

    def _pinned(self, app, action):
        if not app.pinned_id:
            raise bad_request(f"the app has no pinned rollback to {action}")

    def _op_apps_commit_rollback(self, params, **_):
        app = self._app(params["app_id"])
        self._pinned(app, "commit")
        app.pinned_id = None
        app.pre_rollback_spec = None
        return 200, None

    def _op_apps_revert_rollback(self, params, now, **_):
        app = self._app(params["app_id"])
        self._pinned(app, "revert")
        spec = app.pre_rollback_spec
        app.pinned_id = None
        app.pre_rollback_spec = None
        app.spec = spec
        deployment = self._deploy(app, spec, now, cause="revert of rollback",
                                  cause_type="MANUAL", action="REVERT_APP_ROLLBACK")
        return 200, {"deployment": self._deployment_dict(app, deployment, now)}

    # -- registry -------------------------------------------------------
    def _registry(self, name):
        if name != self.registry.name:
            raise not_found(f"registry {name!r} not found")
        return self.registry

    def _op_registry_get(self, **_):
        return 200, {"registry": self.registry.to_dict()}

    def _op_registries_list(self, **_):
        return 200, {"registries": [self.registry.to_dict()]}

    def _op_registries_get(self, params, **_):
        return 200, {"registry": self._registry(params["registry_name"]).to_dict()}

    def _op_registry_list_repositories(self, params, query, base, **_):
        registry = self._registry(params["registry_name"])
        items = [registry.repository_object(name) for name in sorted(registry.repositories)]
        return 200, _paginate(items, query, base, f"/v2/registry/{registry.name}/repositories",
                              "repositories")

    _op_registry_list_repositoriesV2 = _op_registry_list_repositories
    _op_registries_list_repositoriesV2 = _op_registry_list_repositories

    def _op_registry_list_repositoryTags(self, params, query, base, environ, **_):
        registry = self._registry(params["registry_name"])
        tags = registry.tags(params["repository_name"])
        if tags is None:
            raise not_found(f"repository {params['repository_name']!r} not found")
        path = environ.get("RAW_URI", "").split("?", 1)[0] or (
            f"/v2/registry/{registry.name}/repositories/{params['repository_name']}/tags")
        return 200, _paginate(tags, query, base, path, "tags")

    _op_registries_list_repositoryTags = _op_registry_list_repositoryTags

    # ------------------------------------------------------------------
    # fake ingress
    # ------------------------------------------------------------------
    def _health_scenarios(self, app, deployment):
        """Ingress scenarios in force for ``deployment`` as {name: params} (not spent)."""
        found = {}
        for _tag, table in reversed(self._sources(app, deployment.spec)):
            for name, values in table.items():
                if SCENARIOS[name][0] == "ingress":
                    found[name] = values
        return found

    def _ingress(self, method, raw_path):
        _prefix, _, rest = raw_path.partition("/_ingress/")
        app_id, _, path = rest.partition("/")
        path = "/" + unquote(path)
        with self._lock:
            app = self._apps.get(app_id)
            if app is None:
                return Response(404, b"404: app not found", [("Content-Type", "text/plain")])
            now = self.clock.now()
            live = app.active_deployment(now)
            if live is None:
                return Response(503, b"503: no deployment is live yet",
                                [("Content-Type", "text/plain")])
            version = spec_version(live.spec)
            scenarios = self._health_scenarios(app, live)
            response = self._ingress_page(app, live, version, path, scenarios)
        response.headers += [("X-Deployment-ID", live.id), ("X-App-Version", version)]
        return response

    def _ingress_page(self, app, live, version, path, scenarios):
        if path in ("/api/v1/health", "/web/health"):
            return self._health_page(app, live, version, path, scenarios)
        delay = float(scenarios["slow-endpoints"].get("delay", 2.0)) \
            if "slow-endpoints" in scenarios else 0.0
        missing = scenarios.get("endpoint-missing")
        if missing and path in ([missing["path"]] if isinstance(missing.get("path"), str)
                                else missing.get("path") or ()):
            return Response(404, b"<html><body>404: Not Found</body></html>",
                            [("Content-Type", "text/html; charset=utf-8")], delay)
        if path.startswith("/api/") and "api-error" in scenarios:
            return self._api_error(scenarios["api-error"], version)
        if path in ("/", "/web", "/web/login"):
            return _html(f"<title>Login | Odoo {version}</title><form><label>Email</label>"
                         "<button>Log in</button></form> Login", delay)
        if path == "/web/database/selector":
            return _html("<title>Odoo</title><h1>Database</h1><p>Select a database</p>", delay)
        if path.startswith("/web/static/"):
            if "static-missing" in scenarios:
                return Response(404, b"404: Not Found", [("Content-Type", "text/plain")], delay)
            content_type = ("text/css" if path.endswith(".css") else "application/javascript"
                            if path.endswith(".js") else "text/html")
            return Response(200, f"/* odoo {version} */\nbody {{ margin: 0; }}\n".encode(),
                            [("Content-Type", f"{content_type}; charset=utf-8")], delay)
        return Response(404, b"<html><body>404: Not Found</body></html>",
                        [("Content-Type", "text/html; charset=utf-8")], delay)

    def _health_page(self, app, live, version, path, scenarios):
        delay = float(scenarios["health-slow"].get("delay", 2.0)) \
            if "health-slow" in scenarios else 0.0
        if path == "/api/v1/health" and "api-error" in scenarios:
            response = self._api_error(scenarios["api-error"], version)
            response.delay = delay
            return response
        ok = path == "/web/health"
        failing = "health-fail-always" in scenarios
        if "health-fail-once" in scenarios and (app.id, version) not in self._health_failed:
            self._health_failed.add((app.id, version))
            failing = True
        if failing:
            body = ({"status": "fail"} if ok else
                    {"status": "error", "database": "connected", "version": version})
            return _json_response(503, body) if not delay else _delayed(503, body, delay)
        if "db-down" in scenarios:
            body = ({"status": "fail"} if ok else
                    {"status": "error", "database": "unreachable", "version": version})
            return _delayed(503, body, delay)
        body = ({"status": "pass"} if ok else
                {"status": "ok", "database": "connected", "version": version,
                 "deployment_id": live.id})
        return _delayed(200, body, delay)

    @staticmethod
    def _api_error(values, version):
        status = int(values.get("status", 500))
        return _json_response(status, {"status": "error", "error": "Internal Server Error",
                                       "version": version})

    # ------------------------------------------------------------------
    # /_sim control
    # ------------------------------------------------------------------
    def _control(self, environ, method, raw_path):
        path = raw_path[len("/_sim"):].rstrip("/")
        body = (self._body(environ) or {}) if method == "POST" else {}
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/stats":
            return _json_response(200, self.stats())
        if method == "GET" and path == "/scenarios":
            return _json_response(200, self.scenarios())
        if method == "GET" and path == "/clock":
            return _json_response(200, {"now": self.clock.now()})
        if method == "GET" and len(parts) == 2 and parts[0] == "apps":
            return _json_response(200, self.get_app(parts[1]))
        if method != "POST":
            raise not_found()
        if path == "/reset":
            self.reset()
            return _json_response(200, {})
        if path == "/apps":
            return _json_response(200, self.create_app(
                body.get("spec"), app_id=body.get("app_id"),
                build_seconds=body.get("build_seconds", 0),
                deploy_seconds=body.get("deploy_seconds", 0), scenario=body.get("scenario")))
        if len(parts) == 3 and parts[0] == "apps" and parts[2] == "timing":
            return _json_response(200, self.set_timing(
                parts[1], body.get("build_seconds"), body.get("deploy_seconds")))
        if path == "/scenarios":
            values = dict(body.get("params") or {})
            values.update({k: v for k, v in body.items()
                           if k not in ("scenario", "app_id", "tag", "params")})
            return _json_response(200, self.set_scenario(
                body.get("scenario"), app_id=body.get("app_id"), tag=body.get("tag"), **values))
        if path == "/registry/tags":
            if not body.get("repository") or not body.get("tag"):
                raise bad_request("repository and tag are required")
            return _json_response(200, self.push_tag(body["repository"], body["tag"]))
        if path == "/clock/advance":
            seconds = body.get("seconds")
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                raise bad_request("seconds must be a non-negative number")
            return _json_response(200, {"now": self.clock.advance(seconds)})
        raise not_found()


def _tag_scenario(tag):
    """The scenario a ``--<name>`` suffix of ``tag`` selects, or None."""
    name = tag.rpartition(TAG_SCENARIO_SEPARATOR)[2]
    return name if TAG_SCENARIO_SEPARATOR in tag and name in SCENARIOS else None


def _html(text, delay=0.0):
    return Response(200, f"<!DOCTYPE html><html><body>{text}</body></html>".encode(),
                    [("Content-Type", "text/html; charset=utf-8")], delay)


def _delayed(status, data, delay):
    response = _json_response(status, data)
    response.delay = delay
    return response


def _is_static(spec):
    """An app of static sites only, which DigitalOcean prices apart."""
    kinds = [kind for kind, _component in components(spec)]
    return bool(kinds) and all(kind == "static_sites" for kind in kinds)


def _instance_size(slug):
    cpus, memory = slug.split("-")[2], slug.split("-")[3]
    return {"slug": slug, "name": slug, "cpus": cpus.replace("vcpu", ""),
            "memory_bytes": str(int(float(memory.replace("gb", "")) * 1024 ** 3)),
            "cpu_type": "DEDICATED" if slug.startswith("apps-d-") else "SHARED",
            "usd_per_month": f"{INSTANCE_PRICES[slug]:.2f}",
            "usd_per_second": f"{INSTANCE_PRICES[slug] / 2_592_000:.8f}",
            "tier_slug": "professional" if slug.startswith("apps-d-") else "basic",
            "single_instance_only": slug in ("apps-s-1vcpu-0.5gb", "apps-s-1vcpu-1gb-fixed"),
            "scalable": slug.startswith("apps-d-"), "deprecation_intent": False,
            "bandwidth_allowance_gib": "50"}
