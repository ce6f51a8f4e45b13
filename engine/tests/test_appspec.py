"""App-spec tools: loading, retagging and validation, with the path of each problem."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from engine import appspec
from engine.appspec import (
    MAX_SPEC_BYTES,
    VERSION_ENV,
    dump_spec,
    image_components,
    load_spec,
    set_image_tag,
    validate_spec,
    validate_tag,
)
from engine.errors import DeployError

OPENAPI = Path(__file__).parent / "data" / "do-apps-openapi.min.json"

SPEC_YAML = """\
name: odoo-prod
region: fra
envs:
  - key: BASE_DOMAIN
    value: erp.example.com
services:
  - name: web
    image:
      registry_type: DOCR
      repository: odoo
      tag: v1.3.0
    instance_size_slug: apps-s-1vcpu-2gb
    instance_count: 2
    http_port: 8069
    envs:
      - key: DB_URL
        value: ${db.DATABASE_URL}
        scope: RUN_TIME
      - key: PUBLIC_URL
        value: ${APP_URL}
      - key: SELF
        value: ${_self.PRIVATE_URL} on ${BASE_DOMAIN}
workers:
  - name: queue
    image:
      registry_type: DOCR
      repository: odoo
      digest: sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945
    autoscaling:
      min_instance_count: 1
      max_instance_count: 3
  - name: builder
    github:
      repo: example/odoo
      branch: main
jobs:
  - name: migrate
    kind: PRE_DEPLOY
    image:
      registry_type: DOCR
      repository: odoo
      tag: v1.3.0
static_sites:
  - name: docs
    github:
      repo: example/docs
      branch: main
databases:
  - name: db
    engine: PG
