"""In-memory App Platform state: apps, deployments, the container registry.

Nothing here runs in the background. A deployment records when it was created
and how long its build and deploy take; its phase and progress steps are
derived from the clock whenever somebody reads it, which keeps the simulator
deterministic under a :class:`~.clock.ManualClock`.
"""

import copy
import hashlib
import math
import re
import uuid

from . import sealing
from .clock import ZERO_TIME, rfc3339

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
ENV_KEY_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")
COMPONENT_KINDS = ("services", "workers", "jobs", "static_sites", "functions")
SIZED_KINDS = ("services", "workers", "jobs")
KIND_LABELS = {"services": "service", "workers": "worker", "jobs": "job",
               "static_sites": "static site", "functions": "functions"}
DEFAULT_INSTANCE_SIZE = "apps-s-1vcpu-0.5gb"
VERSION_ENV = "DO_DEPLOY_VERSION"
REGISTRY_NAME = "sim-registry"
REGISTRY_TYPES = ("DOCR", "DOCKER_HUB", "GHCR")

# Monthly USD price per instance; close to DigitalOcean's published list prices.
INSTANCE_PRICES = {
    "apps-s-1vcpu-0.5gb": 5, "apps-s-1vcpu-1gb-fixed": 10, "apps-s-1vcpu-1gb": 12,
    "apps-s-1vcpu-2gb": 25, "apps-s-2vcpu-4gb": 50,
    "apps-d-1vcpu-0.5gb": 29, "apps-d-1vcpu-1gb": 34, "apps-d-1vcpu-2gb": 39,
    "apps-d-1vcpu-4gb": 49, "apps-d-2vcpu-4gb": 78, "apps-d-2vcpu-8gb": 98,
    "apps-d-4vcpu-8gb": 156, "apps-d-4vcpu-16gb": 196, "apps-d-8vcpu-32gb": 392,
    # deprecated legacy slugs, still accepted by the API
    "basic-xxs": 5, "basic-xs": 10, "basic-s": 20, "basic-m": 40,
    "professional-xs": 12, "professional-s": 25, "professional-m": 50,
    "professional-1l": 75, "professional-l": 100, "professional-xl": 150,
}
STATIC_SITE_PRICE = 3
# Static apps an account runs for free (the starter tier); propose prices the next ones.
MAX_FREE_STATIC_APPS = 3

REGIONS = {
    "atl": ("Atlanta", "usa", "North America", ["atl1"]),
    "nyc": ("New York", "usa", "North America", ["nyc1", "nyc3"]),
    "sfo": ("San Francisco", "usa", "North America", ["sfo3"]),
    "tor": ("Toronto", "canada", "North America", ["tor1"]),
    "ams": ("Amsterdam", "netherlands", "Europe", ["ams3"]),
    "fra": ("Frankfurt", "germany", "Europe", ["fra1"]),
    "lon": ("London", "uk", "Europe", ["lon1"]),
    "blr": ("Bangalore", "india", "Asia", ["blr1"]),
    "sgp": ("Singapore", "singapore", "Asia", ["sgp1"]),
    "syd": ("Sydney", "australia", "Australia", ["syd1"]),
}
DEFAULT_REGION = "nyc"

TERMINAL_PHASES = ("ACTIVE", "ERROR", "CANCELED", "SUPERSEDED")
SIM_USER = {"uuid": "00000000-0000-4000-8000-00000000a11c", "email": "deployer@example.com",
            "full_name": "Simulated User"}

# Where a failing deployment fails: (leaf step, reason code, phase it fails in).
FAILURES = {
    "image-missing": ("build", "ImagePullFailed", "BUILDING"),
    "build-fail": ("build", "BuildJobExitNonZero", "BUILDING"),
    "deploy-fail": ("deploy", "DeployContainerExitNonZero", "DEPLOYING"),
    "health-check-timeout": ("wait", "DeployContainerHealthChecksFailed", "DEPLOYING"),
}
BUILD_FAIL_STEP = "RUN pip install --no-cache-dir -r requirements.txt"


