"""Dry run: what a deployment would change, DigitalOcean's verdict and the monthly cost.

Shown from the wizard, the deployment and to approvers, before anything
happens: it reads the app (``GET /v2/apps/{id}``) and asks ``POST
/v2/apps/propose`` twice, for the live spec (cost before) and for the proposed
one (validation and cost after). DigitalOcean's propose never modifies the app,
so neither does a dry run.

* :func:`spec_diff` - components added, removed or changed (field by field),
  images whose repository, tag or digest changes, environment variables added,
  removed or changed; the value of a SECRET variable is never shown, only that
  it changed (DigitalOcean returns SECRET values encrypted, so two encrypted
  values that differ say "changed" even when the plain values may be equal);
* :func:`read_proposal` - the fields of the propose answer, typed: ``app_cost``
  (USD a month; OpenAPI says int32, DigitalOcean's Go client float), the
  deprecated tier up/downgrade costs, static and starter app counts (strings
  on the wire), name availability;
* :func:`dry_run` - all of it as plain data for the UI, with the proposed spec's
  hash that approvals bind to (:func:`engine.gates.binding_of`).
"""

from . import appspec
from .errors import DeployError
from .gates import spec_hash

SECRET = "SECRET"
ADDED, REMOVED, CHANGED = "added", "removed", "changed"
CURRENCY = "USD"
# Spec lists that hold components, with the word for one of them.
COMPONENT_LISTS = appspec.COMPUTE_KINDS + appspec.OTHER_KINDS
# Fields of a component (and of the app) shown in their own part of the diff.
OWN_PARTS = ("image", "envs")
# Failures that are the proposed spec's own: the dry run reports them instead of raising.
SPEC_CODES = frozenset({
    "APP_SPEC_SYNTAX_ERROR", "IMAGE_TAG_MISSING", "PLACEHOLDER_VALUES", "INVALID_RESOURCE_SPEC",
    "SPEC_VALIDATION_FAILED", "BUILD_SPEC_ERROR", "INSUFFICIENT_QUOTA",
})
# Propose answer fields by type.
_COST_FIELDS = ("app_cost", "app_tier_upgrade_cost", "app_tier_downgrade_cost")
_COUNT_FIELDS = ("existing_static_apps", "max_free_static_apps", "existing_starter_apps",
                 "max_free_starter_apps")
_FLAG_FIELDS = ("app_is_static", "app_is_starter", "app_name_available")


# -------------------------------------------------------------------- diff


def _components(spec):
    """{(kind, name): component} in spec order."""
    found = {}
    for key, kind in COMPONENT_LISTS:
        for component in (spec or {}).get(key) or ():
            if isinstance(component, dict):
                found[(kind, component.get("name"))] = component
    return found


def _field_changes(before, after, prefix=""):
    """[{field, before, after}] for every leaf that differs; lists compare whole."""
    changes = []
    for key in list(before) + [key for key in after if key not in before]:
        if not prefix and key in OWN_PARTS:
            continue
        path = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += _field_changes(old, new, f"{path}.")
        elif old != new:
            changes.append({"field": path, "before": old, "after": new})
    return changes


def image_text(image):
    """``[registry/]repository:tag`` or ``...@digest`` of a spec's image mapping."""
    if not isinstance(image, dict):
        return None
    name = "/".join(part for part in (image.get("registry"), image.get("repository")) if part)
    if image.get("digest"):
        return f"{name}@{image['digest']}"
    return f"{name}:{image.get('tag') or 'latest'}"


def _envs(holder):
    return {env.get("key"): env for env in holder.get("envs") or () if isinstance(env, dict)}


def _env_changes(component, before, after):
    old_envs, new_envs = _envs(before), _envs(after)
    changes = []
    for key in list(old_envs) + [key for key in new_envs if key not in old_envs]:
        old, new = old_envs.get(key), new_envs.get(key)
        if old == new:
            continue
        change = ADDED if old is None else REMOVED if new is None else CHANGED
        secret = SECRET in ((old or {}).get("type"), (new or {}).get("type"))
        entry = {"component": component, "key": key, "change": change, "secret": secret}
        if secret:
            entry.update(before=None, after=None)
        else:
            entry.update(before=(old or {}).get("value"), after=(new or {}).get("value"))
        if old is not None and new is not None:
            entry["fields"] = sorted(field for field in ("scope", "type")
                                     if old.get(field) != new.get(field))
            if old.get("value") != new.get("value"):
                entry["fields"].insert(0, "value")
        changes.append(entry)
    return changes