"""


@pytest.fixture
def spec():
    return load_spec(SPEC_YAML)


def raises(code, call, *args, **kwargs):
    with pytest.raises(DeployError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# --- load_spec / dump_spec -------------------------------------------------------------------

def test_load_bare_spec_keeps_order_and_round_trips(spec):
    assert list(spec) == ["name", "region", "envs", "services", "workers", "jobs",
                          "static_sites", "databases"]
    assert load_spec(dump_spec(spec)) == spec
    assert dump_spec(spec).startswith("name: odoo-prod\nregion: fra\n")


def test_load_accepts_bytes_json_and_a_spec_wrapper(spec):
    assert load_spec(SPEC_YAML.encode()) == spec
    assert load_spec(json.dumps(spec)) == spec
    wrapped = yaml.safe_dump({"spec": spec}, sort_keys=False)
    assert load_spec(wrapped) == spec
    # A document with "spec" next to other keys is not a deploy template: left as it is.
    assert load_spec("spec: {name: a}\nname: odoo-prod\n") == {"spec": {"name": "a"},
                                                               "name": "odoo-prod"}


def test_malformed_yaml_names_line_and_column():
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "name: app\nservices:\n  - name: web\n"
                   "    image: {repository: odoo\n")
    assert error.details["line"] == 5
    assert "line 5, column" in error.message
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "name: app\nservices: x: y\n")
    assert (error.details["line"], error.details["column"]) == (2, 12)
    assert error.message == ("Invalid YAML at line 2, column 12: mapping values are not "
                             "allowed here.")


def test_reader_error_without_a_mark_is_still_coded():
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, b"name: \xff\xfe\xfa broken")
    assert error.message.startswith("Invalid YAML in the app spec: ")
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "name: a\x00b")
    assert error.message == ("Invalid YAML in the app spec: unacceptable character #x0000: "
                             "special characters are not allowed.")


@pytest.mark.parametrize("text", ["", None, False, b"", "   \n", "# only a comment\n"])
def test_empty_spec(text):
    assert raises("APP_SPEC_SYNTAX_ERROR", load_spec, text).message == "The app spec is empty."


@pytest.mark.parametrize("text, kind", [("- name: web\n", "list"), ("just text", "str"),
                                        ("42", "int"), ("spec: [1]", "list")])
def test_top_level_must_be_a_mapping(text, kind):
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, text)
    assert error.message == f"The app spec must be a mapping of fields, not a {kind}."


def test_other_types_are_a_programming_error():
    with pytest.raises(TypeError):
        load_spec(42)


def test_size_cap_applies_before_parsing():
    # Five megabytes of broken YAML: the size, not the syntax, is reported.
    huge = "name: [" + "x" * (5 * 1024 * 1024)
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, huge)
    assert error.details == {"size": len(huge)}
    assert str(MAX_SPEC_BYTES) in error.message
    raises("APP_SPEC_SYNTAX_ERROR", load_spec, huge.encode())


def test_size_cap_counts_utf8_bytes_not_characters():
    under = "name: odoo-prod\nnote: " + "é" * 400_000 + "\n"
    assert len(load_spec(under)["note"]) == 400_000
    over = "name: odoo-prod\nnote: " + "é" * 600_000 + "\n"
    assert len(over) < MAX_SPEC_BYTES
    assert raises("APP_SPEC_SYNTAX_ERROR", load_spec, over).details["size"] > MAX_SPEC_BYTES


def test_python_tags_are_refused_not_executed(tmp_path):
    marker = tmp_path / "ran"
    text = f"!!python/object/apply:os.system ['touch {marker}']\n"
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, text)
    assert "python/object/apply" in error.message
    assert not marker.exists()


def test_duplicate_keys_are_an_error_but_merge_overrides_are_not():
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec,
                   "name: a\nservices:\n  - name: web\n    name: api\n")
    assert "duplicate key 'name'" in error.message
    assert error.details["line"] == 4
    merged = load_spec("base: &base {instance_count: 1, http_port: 80}\n"
                       "svc:\n  <<: *base\n  instance_count: 2\n")
    assert merged["svc"] == {"instance_count": 2, "http_port": 80}


def test_alias_bomb_stops_at_the_value_cap():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "\n".join(lines))
    assert "anchors and aliases" in error.message


def test_deep_nesting_is_refused():
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "a: " + "[" * 5000 + "]" * 5000)
    assert error.message == "The app spec is nested too deeply."


def test_only_plain_values_are_accepted():
    assert load_spec("name: a\ncreated: 2024-05-01\n")["created"] == "2024-05-01"
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "name: a\nblob: !!binary aGVsbG8=\n")
    assert error.details == {"path": "blob"}
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "services:\n  - envs: !!set {a, b}\n")
    assert error.details == {"path": "services[0].envs"}
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "services:\n  - 8080: web\n")
    assert error.message == "The key 8080 at services[0] is not text."
    error = raises("APP_SPEC_SYNTAX_ERROR", load_spec, "1: web\n")
    assert error.message == "The key 1 at the top level is not text."


# --- validate_tag ----------------------------------------------------------------------------

@pytest.mark.parametrize("tag", ["v1.4.0", "latest", "1", "_x", "A" * 128, "sha-1f2e3d",
                                 "v1.4.0--health-fail-always"])
def test_valid_tags(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", [None, ""])
def test_missing_tag(tag):
    error = raises("IMAGE_TAG_MISSING", validate_tag, tag)
    assert error.message == "No image tag was given."


@pytest.mark.parametrize("tag", ["v1 2", ".hidden", "-dash", "A" * 129, "tag/slash", "v1:2",
                                 "ünï", 12, "v1\n"])
def test_invalid_tags(tag):
    error = raises("IMAGE_TAG_MISSING", validate_tag, tag)
    assert "not a valid Docker tag" in error.message
    assert error.details == {"path": "tag"}


# --- image_components / set_image_tag --------------------------------------------------------

def test_image_components_lists_services_workers_jobs_with_an_image(spec):
    assert [(c["kind"], c["name"], c["path"]) for c in image_components(spec)] == [
        ("service", "web", "services[0]"), ("worker", "queue", "workers[0]"),
        ("job", "migrate", "jobs[0]")]
    assert image_components(spec)[0]["image"]["repository"] == "odoo"
    raises("APP_SPEC_SYNTAX_ERROR", image_components, ["not", "a", "spec"])


def test_set_image_tag_on_every_image_component(spec):
    original = copy.deepcopy(spec)
    tagged = set_image_tag(spec, "v1.4.0")
    assert spec == original, "the input spec must not change"
    for component in image_components(tagged):
        assert component["image"]["tag"] == "v1.4.0"
        assert "digest" not in component["image"], "tag and digest are mutually exclusive"
    web, queue = tagged["services"][0], tagged["workers"][0]
    assert web["envs"][-1] == {"key": VERSION_ENV, "value": "v1.4.0", "scope": "RUN_TIME",
                               "type": "GENERAL"}
    assert [env["key"] for env in web["envs"]] == ["DB_URL", "PUBLIC_URL", "SELF", VERSION_ENV]
    assert queue["envs"] == [{"key": VERSION_ENV, "value": "v1.4.0", "scope": "RUN_TIME",
                              "type": "GENERAL"}]
    assert "envs" not in tagged["workers"][1], "a git component is left alone"
    assert validate_spec(tagged) == []


def test_set_image_tag_on_chosen_components_only(spec):
    tagged = set_image_tag(spec, "v2", ["queue"])
    assert tagged["workers"][0]["image"]["tag"] == "v2"
    assert tagged["services"][0]["image"]["tag"] == "v1.3.0"
    assert tagged["jobs"][0]["image"]["tag"] == "v1.3.0"
    assert set_image_tag(spec, "v2", "web")["services"][0]["image"]["tag"] == "v2"


def test_version_env_is_updated_in_place_and_deduplicated(spec):
    spec["services"][0]["envs"] = [
        {"key": "A", "value": "1"},
        {"key": VERSION_ENV, "value": "old", "scope": "RUN_AND_BUILD_TIME", "type": "SECRET"},
        {"key": "B", "value": "2"},
        {"key": VERSION_ENV, "value": "older"},
    ]
    envs = set_image_tag(spec, "v3", ["web"])["services"][0]["envs"]
    assert envs == [{"key": "A", "value": "1"},
                    {"key": VERSION_ENV, "value": "v3", "scope": "RUN_TIME", "type": "GENERAL"},
                    {"key": "B", "value": "2"}]
    spec["services"][0]["envs"] = None
    assert set_image_tag(spec, "v3", ["web"])["services"][0]["envs"][0]["value"] == "v3"


def test_unknown_component_is_refused_and_nothing_changes(spec):
    original = copy.deepcopy(spec)
    error = raises("INVALID_RESOURCE_SPEC", set_image_tag, spec, "v2", ["web", "nope"])
    assert error.message == "The app spec has no service, worker or job named 'nope'."
    assert error.details == {"component": "nope"}
    assert spec == original


@pytest.mark.parametrize("name, path", [("builder", "workers[1].image"), ("docs", None),
                                        ("db", None)])
def test_component_without_an_image_is_refused(spec, name, path):
    error = raises("INVALID_RESOURCE_SPEC", set_image_tag, spec, "v2", [name])
    assert error.details.get("path") == path
    if path:
        assert error.message == ("workers[1] (builder) is built from source, not an image, so "
                                 "it has no tag to set.")


def test_bad_tag_is_refused_before_anything_else(spec):
    error = raises("IMAGE_TAG_MISSING", set_image_tag, spec, "v 1")
    assert "'v 1'" in error.message
    raises("IMAGE_TAG_MISSING", set_image_tag, spec, None)
    raises("IMAGE_TAG_MISSING", set_image_tag, "not a spec", "")


def test_nothing_to_tag(spec):
    error = raises("INVALID_RESOURCE_SPEC", set_image_tag, {"name": "a", "services": [
        {"name": "web", "git": {"repo_clone_url": "https://example.com/r.git"}}]}, "v1")
    assert error.message == "The app spec has no service, worker or job that runs an image."
    raises("INVALID_RESOURCE_SPEC", set_image_tag, spec, "v1", [])
    raises("APP_SPEC_SYNTAX_ERROR", set_image_tag, ["a"], "v1")


def test_every_image_component_is_tagged_even_with_a_repeated_name(spec):
    spec["jobs"][0]["name"] = "web"
    tagged = set_image_tag(spec, "v5")
    assert [c["image"]["tag"] for c in image_components(tagged)] == ["v5"] * 3


def test_an_image_written_as_a_string_is_refused(spec):
    """The SOP's sed line writes ``image: registry/odoo:tag``; App Platform wants a mapping."""
    spec["services"][0]["image"] = "registry.digitalocean.com/acme/odoo:v1"
    for call in (lambda: set_image_tag(spec, "v2"), lambda: set_image_tag(spec, "v2", ["web"]),
                 lambda: validate_spec(spec)):
        error = raises("INVALID_RESOURCE_SPEC", call)
        assert error.details == {"path": "services[0].image"}
        assert error.message.startswith("services[0].image must be a mapping of registry_type, "
                                        "repository and tag, not 'registry.digitalocean.com/")


