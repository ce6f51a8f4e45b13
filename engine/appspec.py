"""App-spec tools for step 1 of the SOP: load, retag, validate and dump.

The SOP rewrites the spec with ``sed`` and greps it for placeholders. Here the
spec is parsed, changed as data and checked field by field, so every failure
names the exact path (``services[0].instance_size_slug``) and a failed change
leaves the caller's spec untouched.

Decisions worth knowing:

* The top level is a bare AppSpec. A document whose only key is ``spec`` (the
  shape of DigitalOcean's ``.do/deploy.template.yaml`` and of the API's app
  object) is unwrapped, so both files load the same.
* Loading is YAML ``safe_load`` semantics, plus: duplicate keys are an error
  (PyYAML would keep the last one silently), timestamps stay text (the spec is
  sent as JSON) and only plain JSON-like values are accepted.
* An image without tag and digest is a warning, not an error: App Platform
  deploys ``latest`` then, which works but is not reproducible.
* A service, worker or job needs exactly one source (an image or one
  repository), and a repository's ``dockerfile_path`` and ``source_dir`` must
  stay inside it. These are BUILD_SPEC_ERROR, found before the spec is sent
  rather than from DigitalOcean's answer or a failed build.
* ``${...}`` is a placeholder unless it is one of App Platform's bindable
  variables (``${APP_URL}``, ``${_self.PRIVATE_URL}``, ``${db.DATABASE_URL}``
  for a component or database of the spec) or an app-level env key.
"""

import copy
import re
from pathlib import PurePosixPath

import yaml

from .errors import DeployError

VERSION_ENV = "DO_DEPLOY_VERSION"
MAX_SPEC_BYTES = 1_000_000
# Values counted after alias expansion: a "billion laughs" spec stops here.
MAX_SPEC_VALUES = 100_000

COMPUTE_KINDS = (("services", "service"), ("workers", "worker"), ("jobs", "job"))
OTHER_KINDS = (
    ("static_sites", "static_site"), ("functions", "function"), ("databases", "database"),
)

INSTANCE_SIZE_SLUGS = frozenset({
    "apps-s-1vcpu-0.5gb", "apps-s-1vcpu-1gb-fixed", "apps-s-1vcpu-1gb", "apps-s-1vcpu-2gb",
    "apps-s-2vcpu-4gb", "apps-d-1vcpu-0.5gb", "apps-d-1vcpu-1gb", "apps-d-1vcpu-2gb",
    "apps-d-1vcpu-4gb", "apps-d-2vcpu-4gb", "apps-d-2vcpu-8gb", "apps-d-4vcpu-8gb",
    "apps-d-4vcpu-16gb", "apps-d-8vcpu-32gb",
})
DEPRECATED_INSTANCE_SIZE_SLUGS = frozenset({
    "basic-xxs", "basic-xs", "basic-s", "basic-m", "professional-xs", "professional-s",
    "professional-m", "professional-1l", "professional-l", "professional-xl",
})
MAX_AUTOSCALING_INSTANCES = 250
ENV_SCOPES = ("UNSET", "RUN_TIME", "BUILD_TIME", "RUN_AND_BUILD_TIME")
ENV_TYPES = ("GENERAL", "SECRET")
APP_WIDE_VARIABLES = frozenset({"APP_DOMAIN", "APP_URL", "APP_ID"})
# Repository sources and the field that names their repository.
GIT_SOURCES = {"git": "repo_clone_url", "github": "repo", "gitlab": "repo", "bitbucket": "repo"}
# Build settings of a repository source: paths inside the repository.
BUILD_PATHS = ("dockerfile_path", "source_dir")

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Fa-f0-9]{32,}$")
_ENV_KEY_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")
_PLACEHOLDER_RE = re.compile(r"YOUR_[A-Za-z0-9_]*|(?<![A-Za-z])(?:PLACEHOLDER|TODO)(?![A-Za-z])")
_REFERENCE_RE = re.compile(r"\$\{([^}]*)(\}?)")
# SECRET values and registry credentials come back from DigitalOcean encrypted.
ENCRYPTED_RE = re.compile(r"^EV\[\d+:.*\]$", re.DOTALL)