def spec_diff(live, proposed):
    """What deploying ``proposed`` over ``live`` changes, as plain data (module doc).

    ``{"app": [field changes], "components": [{kind, name, change, fields}],
    "images": [{kind, component, before, after}], "envs": [{component (None:
    app-wide), key, change, secret, before, after, fields}], "changed": bool}``
    """
    live, proposed = live or {}, proposed or {}
    old_components, new_components = _components(live), _components(proposed)
    components, images = [], []
    envs = _env_changes(None, live, proposed)
    for identity in list(old_components) + [key for key in new_components
                                            if key not in old_components]:
        kind, name = identity
        old, new = old_components.get(identity), new_components.get(identity)
        if old is None or new is None:
            components.append({"kind": kind, "name": name, "change": ADDED if old is None
                               else REMOVED, "fields": []})
        else:
            fields = _field_changes(old, new)
            if fields:
                components.append({"kind": kind, "name": name, "change": CHANGED,
                                   "fields": fields})
        old_image, new_image = image_text((old or {}).get("image")), image_text(
            (new or {}).get("image"))
        if old_image != new_image:
            images.append({"kind": kind, "component": name, "before": old_image,
                           "after": new_image})
        envs += _env_changes(name, old or {}, new or {})
    component_keys = {key for key, _kind in COMPONENT_LISTS}
    app = _field_changes(
        {key: value for key, value in live.items() if key not in component_keys},
        {key: value for key, value in proposed.items() if key not in component_keys})
    return {"app": app, "components": components, "images": images, "envs": envs,
            "changed": bool(app or components or images or envs)}


# ---------------------------------------------------------------- proposal


def _cost(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) and value.strip() else None
    except ValueError:
        return None


def _count(value):
    cost = _cost(value)
    return int(cost) if cost is not None and cost == int(cost) else None


def read_proposal(answer):
    """The propose answer's fields, typed; a field DigitalOcean left out is None."""
    answer = answer if isinstance(answer, dict) else {}
    proposal = {name: _cost(answer.get(name)) for name in _COST_FIELDS}
    proposal.update({name: _count(answer.get(name)) for name in _COUNT_FIELDS})
    proposal.update({name: answer[name] if isinstance(answer.get(name), bool) else None
                     for name in _FLAG_FIELDS})
    suggestion = answer.get("app_name_suggestion")
    proposal["app_name_suggestion"] = suggestion if isinstance(suggestion, str) and suggestion \
        else None
    return proposal


def propose_cost(client, spec, app_id=None):
    """Ask DigitalOcean to validate and price ``spec`` (as an update of ``app_id``)."""
    return read_proposal(client.propose(spec, app_id=app_id))


def _spec_failure(error):
    if error.code not in SPEC_CODES:
        raise error
    return error.to_dict()


def dry_run(client, app_id, *, tag=None, components=None, spec=None):
    """Everything a deployment of ``tag`` (on ``components``, None: every image
    component) or of ``spec`` would change on app ``app_id``, without changing it.

    Returns ``{"app_id", "live_deployment_id", "tag", "valid", "error",
    "warnings", "diff", "cost": {"currency", "before", "after", "delta"},
    "proposal" (read_proposal of the proposed spec), "spec_hash"}``. A spec
    that is refused (locally or by DigitalOcean) gives ``valid`` False and
    ``error`` (a DeployError's dict); a failure to reach DigitalOcean raises.
    """
    if (tag is None) == (spec is None):
        raise ValueError("a dry run is of a tag or of a spec, exactly one of them")
    app = client.get_app(app_id)
    live = app.get("spec") or {}
    result = {"app_id": app_id, "live_deployment_id": (app.get("active_deployment") or {}).get(
        "id"), "tag": tag, "valid": False, "error": None, "warnings": [], "diff": None,
        "cost": {"currency": CURRENCY, "before": None, "after": None, "delta": None},
        "proposal": None, "spec_hash": None}
    try:
        before = propose_cost(client, live, app_id)
    except DeployError as error:
        result["live_error"] = _spec_failure(error)
    else:
        result["cost"]["before"] = before["app_cost"]
    try:
        proposed = spec if spec is not None else appspec.set_image_tag(live, tag, components)
    except DeployError as error:
        result["error"] = _spec_failure(error)
        return result
    result["diff"] = spec_diff(live, proposed)
    result["spec_hash"] = spec_hash(proposed)
    try:
        result["warnings"] = appspec.validate_spec(proposed)
        proposal = propose_cost(client, proposed, app_id)
    except DeployError as error:
        result["error"] = _spec_failure(error)
        return result
    result.update(valid=True, proposal=proposal)
    cost = result["cost"]
    cost["after"] = proposal["app_cost"]
    if cost["before"] is not None and cost["after"] is not None:
        cost["delta"] = cost["after"] - cost["before"]
    return result