def test_broken_envs_of_a_target_are_reported(spec):
    spec["services"][0]["envs"] = "DB=1"
    error = raises("INVALID_RESOURCE_SPEC", set_image_tag, spec, "v1")
    assert error.details == {"path": "services[0].envs"}


# --- validate_spec ---------------------------------------------------------------------------

def test_valid_spec_has_no_warnings(spec):
    spec["workers"][0]["image"]["tag"] = "v1"
    spec["workers"][0]["image"].pop("digest")
    assert validate_spec(spec) == []


def test_digest_only_image_is_valid(spec):
    assert validate_spec(spec) == []


def test_instance_size_slugs_match_the_openapi_spec():
    schemas = json.loads(OPENAPI.read_text())["components"]["schemas"]
    current, deprecated = schemas["app_component_instance_base"]["properties"][
        "instance_size_slug"]["oneOf"]
    assert appspec.INSTANCE_SIZE_SLUGS == set(current["enum"])
    assert appspec.DEPRECATED_INSTANCE_SIZE_SLUGS == set(deprecated["enum"])


@pytest.mark.parametrize("path, value, found", [
    ("services.0.envs.0.value", "https://YOUR_DOMAIN/", "'YOUR_DOMAIN'"),
    ("region", "PLACEHOLDER", "'PLACEHOLDER'"),
    ("services.0.run_command", "odoo --db TODO", "'TODO'"),
    ("services.0.image.repository", "${IMAGE_REPO}", "'${IMAGE_REPO}'"),
    ("services.0.envs.1.value", "${GITHUB_SHA:-latest}", "'${GITHUB_SHA:-latest}'"),
    ("services.0.envs.1.value", "${other.PRIVATE_URL}", "'${other.PRIVATE_URL}'"),
    ("services.0.envs.1.value", "${db.}", "'${db.}'"),
    ("services.0.envs.1.value", "x ${unclosed", "'${unclosed'"),
    ("databases.0.engine", "TODO_ENGINE", "'TODO'"),
])
def test_placeholders_are_found_with_their_path(spec, path, value, found):
    *keys, last = path.split(".")
    target = spec
    for key in keys:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = value
    error = raises("PLACEHOLDER_VALUES", validate_spec, spec)
    dotted = path.replace(".0", "[0]").replace(".1", "[1]")
    assert error.details == {"path": dotted}
    assert found in error.message and dotted in error.message