class ApiError(Exception):
    """An error answered with DigitalOcean's error body."""

    def __init__(self, status, error_id, message, headers=()):
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.headers = list(headers)


def bad_request(message):
    return ApiError(400, "bad_request", message)


def not_found(message="The resource you requested could not be found."):
    return ApiError(404, "not_found", message)


# ---------------------------------------------------------------------------
# App specs
# ---------------------------------------------------------------------------

def components(spec):
    """Yield ``(kind, component)`` for every component of ``spec`` in spec order."""
    for kind in COMPONENT_KINDS:
        for component in spec.get(kind) or ():
            yield kind, component


def image_tags(spec):
    """Image tags named by the components of ``spec`` (in order, unique)."""
    tags = []
    for _kind, component in components(spec):
        tag = (component.get("image") or {}).get("tag")
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def spec_version(spec):
    """The version the ingress reports: ``DO_DEPLOY_VERSION`` of the first service, else
    its image tag."""
    first = (spec.get("services") or [None])[0] or next(
        (c for _k, c in components(spec)), None)
    if not first:
        return ""
    for env in first.get("envs") or ():
        if env.get("key") == VERSION_ENV and env.get("value"):
            return env["value"]
    return (first.get("image") or {}).get("tag") or ""


def _field_error(field, problem):
    return bad_request(f'error validating app spec field "{field}": {problem}')


def validate_spec(spec):
    """Raise ApiError(400) naming the first problem of ``spec``, as DO reports only one."""
    if not isinstance(spec, dict):
        raise bad_request("error validating app spec: spec must be an object")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise _field_error("name", f"{name!r} must be 2-32 lowercase letters, digits or dashes, "
                                   "starting with a letter")
    region = spec.get("region")
    if region not in (None, "") and region not in REGIONS:
        raise _field_error("region", f"unknown region {region!r}")
    seen = set()
    count = 0
    for kind in COMPONENT_KINDS:
        items = spec.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            raise _field_error(kind, "must be a list")
        for index, component in enumerate(items):
            field = f"{kind}[{index}]"
            if not isinstance(component, dict):
                raise _field_error(field, "must be an object")
            _validate_component(kind, field, component, seen)
            count += 1
    if not count:
        raise bad_request("error validating app spec: an app must have at least one component")


def _validate_component(kind, field, component, seen):
    name = component.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise _field_error(f"{field}.name", f"{name!r} must be 2-32 lowercase letters, digits "
                                            "or dashes, starting with a letter")
    if name in seen:
        raise _field_error(f"{field}.name", f"component name {name!r} is used more than once")
    seen.add(name)
    if kind in SIZED_KINDS:
        slug = component.get("instance_size_slug")
        if slug is not None and slug not in INSTANCE_PRICES:
            raise _field_error(f"{field}.instance_size_slug",
                               f"invalid instance_size_slug {slug!r}")
        count = component.get("instance_count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise _field_error(f"{field}.instance_count",
                               f"instance_count must be an integer >= 1, got {count!r}")
    image = component.get("image")
    sources = [key for key in ("image", "git", "github", "gitlab", "bitbucket")
               if component.get(key)]
    if kind != "functions" and not sources:
        raise _field_error(field, f"{KIND_LABELS[kind]} {name!r} needs a source (image or git)")
    if image is not None:
        _validate_image(f"{field}.image", image)
    for env_index, env in enumerate(component.get("envs") or ()):
        key = env.get("key") if isinstance(env, dict) else None
        if not isinstance(key, str) or not ENV_KEY_RE.match(key):
            raise _field_error(f"{field}.envs[{env_index}].key", f"invalid env key {key!r}")