def _error(code, message, path=None, **details):
    if path is not None:
        details["path"] = path
    return DeployError(code, message, details=details)


def _join(path, key):
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _SpecLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"found duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_SpecLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def _check_plain_data(document):
    """Refuse values JSON cannot carry and documents that expand beyond reason."""
    stack = [("", document)]
    count = 0
    while stack:
        path, value = stack.pop()
        count += 1
        if count > MAX_SPEC_VALUES:
            raise _error("APP_SPEC_SYNTAX_ERROR",
                         f"The app spec expands to more than {MAX_SPEC_VALUES} values; "
                         "check its anchors and aliases.")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _error("APP_SPEC_SYNTAX_ERROR",
                                 f"The key {key!r} at {path or 'the top level'} is not text.", path)
                stack.append((_join(path, key), item))
        elif isinstance(value, list):
            stack.extend((_join(path, index), item) for index, item in enumerate(value))
        elif not isinstance(value, (str, int, float, bool, type(None))):
            raise _error("APP_SPEC_SYNTAX_ERROR",
                         f"The value at {path} ({type(value).__name__}) is not text, a number, "
                         "a list or a mapping.", path)


def load_spec(text):
    """Parse an app spec from YAML (or JSON) text or bytes and return the AppSpec dict."""
    if not text:
        raise _error("APP_SPEC_SYNTAX_ERROR", "The app spec is empty.")
    if not isinstance(text, (str, bytes)):
        raise TypeError(f"an app spec is text or bytes, not {type(text).__name__}")
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise _error("APP_SPEC_SYNTAX_ERROR",
                     f"The app spec is {size} bytes, more than the {MAX_SPEC_BYTES} bytes allowed.",
                     size=size)
    try:
        # _SpecLoader is a SafeLoader: no python/* tags, plain data only.
        document = yaml.load(text, Loader=_SpecLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = (getattr(exc, "problem", None) or str(exc).splitlines()[0]).rstrip(".")
        if mark is None:
            raise _error("APP_SPEC_SYNTAX_ERROR",
                         f"Invalid YAML in the app spec: {problem}.") from exc
        line, column = mark.line + 1, mark.column + 1
        raise _error("APP_SPEC_SYNTAX_ERROR",
                     f"Invalid YAML at line {line}, column {column}: {problem}.",
                     line=line, column=column) from exc
    except RecursionError as exc:
        raise _error("APP_SPEC_SYNTAX_ERROR", "The app spec is nested too deeply.") from exc
    if isinstance(document, dict) and list(document) == ["spec"]:
        document = document["spec"]
    if document is None:
        raise _error("APP_SPEC_SYNTAX_ERROR", "The app spec is empty.")
    if not isinstance(document, dict):
        raise _error("APP_SPEC_SYNTAX_ERROR",
                     f"The app spec must be a mapping of fields, not a {type(document).__name__}.")
    _check_plain_data(document)
    return document


def dump_spec(spec):
    """Return the spec as YAML in its own key order, for review and for doctl."""
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False, allow_unicode=True)


def validate_tag(tag, path="tag"):
    """Return ``tag`` if it is a valid Docker image tag, else raise IMAGE_TAG_MISSING."""
    if tag is None or tag == "":
        raise _error("IMAGE_TAG_MISSING", "No image tag was given.", path)
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
        raise _error("IMAGE_TAG_MISSING",
                     f"The image tag {tag!r} at {path} is not a valid Docker tag: use at most 128 "
                     "letters, digits, '_', '.' or '-', not starting with '.' or '-'.", path)
    return tag


def _require_mapping(spec):
    if not isinstance(spec, dict):
        raise _error("APP_SPEC_SYNTAX_ERROR",
                     f"The app spec must be a mapping of fields, not a {type(spec).__name__}.")


def _components(spec, key):
    """Yield (path, component) of the list ``spec[key]``, which must hold mappings."""
    items = spec.get(key)
    if items is None:
        return
    if not isinstance(items, list):
        raise _error("INVALID_RESOURCE_SPEC", f"{key} must be a list of components.", key)
    for index, component in enumerate(items):
        path = _join(key, index)
        if not isinstance(component, dict):
            raise _error("INVALID_RESOURCE_SPEC", f"{path} must be a mapping of fields.", path)
        yield path, component