@pytest.mark.parametrize("value", [
    "${APP_DOMAIN}", "${APP_ID}", "${db.DATABASE_URL}", "${web.PRIVATE_URL}",
    "${_self.COMMIT_HASH}", "${BASE_DOMAIN}", "todo-list", "Todos", "your_domain",
    "EV[1:Zm9vYmFy:YOUR_TODO]", "MYTODOS",
])
def test_not_placeholders(spec, value):
    spec["services"][0]["envs"][1]["value"] = value
    assert validate_spec(spec) == []


def test_keys_are_not_scanned_for_placeholders(spec):
    spec["services"][0]["TODO"] = "ok"
    assert validate_spec(spec) == []


@pytest.mark.parametrize("change, path", [
    (lambda s: s.update(name="Odoo_Prod"), "name"),
    (lambda s: s.pop("name"), "name"),
    (lambda s: s["services"][0].update(name="w"), "services[0].name"),
    (lambda s: s["services"][0].update(name="web-"), "services[0].name"),
    (lambda s: s["jobs"][0].update(name="Migrate"), "jobs[0].name"),
    (lambda s: s["static_sites"][0].update(name=7), "static_sites[0].name"),
    (lambda s: s["services"][0].update(instance_size_slug="apps-s-64vcpu"),
     "services[0].instance_size_slug"),
    (lambda s: s["jobs"][0].update(instance_size_slug=2), "jobs[0].instance_size_slug"),
    (lambda s: s["services"][0].update(instance_count=0), "services[0].instance_count"),
    (lambda s: s["services"][0].update(instance_count="2"), "services[0].instance_count"),
    (lambda s: s["services"][0].update(instance_count=True), "services[0].instance_count"),
    (lambda s: s["services"][0].update(instance_count=1.5), "services[0].instance_count"),
    (lambda s: s["workers"][0].update(instance_count=1), "workers[0].instance_count"),
    (lambda s: s["workers"][0].update(autoscaling=[1]), "workers[0].autoscaling"),
    (lambda s: s["workers"][0]["autoscaling"].update(min_instance_count=0),
     "workers[0].autoscaling.min_instance_count"),
    (lambda s: s["workers"][0]["autoscaling"].update(max_instance_count=251),
     "workers[0].autoscaling.max_instance_count"),
    (lambda s: s["workers"][0]["autoscaling"].update(min_instance_count=4),
     "workers[0].autoscaling.min_instance_count"),
    (lambda s: s["static_sites"][0].update(instance_size_slug="apps-s-1vcpu-1gb"),
     "static_sites[0].instance_size_slug"),
    (lambda s: s["static_sites"][0].update(instance_count=1), "static_sites[0].instance_count"),
    (lambda s: s.update(services={"name": "web"}), "services"),
    (lambda s: s["jobs"].append("migrate2"), "jobs[1]"),
    (lambda s: s["services"][0].update(envs={"A": 1}), "services[0].envs"),
    (lambda s: s["services"][0]["envs"].append({"value": "x"}), "services[0].envs[3].key"),
    (lambda s: s["services"][0]["envs"].append("A=1"), "services[0].envs[3].key"),
    (lambda s: s["services"][0]["envs"].append({"key": "1ABC"}), "services[0].envs[3].key"),
    (lambda s: s["services"][0]["envs"].append({"key": "DB_URL"}), "services[0].envs[3].key"),
    (lambda s: s["envs"][0].update(scope="ALWAYS"), "envs[0].scope"),
    (lambda s: s["envs"][0].update(type="PLAIN"), "envs[0].type"),
    (lambda s: s["services"][0].update(image="odoo:v1"), "services[0].image"),
])
def test_invalid_resources_are_reported_with_their_path(spec, change, path):
    change(spec)
    error = raises("INVALID_RESOURCE_SPEC", validate_spec, spec)
    assert error.details == {"path": path}
    assert path in error.message