def _validate_image(field, image):
    if not isinstance(image, dict):
        raise _field_error(field, "must be an object")
    registry_type = image.get("registry_type")
    if registry_type not in REGISTRY_TYPES:
        raise _field_error(f"{field}.registry_type",
                           f"registry_type must be one of {', '.join(REGISTRY_TYPES)}")
    if not image.get("repository"):
        raise _field_error(f"{field}.repository", "repository is required")
    if image.get("tag") and image.get("digest"):
        raise _field_error(field, "tag and digest are mutually exclusive")
    if registry_type == "DOCKER_HUB" and not image.get("registry"):
        raise _field_error(f"{field}.registry", "registry is required for DOCKER_HUB images")


def normalize_spec(spec, key):
    """The spec as DO keeps and returns it: a copy with the defaults it fills in and its
    secrets encrypted under ``key`` (:func:`seal_secrets`)."""
    spec = copy.deepcopy(spec)
    seal_secrets(spec, key)
    spec.setdefault("region", DEFAULT_REGION)
    for kind, component in components(spec):
        if kind in SIZED_KINDS:
            component.setdefault("instance_size_slug", DEFAULT_INSTANCE_SIZE)
            component.setdefault("instance_count", 1)
        image = component.get("image")
        if image and not image.get("tag") and not image.get("digest"):
            image["tag"] = "latest"
    return spec


def _secret_fields(spec):
    """``(field path, holder, key)`` of every SECRET env value and registry credential."""
    holders = [("", spec)] + [(f"{kind}[{index}].", component)
                              for kind in COMPONENT_KINDS
                              for index, component in enumerate(spec.get(kind) or ())]
    for prefix, holder in holders:
        for index, env in enumerate(holder.get("envs") or ()):
            if isinstance(env, dict) and env.get("type") == "SECRET":
                yield f"{prefix}envs[{index}].value", env, "value"
        image = holder.get("image") if prefix else None
        if isinstance(image, dict) and "registry_credentials" in image:
            yield f"{prefix}image.registry_credentials", image, "registry_credentials"


def seal_secrets(spec, key):
    """Encrypt the plain secrets of ``spec`` in place, as DO does on submission; an
    encrypted value sent back is kept as it is, once it decrypts under ``key``."""
    for field, holder, name in _secret_fields(spec):
        value = holder[name]
        if not isinstance(value, str) or not value:
            continue
        if not sealing.is_sealed(value):
            holder[name] = sealing.seal(key, value)
        elif sealing.unseal(key, value) is None:
            raise _field_error(field, "the encrypted value does not decrypt: send back the "
                                      "value DigitalOcean returned, or a new plain value")


def plain_envs(spec, key):
    """``{component name: {env key: value}}``: each component's environment as its
    containers see it, app-wide variables included and secrets decrypted."""
    def values(holder):
        return {env["key"]: sealing.unseal(key, env.get("value")) if env.get("type") == "SECRET"
                else env.get("value") for env in holder.get("envs") or ()
                if isinstance(env, dict)}

    app_wide = values(spec)
    return {component["name"]: {**app_wide, **values(component)}
            for _kind, component in components(spec)}


def monthly_cost(spec):
    """Monthly USD cost of ``spec``: instance price x count, plus static sites."""
    total = 0
    for kind, component in components(spec):
        if kind in SIZED_KINDS:
            slug = component.get("instance_size_slug") or DEFAULT_INSTANCE_SIZE
            total += INSTANCE_PRICES[slug] * int(component.get("instance_count") or 1)
        elif kind == "static_sites":
            total += STATIC_SITE_PRICE
    return total


def region_object(slug):
    label, flag, continent, data_centers = REGIONS.get(slug or DEFAULT_REGION,
                                                       REGIONS[DEFAULT_REGION])
    return {"slug": slug or DEFAULT_REGION, "label": label, "flag": flag,
            "continent": continent, "data_centers": data_centers,
            "default": (slug or DEFAULT_REGION) == DEFAULT_REGION, "disabled": False}


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