def image_components(spec):
    """Return the services, workers and jobs that run an image, in spec order."""
    _require_mapping(spec)
    return [
        {"kind": kind, "name": component.get("name"), "path": path, "image": component["image"]}
        for key, kind in COMPUTE_KINDS
        for path, component in _components(spec, key)
        if isinstance(component.get("image"), dict)
    ]


def _stamp_version(component, tag, path):
    """Upsert the version env, so the running app can report what it is."""
    envs = component.get("envs")
    if envs is None:
        envs = component["envs"] = []
    if not isinstance(envs, list):
        raise _error("INVALID_RESOURCE_SPEC", f"{path}.envs must be a list.", f"{path}.envs")

    def is_version(env):
        return isinstance(env, dict) and env.get("key") == VERSION_ENV

    position = next((index for index, env in enumerate(envs) if is_version(env)), len(envs))
    envs[:] = [env for env in envs if not is_version(env)]
    envs.insert(position,
                {"key": VERSION_ENV, "value": tag, "scope": "RUN_TIME", "type": "GENERAL"})


def _require_image_mapping(image, path):
    if not isinstance(image, dict):
        raise _error("INVALID_RESOURCE_SPEC",
                     f"{path} must be a mapping of registry_type, repository and tag, not "
                     f"{image!r}.", path)


def set_image_tag(spec, tag, components=None):
    """Return a copy of ``spec`` with ``tag`` on the chosen image components.

    ``components`` is a list of component names; None means every service,
    worker and job with an image. The digest is dropped (DigitalOcean refuses
    tag and digest together) and ``DO_DEPLOY_VERSION`` is set to the tag.
    """
    tag = validate_tag(tag)
    _require_mapping(spec)
    new_spec = copy.deepcopy(spec)
    compute = [(path, component) for key, _kind in COMPUTE_KINDS
               for path, component in _components(new_spec, key)]
    if components is None:
        targets = [(path, component) for path, component in compute
                   if component.get("image") is not None]
        if not targets:
            raise _error("INVALID_RESOURCE_SPEC",
                         "The app spec has no service, worker or job that runs an image.")
    else:
        names = [components] if isinstance(components, str) else list(components)
        if not names:
            raise _error("INVALID_RESOURCE_SPEC", "No component was chosen to receive the tag.")
        by_name = {}
        for path, component in compute:
            if isinstance(component.get("name"), str):
                by_name.setdefault(component["name"], (path, component))
        targets = []
        for name in names:
            if name not in by_name:
                raise _error("INVALID_RESOURCE_SPEC",
                             f"The app spec has no service, worker or job named {name!r}.",
                             component=name)
            path, component = by_name[name]
            if component.get("image") is None:
                raise _error("INVALID_RESOURCE_SPEC",
                             f"{path} ({name}) is built from source, not an image, so it has "
                             "no tag to set.", f"{path}.image")
            targets.append((path, component))
    for path, component in targets:
        _require_image_mapping(component["image"], f"{path}.image")
        component["image"].pop("digest", None)
        component["image"]["tag"] = tag
        _stamp_version(component, tag, path)
    return new_spec


