"""Every request the client sends and every answer the simulator gives match the
official App Platform OpenAPI spec.

The spec is the prose-free copy in ``data/do-apps-openapi.min.json`` (made by
:func:`strip_prose` from the shared reference), so the test runs in any clone.
Requests and responses are recorded with a ``requests`` response hook on the
client's session while the client talks to the simulator over loopback.
"""

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.client import AppPlatformClient
from engine.errors import DeployError

DATA_SPEC = Path(__file__).parent / "data" / "do-apps-openapi.min.json"
SHARED_SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "do-apps-openapi.json"
SPEC_URI = "urn:do-apps-openapi"
PROSE_KEYS = {"description", "summary", "example", "examples", "title", "x-codeSamples",
              "termsOfService", "contact"}


def strip_prose(node, in_properties=False):
    """Drop prose keys (but not properties that happen to carry such a name)."""
    if isinstance(node, dict):
        return {key: strip_prose(value, key == "properties") for key, value in node.items()
                if in_properties or key not in PROSE_KEYS}
    if isinstance(node, list):
        return [strip_prose(value) for value in node]
    return node


def write_min_spec(source=SHARED_SPEC, target=DATA_SPEC):
    """Regenerate the data copy: ``python3 -c 'from engine.tests.test_contract import
    write_min_spec; write_min_spec()'`` from the repository root."""
    spec = strip_prose(json.loads(Path(source).read_text()))
    Path(target).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")


def _nullable_to_type(node):
    """OpenAPI 3.0 ``nullable: true`` is ``type: [T, "null"]`` in JSON Schema 2020-12."""
    if isinstance(node, dict):
        node = {key: _nullable_to_type(value) for key, value in node.items()}
        if node.pop("nullable", False) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_nullable_to_type(value) for value in node]
    return node


def _pointer_escape(key):
    return key.replace("~", "~0").replace("/", "~1")


class OpenApi:
    """Just enough of an OpenAPI 3.0 reader to check recorded traffic."""

    def __init__(self, doc):
        self.doc = _nullable_to_type(doc)
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        routes = []
        for template in self.doc["paths"]:
            pattern = re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template))
            routes.append((template.count("{"), template, re.compile(f"^{pattern}$")))
        # Literal segments win over templated ones (/v2/apps/propose vs /v2/apps/{id}).
        self.routes = sorted(routes, key=lambda route: route[0])

    def _at(self, pointer):
        node = self.doc
        for escaped in pointer.strip("/").split("/"):
            part = escaped.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def _deref(self, pointer):
        """Follow a chain of whole-object ``$ref``s; return the final pointer."""
        while "$ref" in self._at(pointer):
            pointer = self._at(pointer)["$ref"].lstrip("#")
        return pointer

    def operation(self, method, raw_path):
        """Return the JSON pointer of the operation a request is for, or None."""
        for _count, template, regex in self.routes:
            if regex.match(raw_path) and method.lower() in self.doc["paths"][template]:
                return f"/paths/{_pointer_escape(template)}/{method.lower()}"
        return None

    def errors(self, instance, pointer):
        validator = Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"},
                                         registry=self.registry, format_checker=FormatChecker())
        return [f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
                for error in validator.iter_errors(instance)]

    def parameters(self, op_pointer):
        params = {}
        for index, _param in enumerate(self._at(op_pointer).get("parameters", [])):
            pointer = self._deref(f"{op_pointer}/parameters/{index}")
            param = self._at(pointer)
            params[(param["in"], param["name"])] = (param, f"{pointer}/schema")
        return params

    def check_request(self, prepared):
        """Problems of one sent request: unknown operation, query or body off-schema."""
        parts = urlsplit(prepared.url)
        op_pointer = self.operation(prepared.method, parts.path)
        if not op_pointer:
            return None, [f"{prepared.method} {parts.path} is no operation of the spec"]
        operation_id = self._at(op_pointer)["operationId"]
        problems = []
        operation = self._at(op_pointer)
        if operation.get("security", self.doc.get("security")) and not prepared.headers.get(
                "Authorization", "").startswith("Bearer "):
            problems.append("has no bearer token")
        declared = self.parameters(op_pointer)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for (where, name), (param, _schema) in declared.items():
            if where == "query" and param.get("required") and name not in query:
                problems.append(f"query parameter {name!r} is required")
        for name, text in query.items():
            if ("query", name) not in declared:
                problems.append(f"query parameter {name!r} is not in the spec")
                continue
            param, schema_pointer = declared[("query", name)]
            value = _coerce(text, self._at(self._deref(schema_pointer)))
            problems += [f"query {name}: {error}" for error in self.errors(value, schema_pointer)]
        body_pointer = f"{op_pointer}/requestBody"
        if "requestBody" in self._at(op_pointer):
            body_pointer = self._deref(body_pointer)
            request_body = self._at(body_pointer)
            if not prepared.body:
                if request_body.get("required"):
                    problems.append("the request body is required")
            else:
                if "application/json" not in prepared.headers.get("Content-Type", ""):
                    problems.append("the request body is not declared as JSON")
                schema_pointer = f"{body_pointer}/content/application~1json/schema"
                problems += self.errors(json.loads(prepared.body), schema_pointer)
        elif prepared.body:
            problems.append("a body was sent to an operation that takes none")
        return operation_id, [f"{operation_id} request {problem}" for problem in problems]

    def check_response(self, response):
        """Problems of one received response: status, headers and body off-schema."""
        request = response.request
        op_pointer = self.operation(request.method, urlsplit(request.url).path)
        if not op_pointer:
            return None, []
        operation_id = self._at(op_pointer)["operationId"]
        responses = self._at(op_pointer)["responses"]
        status = str(response.status_code)
        key = status if status in responses else "default"
        pointer = self._deref(f"{op_pointer}/responses/{key}")
        declared = self._at(pointer)
        problems = []
        for name in declared.get("headers", {}):
            if name in response.headers:
                header_pointer = self._deref(f"{pointer}/headers/{_pointer_escape(name)}")
                schema = self._at(header_pointer)["schema"]
                value = _coerce(response.headers[name], schema)
                problems += [f"header {name}: {error}"
                             for error in self.errors(value, f"{header_pointer}/schema")]
        if "content" in declared:
            if "application/json" not in response.headers.get("Content-Type", ""):
                problems.append("body is not application/json")
            else:
                schema_pointer = f"{pointer}/content/application~1json/schema"
                problems += self.errors(response.json(), schema_pointer)
        elif response.content.strip():
            problems.append("body should be empty")
        return operation_id, [f"{operation_id} {status} response {problem}"
                              for problem in problems]