class Registry:
    """The account's one DOCR registry: repositories and their tags, in push order."""

    def __init__(self, created_at):
        self.name = REGISTRY_NAME
        self.created_at = created_at
        self.repositories = {}

    def push(self, repository, tag, now):
        tags = self.repositories.setdefault(repository, {})
        pushes = tags.pop(tag, {}).get("pushes", 0) + 1
        digest = hashlib.sha256(f"{repository}:{tag}:{pushes}".encode()).hexdigest()
        size = 50_000_000 + int(digest[:6], 16)
        tags[tag] = {"registry_name": self.name, "repository": repository, "tag": tag,
                     "manifest_digest": f"sha256:{digest}", "compressed_size_bytes": size // 3,
                     "size_bytes": size, "updated_at": rfc3339(now), "pushes": pushes}
        return self.tag_object(tags[tag])

    @staticmethod
    def tag_object(entry):
        return {key: value for key, value in entry.items() if key != "pushes"}

    def tags(self, repository):
        """Tag objects of ``repository``, newest first; None if the repository is unknown."""
        entries = self.repositories.get(repository)
        if entries is None:
            return None
        return [self.tag_object(entry) for entry in reversed(entries.values())]

    def missing_image(self, image):
        """Why ``image`` cannot be pulled from this registry, or None.

        Only DOCR images in a repository this registry knows are checked: an
        unknown repository may live in another account the simulator knows
        nothing about.
        """
        if not image or image.get("registry_type") != "DOCR":
            return None
        entries = self.repositories.get(image.get("repository"))
        if entries is None:
            return None
        if image.get("digest"):
            if any(entry["manifest_digest"] == image["digest"] for entry in entries.values()):
                return None
            return f"manifest {image['digest']} not found"
        tag = image.get("tag") or "latest"
        return None if tag in entries else f"tag {tag!r} not found"

    def digest(self, image):
        entries = self.repositories.get(image.get("repository")) or {}
        entry = entries.get(image.get("tag") or "latest")
        return entry["manifest_digest"] if entry else ""

    def to_dict(self, region=DEFAULT_REGION):
        usage = sum(entry["compressed_size_bytes"] for tags in self.repositories.values()
                    for entry in tags.values())
        return {"name": self.name, "created_at": rfc3339(self.created_at), "region": "nyc3"
                if region == DEFAULT_REGION else region, "storage_usage_bytes": usage,
                "storage_usage_bytes_updated_at": rfc3339(self.created_at),
                "subscription": {"tier": {"name": "Basic", "slug": "basic"}}}

    def repository_object(self, repository):
        tags = self.tags(repository)
        return {"registry_name": self.name, "name": repository,
                "latest_tag": tags[0] if tags else None, "tag_count": len(tags)}


def image_ref(image):
    """The human-readable reference of an image source, for messages and logs."""
    host = {"DOCR": f"registry.digitalocean.com/{REGISTRY_NAME}", "GHCR": "ghcr.io"}.get(
        image.get("registry_type"), image.get("registry") or "docker.io")
    suffix = f"@{image['digest']}" if image.get("digest") else f":{image.get('tag') or 'latest'}"
    return f"{host}/{image.get('repository')}{suffix}"


# ---------------------------------------------------------------------------
# Deployments
# ---------------------------------------------------------------------------