def _strings(value, path=""):
    """Yield (path, text) for every string value, keys excluded."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, _join(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, _join(path, index))
    elif isinstance(value, str):
        yield path, value


def _is_bindable(reference, owners, app_env_keys):
    if reference in APP_WIDE_VARIABLES or reference in app_env_keys:
        return True
    owner, dot, variable = reference.partition(".")
    return (bool(dot) and (owner == "_self" or owner in owners)
            and bool(_ENV_KEY_RE.fullmatch(variable)))


def _check_placeholders(spec):
    owners = {component["name"]
              for key, _kind in COMPUTE_KINDS + OTHER_KINDS
              for _path, component in _components(spec, key)
              if isinstance(component.get("name"), str)}
    app_envs = spec.get("envs") if isinstance(spec.get("envs"), list) else []
    app_env_keys = {env["key"] for env in app_envs
                    if isinstance(env, dict) and isinstance(env.get("key"), str)}
    for path, text in _strings(spec):
        if ENCRYPTED_RE.match(text):
            continue
        found = _PLACEHOLDER_RE.search(text)
        if found:
            raise _error("PLACEHOLDER_VALUES",
                         f"The placeholder {found.group(0)!r} remains at {path}.", path)
        for reference in _REFERENCE_RE.finditer(text):
            if not reference.group(2) or not _is_bindable(reference.group(1), owners, app_env_keys):
                raise _error("PLACEHOLDER_VALUES",
                             f"The unresolved variable {reference.group(0)!r} remains at {path}.",
                             path)


def _check_name(value, path):
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise _error("INVALID_RESOURCE_SPEC",
                     f"The name {value!r} at {path} must be 2 to 32 lower-case letters, digits "
                     "or '-', starting with a letter and not ending with '-'.", path)


def _check_envs(holder, path):
    envs = holder.get("envs")
    if envs is None:
        return
    if not isinstance(envs, list):
        raise _error("INVALID_RESOURCE_SPEC", f"{_join(path, 'envs')} must be a list.",
                     _join(path, "envs"))
    keys = set()
    for index, env in enumerate(envs):
        env_path = _join(_join(path, "envs"), index)
        if not isinstance(env, dict) or not isinstance(env.get("key"), str) \
                or not _ENV_KEY_RE.fullmatch(env["key"]):
            raise _error("INVALID_RESOURCE_SPEC",
                         f"{env_path}.key must be a variable name (letters, digits, '_').",
                         f"{env_path}.key")
        if env["key"] in keys:
            raise _error("INVALID_RESOURCE_SPEC",
                         f"The variable {env['key']} is defined twice, again at {env_path}.key.",
                         f"{env_path}.key")
        keys.add(env["key"])
        for field, allowed in (("scope", ENV_SCOPES), ("type", ENV_TYPES)):
            if field in env and env[field] not in allowed:
                raise _error("INVALID_RESOURCE_SPEC",
                             f"{env_path}.{field} must be one of {', '.join(allowed)}.",
                             f"{env_path}.{field}")


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_resources(component, path, warnings):
    slug = component.get("instance_size_slug")
    if slug is not None:
        if slug in DEPRECATED_INSTANCE_SIZE_SLUGS:
            warnings.append(f"{path}.instance_size_slug {slug!r} is a deprecated legacy size; "
                            "prefer an apps-s-* or apps-d-* size.")
        elif slug not in INSTANCE_SIZE_SLUGS:
            raise _error("INVALID_RESOURCE_SPEC",
                         f"{path}.instance_size_slug {slug!r} is not an App Platform "
                         "instance size.",
                         f"{path}.instance_size_slug")
    count = component.get("instance_count")
    if count is not None and not _is_count(count):
        raise _error("INVALID_RESOURCE_SPEC",
                     f"{path}.instance_count must be a whole number of at least 1, not {count!r}.",
                     f"{path}.instance_count")
    autoscaling = component.get("autoscaling")
    if autoscaling is None:
        return
    if count is not None:
        raise _error("INVALID_RESOURCE_SPEC",
                     f"{path}.instance_count is set together with autoscaling; keep only one.",
                     f"{path}.instance_count")
    if not isinstance(autoscaling, dict):
        raise _error("INVALID_RESOURCE_SPEC", f"{path}.autoscaling must be a mapping.",
                     f"{path}.autoscaling")
    low, high = autoscaling.get("min_instance_count"), autoscaling.get("max_instance_count")
    for field, value in (("min_instance_count", low), ("max_instance_count", high)):
        if value is not None and not (_is_count(value) and value <= MAX_AUTOSCALING_INSTANCES):
            raise _error("INVALID_RESOURCE_SPEC",
                         f"{path}.autoscaling.{field} must be a whole number from 1 to "
                         f"{MAX_AUTOSCALING_INSTANCES}, not {value!r}.",
                         f"{path}.autoscaling.{field}")
    if low is not None and high is not None and low > high:
        raise _error("INVALID_RESOURCE_SPEC",
                     f"{path}.autoscaling.min_instance_count ({low}) is above "
                     f"max_instance_count ({high}).", f"{path}.autoscaling.min_instance_count")


def _check_image(image, path, warnings):
    _require_image_mapping(image, path)
    tag, digest = image.get("tag"), image.get("digest")
    if tag and digest:
        raise _error("IMAGE_TAG_MISSING",
                     f"{path} sets both tag and digest; DigitalOcean accepts only one.",
                     f"{path}.digest")
    if digest:
        if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
            raise _error("IMAGE_TAG_MISSING",
                         f"The image digest {digest!r} at {path}.digest is not a valid digest.",
                         f"{path}.digest")
    elif tag is None or tag == "":
        warnings.append(f"{path} has no tag or digest; App Platform will deploy 'latest'.")
    else:
        validate_tag(tag, f"{path}.tag")
        if tag == "latest":
            warnings.append(f"{path}.tag is 'latest', which does not say which build runs.")


def _check_source(component, path):
    """A service, worker or job runs exactly one source: an image or one repository.

    Raised as BUILD_SPEC_ERROR before anything is sent, so the mistake is named
    by its path instead of surfacing as a refused spec or a failed build.
    """
    label = f"{path} ({component.get('name')})"
    sources = [key for key in ("image", *GIT_SOURCES) if component.get(key)]
    if not sources:
        raise _error("BUILD_SPEC_ERROR",
                     f"{label} has no source: give it an image or a git, github, gitlab or "
                     "bitbucket repository.", path)
    if len(sources) > 1:
        raise _error("BUILD_SPEC_ERROR",
                     f"{label} has more than one source ({', '.join(sources)}); keep exactly "
                     "one.", path, sources=sources)
    source = sources[0]
    if source == "image":
        return
    repository = GIT_SOURCES[source]
    if not isinstance(component[source], dict) or not component[source].get(repository):
        raise _error("BUILD_SPEC_ERROR",
                     f"{path}.{source} must be a mapping that names its repository "
                     f"({repository}).", f"{path}.{source}")
    for field in BUILD_PATHS:
        value = component.get(field)
        if value is None:
            continue
        # Backslashes count as separators: "..\\x" leaves the repository on Windows too.
        inside = PurePosixPath(value.replace("\\", "/")) if isinstance(value, str) else None
        if inside is None or inside.is_absolute() or ".." in inside.parts:
            raise _error("BUILD_SPEC_ERROR",
                         f"{path}.{field} {value!r} must be a path relative to the repository "
                         "root, without '..'.", f"{path}.{field}")


def validate_spec(spec):
    """Check the spec before it is sent; raise on the first problem, return warnings.

    Raises PLACEHOLDER_VALUES, INVALID_RESOURCE_SPEC, BUILD_SPEC_ERROR (a
    service, worker or job without exactly one source, or with a build path
    outside its repository) or IMAGE_TAG_MISSING, with the offending path in
    the message and in ``details["path"]``.
    """
    _require_mapping(spec)
    _check_placeholders(spec)
    warnings = []
    _check_name(spec.get("name"), "name")
    _check_envs(spec, "")
    seen = {}
    for key, kind in COMPUTE_KINDS + OTHER_KINDS:
        for path, component in _components(spec, key):
            name = component.get("name")
            _check_name(name, f"{path}.name")
            if name in seen:
                raise _error("INVALID_RESOURCE_SPEC",
                             f"The component name {name!r} at {path}.name is already used at "
                             f"{seen[name]}; names must be unique across the app.", f"{path}.name")
            seen[name] = f"{path}.name"
            if kind == "database":
                continue
            _check_envs(component, path)
            if key in dict(COMPUTE_KINDS):
                _check_resources(component, path, warnings)
                _check_source(component, path)
            else:
                for field in ("instance_size_slug", "instance_count", "autoscaling"):
                    if field in component:
                        raise _error("INVALID_RESOURCE_SPEC",
                                     f"{path}.{field} is not allowed: a {kind} has no instances.",
                                     f"{path}.{field}")
            if "image" in component:
                _check_image(component["image"], f"{path}.image", warnings)
    return warnings