def _coerce(text, schema):
    """Turn a query or header string into the JSON type its schema declares."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


@pytest.fixture(scope="module")
def openapi():
    return OpenApi(json.loads(DATA_SPEC.read_text()))


@pytest.fixture
def recorded(simulator, sim_token):
    """A client on a session whose every response (with its request) is kept."""
    session = requests.Session()
    responses = []
    session.hooks["response"].append(lambda response, *args, **kwargs: responses.append(response))
    client = AppPlatformClient(sim_token, simulator.url, session=session, sleep=lambda _s: None,
                               max_retries=0)
    return client, responses


def _spec(name, tag="v1.0.0"):
    return {
        "name": name,
        "region": "ams",
        "services": [{
            "name": "web",
            "image": {"registry_type": "DOCR", "repository": "odoo", "tag": tag},
            "http_port": 8069,
            "instance_size_slug": "apps-s-1vcpu-1gb",
            "instance_count": 1,
            "health_check": {"http_path": "/web/health"},
        }],
    }


def _exercise_every_method(client, sim):
    """Call each public method of the client once, plus the error answers it maps."""
    for tag in ("v1.0.0", "v1.0.1"):
        sim.push_tag("odoo", tag)
    sim.push_tag("team/odoo", "v2.0.0")
    assert client.propose(_spec("contract-app"))["app_cost"] >= 0
    app = client.create_app(_spec("contract-app"))
    app_id = app["id"]
    first_deployment = client.list_deployments(app_id)[0]["id"]
    assert client.list_apps()
    assert client.get_app(app_id)["id"] == app_id
    assert client.propose(_spec("contract-app", "v1.0.1"), app_id=app_id)["spec"]
    updated = client.update_app(app_id, _spec("contract-app", "v1.0.1"))
    pending_id = updated["pending_deployment"]["id"]
    assert client.get_deployment(app_id, pending_id)["id"] == pending_id
    client.cancel_deployment(app_id, pending_id)
    deployment = client.create_deployment(app_id, force_build=True)
    sim.clock.advance(3600)
    assert client.get_deployment(app_id, deployment["id"])["phase"]
    client.get_logs(app_id, deployment["id"], component="web", log_type="BUILD")
    client.get_logs(app_id, deployment["id"], log_type="DEPLOY")
    client.get_logs(app_id, component="web", log_type="RUN")
    client.get_logs(app_id, log_type="RUN")
    assert client.get_app_health(app_id) is not None
    assert client.validate_rollback(app_id, first_deployment)["valid"] in (True, False)
    client.create_rollback(app_id, first_deployment)
    sim.clock.advance(3600)
    client.commit_rollback(app_id)
    client.create_rollback(app_id, first_deployment)
    sim.clock.advance(3600)
    client.revert_rollback(app_id)
    assert client.tag_exists("odoo", "v1.0.0") is True
    assert client.tag_exists("team/odoo", "v2.0.0") is True
    assert client.tag_exists("odoo", "v9.9.9") is False
    with pytest.raises(DeployError):
        client.get_app("00000000-0000-4000-8000-000000000000")
    with pytest.raises(DeployError):
        client.tag_exists("no-such-repository", "v1")


def test_requests_and_responses_match_the_spec(simulator, recorded, openapi):
    client, responses = recorded
    _exercise_every_method(client, simulator.sim)
    problems, operations = [], set()
    for response in responses:
        operation_id, request_problems = openapi.check_request(response.request)
        operations.add(operation_id)
        problems += request_problems
        problems += openapi.check_response(response)[1]
    assert not problems, "\n".join(problems)
    assert operations >= {
        "apps_list", "apps_create", "apps_get", "apps_update", "apps_validate_appSpec",
        "apps_create_deployment", "apps_get_deployment", "apps_list_deployments",
        "apps_cancel_deployment", "apps_get_logs", "apps_get_logs_aggregate",
        "apps_get_logs_active_deployment", "apps_get_logs_active_deployment_aggregate",
        "apps_get_health", "apps_validate_rollback", "apps_create_rollback",
        "apps_commit_rollback", "apps_revert_rollback", "registry_get",
        "registry_list_repositoryTags",
    }


def test_error_answers_match_the_spec(simulator, sim_token, openapi):
    """401, 404, 429 and 500 answers carry the spec's error body and rate-limit headers."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {sim_token}"}
    answers = [
        session.get(f"{simulator.url}/v2/apps", headers={"Authorization": "Bearer dop_v1_bad"}),
        session.get(f"{simulator.url}/v2/apps/nope", headers=headers),
        session.get(f"{simulator.url}/v2/registry/sim-registry/repositories/nope/tags",
                    headers=headers),
    ]
    for scenario in ("rate-limit-burst", "server-error"):
        simulator.sim.set_scenario(scenario, count=1)
        answers.append(session.get(f"{simulator.url}/v2/apps", headers=headers))
    assert [answer.status_code for answer in answers] == [401, 404, 404, 429, 500]
    assert int(answers[3].headers["retry-after"]) >= 1
    problems = []
    for answer in answers:
        problems += openapi.check_response(answer)[1]
        assert {"id", "message"} <= set(answer.json())
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_bad_request(openapi, simulator):
    """The contract check is not vacuous: an off-schema body is reported."""
    request = requests.Request(
        "POST", f"{simulator.url}/v2/apps/abc/deployments", json={"force_build": "yes"},
    ).prepare()
    operation_id, problems = openapi.check_request(request)
    assert operation_id == "apps_create_deployment"
    assert problems == [
        "apps_create_deployment request has no bearer token",
        "apps_create_deployment request force_build: 'yes' is not of type 'boolean'",
    ]
    request = requests.Request("GET", f"{simulator.url}/v2/apps/abc/logs",
                               params={"follow": "false"}).prepare()
    assert any("'type' is required" in problem for problem in openapi.check_request(request)[1])


def test_data_copy_is_the_stripped_shared_spec():
    """The committed copy equals the shared reference without prose."""
    if not SHARED_SPEC.exists():
        pytest.skip("the shared reference is not next to this clone")
    assert json.loads(DATA_SPEC.read_text()) == strip_prose(json.loads(SHARED_SPEC.read_text()))