class Deployment:
    """One deployment and the timeline it follows.

    Timeline, with B = build seconds and D = deploy seconds from creation:
    PENDING_BUILD for the first 10% of B, BUILDING until B, PENDING_DEPLOY for
    the first 10% of D, DEPLOYING until B + D, then ACTIVE. Progress steps
    follow the same slots, so ``success_steps == total_steps`` exactly when
    the phase is ACTIVE. A failure turns the failing step ERROR at its end.
    """

    def __init__(self, app, spec, now, *, cause, cause_type, action, failure=None,
                 switches=True, cloned_from=None, timing=None):
        self.id = str(uuid.uuid4())
        self.app = app
        self.spec = spec
        self.created_at = now
        build_seconds, deploy_seconds = timing or (app.build_seconds, app.deploy_seconds)
        self.build_seconds = float(build_seconds)
        self.deploy_seconds = float(deploy_seconds)
        self.cause = cause
        self.cause_type = cause_type
        self.action = action
        self.failure = failure  # {"scenario", "component", "message"} or None
        self.switches = switches
        self.cloned_from = cloned_from
        active = app.active_deployment(now)
        self.previous_deployment_id = active.id if active else ""
        self.stopped_at = None
        self.stopped_as = None
        self.leaves = self._leaves()

    # -- timeline -----------------------------------------------------------
    def _leaves(self):
        """Leaf steps as (path, start, end, component, message_base)."""
        t0, build, deploy = self.created_at, self.build_seconds, self.deploy_seconds
        built = t0 + build
        names = [(kind, component["name"]) for kind, component in components(self.spec)]
        leaves = [(("build", "initialize"), t0, t0 + 0.1 * build, None, None)]
        for kind, name in names:
            leaves.append((("build", "components", name), t0 + 0.1 * build, built, name,
                           f"Building {KIND_LABELS[kind]}"))
        leaves.append((("deploy", "initialize"), built, built + 0.1 * deploy, None, None))
        for kind, name in names:
            label = KIND_LABELS[kind]
            leaves.append((("deploy", "components", name, "deploy"), built + 0.1 * deploy,
                           built + 0.6 * deploy, name, f"Deploying {label}"))
            leaves.append((("deploy", "components", name, "wait"), built + 0.6 * deploy,
                           built + 0.9 * deploy, name, f"Waiting for {label}"))
        leaves.append((("deploy", "finalize"), built + 0.9 * deploy, built + deploy, None, None))
        return leaves

    @property
    def failing_leaf(self):
        if not self.failure:
            return None
        step = FAILURES[self.failure["scenario"]][0]
        component = self.failure["component"]
        path = (("build", "components", component) if step == "build"
                else ("deploy", "components", component, step))
        return next(leaf for leaf in self.leaves if leaf[0] == path)

    @property
    def failed_at(self):
        leaf = self.failing_leaf
        return leaf[2] if leaf else None

    @property
    def finished_at(self):
        """When the deployment ends by itself (ACTIVE or ERROR)."""
        failed_at = self.failed_at
        return failed_at if failed_at is not None else self.leaves[-1][2]

    def active_at(self):
        """When this deployment became (or becomes) ACTIVE; None if it never does."""
        if self.failure:
            return None
        end = self.leaves[-1][2]
        if self.stopped_at is not None and self.stopped_at < end:
            return None
        return end

    def is_terminal(self, now):
        return self.finished_at <= now or (self.stopped_at is not None and self.stopped_at <= now)

    def stop(self, now, phase):
        """Cancel or supersede this deployment at ``now`` if it is still running."""
        if not self.is_terminal(now):
            self.stopped_at = now
            self.stopped_as = phase

    def phase(self, now, superseded_at=None):
        if self.stopped_at is not None and now >= self.stopped_at:
            return self.stopped_as
        failed_at = self.failed_at
        if failed_at is not None and now >= failed_at:
            return "ERROR"
        built = self.created_at + self.build_seconds
        if now >= built + self.deploy_seconds:
            if superseded_at is not None and now >= superseded_at:
                return "SUPERSEDED"
            return "ACTIVE"
        if now < self.created_at + 0.1 * self.build_seconds:
            return "PENDING_BUILD"
        if now < built:
            return "BUILDING"
        if now < built + 0.1 * self.deploy_seconds:
            return "PENDING_DEPLOY"
        return "DEPLOYING"

    def phase_changed_at(self, now, superseded_at=None):
        """When the phase seen at ``now`` began."""
        if self.stopped_at is not None and now >= self.stopped_at:
            return self.stopped_at
        failed_at = self.failed_at
        if failed_at is not None and now >= failed_at:
            return failed_at
        if superseded_at is not None and now >= superseded_at:
            return superseded_at
        t0, build, deploy = self.created_at, self.build_seconds, self.deploy_seconds
        boundaries = [t0, t0 + 0.1 * build, t0 + build, t0 + build + 0.1 * deploy,
                      t0 + build + deploy]
        return max(b for b in boundaries if b <= now) if now >= t0 else t0

    # -- rendering ----------------------------------------------------------
    def _leaf_states(self, now):
        """Status, start, end and reason of every leaf step at ``now``."""
        failing, failed_at, stopped_at = self.failing_leaf, self.failed_at, self.stopped_at
        if failed_at is not None and failed_at <= now and (
                stopped_at is None or failed_at <= stopped_at):
            mode, cutoff = "failed", failed_at
        elif stopped_at is not None and stopped_at <= now:
            mode, cutoff = "stopped", stopped_at
        else:
            mode, cutoff = "running", now
        states = []
        after_failure = False
        for leaf in self.leaves:
            _path, start, end, _component, _message = leaf
            reason = None
            if mode == "failed" and leaf is failing:
                status, after_failure = "ERROR", True
                reason = {"code": FAILURES[self.failure["scenario"]][1],
                          "message": self.failure["message"]}
            elif after_failure:
                status = "PENDING"
            elif end <= cutoff:
                status = "SUCCESS"
            elif start <= cutoff and mode == "stopped":
                status, end = "ERROR", cutoff
                reason = {"code": f"Deployment{self.stopped_as.title()}",
                          "message": f"The deployment was {self.stopped_as.lower()}."}
            elif start <= cutoff and mode == "running":
                status = "RUNNING"
            else:
                status = "PENDING"
            states.append((leaf, status, start, end, reason))
        return states

    def progress(self, now):
        counts = {"PENDING": 0, "RUNNING": 0, "SUCCESS": 0, "ERROR": 0}
        roots = []
        index = {}
        for leaf, status, start, end, reason in self._leaf_states(now):
            path, _s, _e, component, message_base = leaf
            counts[status] += 1
            node = {"name": path[-1], "status": status,
                    "started_at": rfc3339(start) if status != "PENDING" else ZERO_TIME,
                    "ended_at": rfc3339(end) if status in ("SUCCESS", "ERROR") else ZERO_TIME}
            if component:
                node["component_name"] = component
                node["message_base"] = message_base
            if reason:
                node["reason"] = reason
            parent_children = roots
            for depth in range(1, len(path)):
                key = path[:depth]
                if key not in index:
                    group = {"name": key[-1], "steps": []}
                    if depth == 3:
                        group["component_name"] = key[-1]
                    index[key] = group
                    parent_children.append(group)
                parent_children = index[key]["steps"]
            parent_children.append(node)
        for root in roots:
            _aggregate(root)
        summary = [{key: value for key, value in root.items() if key != "steps"}
                   for root in roots]
        return {"pending_steps": counts["PENDING"], "running_steps": counts["RUNNING"],
                "success_steps": counts["SUCCESS"], "error_steps": counts["ERROR"],
                "total_steps": len(self.leaves), "steps": roots, "summary_steps": summary}

    def to_dict(self, now, superseded_at=None, registry=None):
        phase = self.phase(now, superseded_at)
        changed = rfc3339(self.phase_changed_at(now, superseded_at))
        data = {
            "id": self.id,
            "spec": self.spec,
            "cause": self.cause,
            "cause_details": {"type": self.cause_type, "digitalocean_user_action": {
                "user": dict(SIM_USER), "name": self.action}},
            "phase": phase,
            "phase_last_updated_at": changed,
            "progress": self.progress(now),
            "created_at": rfc3339(self.created_at),
            "updated_at": changed,
            "tier_slug": "basic",
            "previous_deployment_id": self.previous_deployment_id,
            "timing": {"pending": "0s", "build_total": _duration(self.build_seconds),
                       "build_billable": _duration(self.build_seconds),
                       "components": [{"name": c["name"], "build_billable": _duration(
                           self.build_seconds)} for _k, c in components(self.spec)],
                       "database_provision": "0s", "deploying": _duration(self.deploy_seconds)},
        }
        if self.cloned_from:
            data["cloned_from"] = self.cloned_from
        for kind in ("services", "workers", "jobs", "static_sites"):
            if self.spec.get(kind):
                data[kind] = [{"name": c["name"], "source_commit_hash": _source_hash(
                    c, registry)} for c in self.spec[kind]]
        return data