def test_duplicate_component_names_across_kinds(spec):
    spec["jobs"][0]["name"] = "web"
    error = raises("INVALID_RESOURCE_SPEC", validate_spec, spec)
    assert error.message == ("The component name 'web' at jobs[0].name is already used at "
                             "services[0].name; names must be unique across the app.")
    spec["jobs"][0]["name"] = "db"
    assert raises("INVALID_RESOURCE_SPEC", validate_spec, spec).details == {
        "path": "databases[0].name"}


def test_image_problems(spec):
    image = spec["services"][0]["image"]
    image["digest"] = "sha256:" + "a" * 64
    error = raises("IMAGE_TAG_MISSING", validate_spec, spec)
    assert error.details == {"path": "services[0].image.digest"}
    image.pop("tag")
    image["digest"] = "sha256:nothex"
    assert raises("IMAGE_TAG_MISSING", validate_spec, spec).details == {
        "path": "services[0].image.digest"}
    image.pop("digest")
    image["tag"] = "v 1"
    error = raises("IMAGE_TAG_MISSING", validate_spec, spec)
    assert error.details == {"path": "services[0].image.tag"}
    assert "services[0].image.tag" in error.message


def test_warnings_for_latest_missing_tag_and_legacy_sizes(spec):
    spec["services"][0]["image"]["tag"] = "latest"
    spec["jobs"][0]["image"].pop("tag")
    spec["jobs"][0]["instance_size_slug"] = "basic-xxs"
    assert validate_spec(spec) == [
        "services[0].image.tag is 'latest', which does not say which build runs.",
        "jobs[0].instance_size_slug 'basic-xxs' is a deprecated legacy size; prefer an "
        "apps-s-* or apps-d-* size.",
        "jobs[0].image has no tag or digest; App Platform will deploy 'latest'.",
    ]


def test_placeholders_are_reported_before_a_bad_tag(spec):
    spec["services"][0]["image"]["tag"] = "${IMAGE_TAG}"
    error = raises("PLACEHOLDER_VALUES", validate_spec, spec)
    assert error.details == {"path": "services[0].image.tag"}