def _aggregate(group):
    """Give a group step the status and times its children imply."""
    children = group["steps"]
    for child in children:
        if "steps" in child:
            _aggregate(child)
    statuses = {child["status"] for child in children}
    if "ERROR" in statuses:
        status = "ERROR"
    elif statuses == {"SUCCESS"}:
        status = "SUCCESS"
    elif statuses == {"PENDING"}:
        status = "PENDING"
    else:
        status = "RUNNING"
    started = [c["started_at"] for c in children if c["started_at"] != ZERO_TIME]
    ended = [c["ended_at"] for c in children if c["ended_at"] != ZERO_TIME]
    group["status"] = status
    group["started_at"] = min(started) if started else ZERO_TIME
    group["ended_at"] = max(ended) if status in ("SUCCESS", "ERROR") and ended else ZERO_TIME


def _duration(seconds):
    return f"{math.ceil(seconds)}s"


def _source_hash(component, registry):
    image = component.get("image")
    if image:
        digest = image.get("digest") or (registry.digest(image) if registry else "")
        if digest:
            return digest.split(":", 1)[-1][:40]
        return hashlib.sha1(image_ref(image).encode()).hexdigest()
    return hashlib.sha1(repr(sorted(component.items())).encode()).hexdigest()


# ---------------------------------------------------------------------------
# Apps
# ---------------------------------------------------------------------------

class App:
    """An app: its spec, its deployments (oldest first) and rollback pinning."""

    def __init__(self, spec, now, *, app_id=None, build_seconds=0.0, deploy_seconds=0.0):
        self.id = app_id or str(uuid.uuid4())
        self.spec = spec
        self.created_at = now
        self.updated_at = now
        self.build_seconds = float(build_seconds)
        self.deploy_seconds = float(deploy_seconds)
        self.deployments = []
        self.pinned_id = None
        self.pre_rollback_spec = None

    def deployment(self, deployment_id):
        for deployment in self.deployments:
            if deployment.id == deployment_id:
                return deployment
        raise not_found()

    def superseded_times(self):
        """Deployment id -> when a later deployment that took traffic went ACTIVE."""
        result = {}
        later = None
        for deployment in reversed(self.deployments):
            if later is not None:
                result[deployment.id] = later
            active_at = deployment.active_at()
            if deployment.switches and active_at is not None:
                later = active_at if later is None else min(later, active_at)
        return result

    def active_deployment(self, now, superseded=None):
        """The deployment serving traffic at ``now`` (the live version), or None."""
        superseded = self.superseded_times() if superseded is None else superseded
        for deployment in reversed(self.deployments):
            active_at = deployment.active_at()
            if (deployment.switches and active_at is not None and active_at <= now
                    and not superseded.get(deployment.id, now + 1) <= now):
                return deployment
        return None

    def in_progress_deployment(self, now):
        for deployment in reversed(self.deployments):
            if not deployment.is_terminal(now):
                return deployment
        return None

    def add_deployment(self, deployment, now):
        """Record a new deployment; the one still running (if any) is superseded."""
        for other in self.deployments:
            other.stop(now, "SUPERSEDED")
        self.deployments.append(deployment)
        return deployment