def test_validate_spec_needs_a_mapping():
    raises("APP_SPEC_SYNTAX_ERROR", validate_spec, None)


# --- build specification (BUILD_SPEC_ERROR) -------------------------------------------------

def test_a_component_without_any_source_is_a_build_spec_error(spec):
    del spec["jobs"][0]["image"]
    error = raises("BUILD_SPEC_ERROR", validate_spec, spec)
    assert error.message == ("jobs[0] (migrate) has no source: give it an image or a git, "
                             "github, gitlab or bitbucket repository.")
    assert error.details == {"path": "jobs[0]"}


@pytest.mark.parametrize("empty", [None, {}, ""])
def test_an_empty_source_is_no_source(spec, empty):
    spec["services"][0]["image"] = empty
    assert raises("BUILD_SPEC_ERROR", validate_spec, spec).details == {"path": "services[0]"}


@pytest.mark.parametrize("source", [
    {"github": {"repo": "acme/odoo", "branch": "main"}},
    {"git": {"repo_clone_url": "https://example.com/odoo.git"}},
    {"gitlab": {"repo": "acme/odoo"}},
    {"bitbucket": {"repo": "acme/odoo"}},
])
def test_an_image_and_a_repository_together_are_a_build_spec_error(spec, source):
    spec["services"][0].update(source)
    error = raises("BUILD_SPEC_ERROR", validate_spec, spec)
    kind = next(iter(source))
    assert error.message == (f"services[0] (web) has more than one source (image, {kind}); "
                             "keep exactly one.")
    assert error.details == {"path": "services[0]", "sources": ["image", kind]}


def test_two_repositories_are_a_build_spec_error(spec):
    spec["workers"][1]["gitlab"] = {"repo": "acme/odoo"}
    error = raises("BUILD_SPEC_ERROR", validate_spec, spec)
    assert error.details == {"path": "workers[1]", "sources": ["github", "gitlab"]}


@pytest.mark.parametrize("source, repository", [
    ({"github": {"branch": "main"}}, "repo"),
    ({"git": {"repo": "acme/odoo"}}, "repo_clone_url"),
    ({"bitbucket": "acme/odoo"}, "repo"),
])
def test_a_repository_source_must_name_its_repository(spec, source, repository):
    builder = spec["workers"][1]
    del builder["github"]
    builder.update(source)
    kind = next(iter(source))
    error = raises("BUILD_SPEC_ERROR", validate_spec, spec)
    assert error.message == (f"workers[1].{kind} must be a mapping that names its repository "
                             f"({repository}).")
    assert error.details == {"path": f"workers[1].{kind}"}


@pytest.mark.parametrize("field, value", [
    ("dockerfile_path", "/Dockerfile"),
    ("dockerfile_path", "../other/Dockerfile"),
    ("dockerfile_path", "docker/../../Dockerfile"),
    ("dockerfile_path", "..\\Dockerfile"),
    ("dockerfile_path", 7),
    ("source_dir", "/srv/odoo"),
    ("source_dir", ".."),
    ("source_dir", "addons/../.."),
])
def test_build_paths_must_stay_inside_the_repository(spec, field, value):
    spec["workers"][1][field] = value
    error = raises("BUILD_SPEC_ERROR", validate_spec, spec)
    assert error.message == (f"workers[1].{field} {value!r} must be a path relative to the "
                             "repository root, without '..'.")
    assert error.details == {"path": f"workers[1].{field}"}


@pytest.mark.parametrize("field, value", [
    ("dockerfile_path", "Dockerfile"),
    ("dockerfile_path", "docker/odoo.Dockerfile"),
    ("dockerfile_path", "./Dockerfile"),
    ("source_dir", "addons"),
    ("source_dir", "/".join(["a"] * 3)),
    ("source_dir", "my..dir"),
])
def test_relative_build_paths_are_accepted(spec, field, value):
    spec["workers"][1][field] = value
    assert validate_spec(spec) == []


def test_build_paths_of_an_image_component_are_not_build_settings(spec):
    """An image is not built, so there is no repository for the paths to leave."""
    spec["services"][0]["source_dir"] = "/srv"
    assert validate_spec(spec) == []
