"""Health, endpoint, version, DNS and TLS checks against real loopback servers.

Precise behaviours (slow, huge, redirecting, broken answers) come from small
servers started here; the simulator's fake ingress covers the integration.
Slow handlers wait on an Event with a timeout: the test releases them once the
check has returned, so no test waits for time to pass.
"""

import contextlib
import datetime
import http.server
import json
import socket
import socketserver
import ssl
import threading

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.appspec import set_image_tag
from engine.checks import (
    MAX_RESPONSE_BYTES,
    CheckResult,
    check_dns,
    check_endpoints,
    check_health,
    check_served_version,
    check_tls,
    normalize_check,
)
from engine.errors import DeployError
from engine.tests.common import auth_headers
from engine.urls import guarded_session

HEALTHY = {"status": "ok", "database": "connected", "version": "v1.4.0"}


# --- a scriptable HTTP server ----------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            reply(self, 404, b"not here", content_type="text/plain")
        else:
            route(self)

    def log_message(self, *args):
        """Keep the test output quiet."""


def reply(handler, status, body=b"", headers=(), content_type="application/json"):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    with contextlib.suppress(OSError):
        handler.wfile.write(body)


class LocalServer:
    """ThreadingHTTPServer on a free loopback port with routes set per test."""

    def __init__(self, context=None):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes = {}
        self.httpd.hits = []
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if context else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def routes(self):
        return self.httpd.routes

    @property
    def hits(self):
        return self.httpd.hits

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    local = LocalServer()
    yield local
    local.stop()


def json_route(status, body, headers=()):
    return lambda handler: reply(handler, status, body, headers)


class RawServer:
    """A TCP server whose every connection gets ``respond(connection)``; for broken HTTP."""

    def __init__(self, respond):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.respond = respond
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        with contextlib.suppress(OSError):
            while True:
                connection, _address = self.listener.accept()
                with connection:
                    connection.recv(65536)
                    self.respond(connection)

    def stop(self):
        self.listener.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(respond):
        servers.append(RawServer(respond))
        return servers[-1]

    yield start
    for raw in servers:
        raw.stop()


# --- CheckResult -----------------------------------------------------------------------------

def test_check_result_raises_its_code_and_keeps_data():
    ok = CheckResult(True, None, "fine", 200, 3)
    assert ok.raise_for_result() is ok
    assert ok.to_dict() == {"ok": True, "code": None, "message": "fine", "status": 200,
                            "elapsed_ms": 3, "data": {}}
    failed = CheckResult(False, "RESPONSE_TIMEOUT", "Too slow.", None, 12000, {"url": "u"})
    with pytest.raises(DeployError) as info:
        failed.raise_for_result()
    assert info.value.code == "RESPONSE_TIMEOUT" and info.value.retryable
    assert info.value.details == {"status": None, "elapsed_ms": 12000, "url": "u"}
    with pytest.raises(DeployError) as info:
        CheckResult(False, "HEALTH_CHECK_FAIL", "Down.").raise_for_result()
    assert not info.value.retryable


# --- check_health ----------------------------------------------------------------------------

def test_healthy_answer(server):
    server.routes["/api/v1/health"] = json_route(200, HEALTHY, [("X-Deployment-ID", "dep-1")])
    result = check_health(server.url, expected_version="v1.4.0")
    assert result.ok and result.code is None and result.status == 200
    assert result.elapsed_ms >= 0
    assert result.data == {"url": f"{server.url}/api/v1/health", "deployment_id": "dep-1",
                           "version": "v1.4.0", "database": True, "version_matches": True}


def test_other_version_is_recorded_but_not_a_health_failure(server):
    server.routes["/api/v1/health"] = json_route(200, HEALTHY)
    result = check_health(server.url + "/", expected_version="v2.0.0")
    assert result.ok
    assert result.data["version_matches"] is False and result.data["deployment_id"] is None


def test_odoo_web_health_without_database_field(server):
    server.routes["/web/health"] = json_route(200, {"status": "pass"})
    result = check_health(server.url, path="web/health")
    assert result.ok and result.data["database"] is None and "version_matches" not in result.data


@pytest.mark.parametrize("status, body, code, words", [
    (503, {"status": "error", "database": "unreachable"}, "DATABASE_CONNECTION_ERROR",
     "cannot reach its database (HTTP 503)"),
    (500, {"status": "fail", "db_server_status": False}, "DATABASE_CONNECTION_ERROR",
     "cannot reach its database (HTTP 500)"),
    (200, {"status": "ok", "database": "disconnected"}, "DATABASE_CONNECTION_ERROR",
     "cannot reach its database (HTTP 200)"),
    (200, {"status": "ok", "database": False}, "DATABASE_CONNECTION_ERROR", "database"),
    (503, {"status": "error", "database": "connected"}, "HEALTH_CHECK_FAIL",
     "answered HTTP 503 instead of 200"),
    (200, {"status": "degraded", "database": "connected"}, "HEALTH_CHECK_FAIL",
     "reports status 'degraded'"),
    (200, {"database": True}, "HEALTH_CHECK_FAIL", "reports status None"),
    (200, ["ok"], "HEALTH_CHECK_FAIL", "did not answer with a JSON object"),
])
def test_unhealthy_answers(server, status, body, code, words):
    server.routes["/api/v1/health"] = json_route(status, body)
    result = check_health(server.url)
    assert (result.ok, result.code, result.status) == (False, code, status)
    assert words in result.message
    assert result.data["answer"] == {"content_type": "application/json",
                                     "bytes": len(json.dumps(body))}
    assert "body" not in result.data


def test_non_json_health_answer(server):
    server.routes["/api/v1/health"] = lambda h: reply(h, 200, b"<html>OK</html>",
                                                      content_type="text/html")
    result = check_health(server.url)
    assert result.code == "HEALTH_CHECK_FAIL"
    assert result.data["answer"] == {"content_type": "text/html", "bytes": 15}


def test_the_answer_text_goes_to_the_server_log_not_the_result(server, caplog):
    """Results land in step data every Deployment User reads: they say what came back
    (status, type, size), and the text goes to the server log, short and redacted."""
    body = (b'{"status": "error", "token": "dop_v1_0123456789abcdef", "internal": "10.1.2.3", '
            b'"pad": "' + b"x" * 5000 + b'"}')
    server.routes["/api/v1/health"] = json_route(500, body)
    with caplog.at_level("INFO", logger="engine.checks"):
        result = check_health(server.url)
    assert result.code == "HEALTH_CHECK_FAIL"
    assert result.data["answer"] == {"content_type": "application/json", "bytes": len(body)}
    assert "10.1.2.3" not in json.dumps(result.to_dict())
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "10.1.2.3" in logged and "HEALTH_CHECK_FAIL" in logged
    assert "0123456789abcdef" not in logged
    assert len(logged) < 600


def test_values_read_from_an_answer_are_shown_short(server):
    """A version, status or JSON value is quoted in messages and data only up to a cap."""
    secret = "internal-" + "y" * 500
    server.routes["/api/v1/health"] = json_route(200, {"status": secret, "version": secret})
    health = check_health(server.url)
    assert health.code == "HEALTH_CHECK_FAIL" and secret not in health.message
    assert len(health.message) < 250 and len(health.data["version"]) <= 128
    served = check_served_version(server.url, "v2")
    assert served.code == "TRAFFIC_SWITCH_FAILED" and secret not in served.message
    assert len(served.data["version"]) <= 128
    server.routes["/api/v1/status"] = json_route(200, {"state": secret})
    [result] = check_endpoints(server.url, [{"path": "/api/v1/status", "kind": "api",
                                             "json_field": "state", "json_value": "up"}])
    assert result.code == "API_ERROR" and secret not in result.message


def test_connection_refused_is_service_unavailable(closed_port):
    result = check_health(f"http://127.0.0.1:{closed_port}")
    assert (result.ok, result.code, result.status) == (False, "SERVICE_UNAVAILABLE", None)
    assert result.message == (f"The health check of http://127.0.0.1:{closed_port}/api/v1/health "
                              "failed: the connection was refused.")
    assert result.data["reason"] == "unreachable"
    with pytest.raises(DeployError) as info:
        result.raise_for_result()
    assert info.value.retryable


def test_connection_closed_without_answer_is_service_unavailable(raw_server):
    broken = raw_server(lambda connection: None)
    result = check_health(broken.url)
    assert result.code == "SERVICE_UNAVAILABLE"
    assert "closed the connection without answering" in result.message


def test_garbage_answer_is_service_unavailable(raw_server):
    broken = raw_server(lambda connection: connection.sendall(b"SSH-2.0-OpenSSH\r\n\r\n"))
    result = check_health(broken.url)
    assert result.code == "SERVICE_UNAVAILABLE"
    assert result.message.endswith("failed: the connection failed.")


def test_answer_broken_mid_body_is_service_unavailable(raw_server):
    broken = raw_server(lambda connection: connection.sendall(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"sta\r\n"))
    result = check_health(broken.url)
    assert result.code == "SERVICE_UNAVAILABLE"
    assert "broke while reading the answer" in result.message


def test_slow_answer_is_response_timeout(server):
    def slow(handler):
        server.release.wait(10)
        reply(handler, 200, HEALTHY)

    server.routes["/api/v1/health"] = slow
    result = check_health(server.url, budget_seconds=0.3)
    server.release.set()
    assert (result.code, result.data["reason"]) == ("RESPONSE_TIMEOUT", "timeout")
    assert "within the time budget" in result.message


def test_trickling_body_cannot_hold_the_check_past_its_budget(server):
    finished = threading.Event()

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "200")
        handler.end_headers()
        try:
            for _ in range(200):  # 200 bytes, one every 50 ms: ten seconds in all
                handler.wfile.write(b" ")
                handler.wfile.flush()
                server.release.wait(0.05)
        except OSError:
            return
        finished.set()

    server.routes["/api/v1/health"] = trickle
    result = check_health(server.url, budget_seconds=0.5)
    assert result.code == "RESPONSE_TIMEOUT"
    assert not finished.is_set(), "the check waited for the whole trickle"
    server.release.set()


def test_body_stalling_past_the_budget_is_response_timeout(server):
    def stall(handler):
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"5\r\n{\"sta\r\n")
        handler.wfile.flush()
        server.release.wait(10)

    server.routes["/api/v1/health"] = stall
    result = check_health(server.url, budget_seconds=0.3)
    server.release.set()
    assert result.code == "RESPONSE_TIMEOUT"
    assert result.message.endswith("the answer did not come within the time budget.")


def test_connect_timeout_is_service_unavailable(syn_dropping_url):
    result = check_health(syn_dropping_url, budget_seconds=0.5)
    assert result.code == "SERVICE_UNAVAILABLE"
    assert result.message.endswith("the connection timed out.")


def test_huge_health_body_is_capped(server):
    server.routes["/api/v1/health"] = json_route(200, b"[" + b"1," * (3 * MAX_RESPONSE_BYTES))
    result = check_health(server.url)
    assert result.code == "HEALTH_CHECK_FAIL"
    assert "did not answer with a JSON object" in result.message


@pytest.mark.parametrize("base_url, words", [
    ("ftp://127.0.0.1/x", "ftp://127.0.0.1/x/api/v1/health is not an http or https URL"),
    ("http://[::1", "is not a valid URL"),
    ("http://127.0.0.1:99999", "is not a valid URL"),
    ("file:///etc/passwd", "is not an http or https URL"),
])
def test_only_http_and_https_urls(base_url, words):
    result = check_health(base_url)
    assert result.code == "HEALTH_CHECK_FAIL" and result.data["reason"] == "url"
    assert words in result.message


def test_same_host_redirects_are_followed(server):
    server.routes["/api/v1/health"] = lambda h: reply(h, 302, headers=[("Location", "/v2/h")])
    server.routes["/v2/h"] = lambda h: reply(h, 307, headers=[
        ("Location", f"http://127.0.0.1:{server.port}/v3/h")])
    server.routes["/v3/h"] = json_route(200, HEALTHY)
    result = check_health(server.url)
    assert result.ok
    assert server.hits == ["/api/v1/health", "/v2/h", "/v3/h"]


def test_redirect_to_another_host_is_not_followed(server):
    other = LocalServer()
    try:
        other.routes["/api/v1/health"] = json_route(200, HEALTHY)
        target = f"http://localhost:{other.port}/api/v1/health"
        server.routes["/api/v1/health"] = lambda h: reply(h, 302, headers=[("Location", target)])
        result = check_health(server.url)
        assert (result.code, result.data["reason"]) == ("HEALTH_CHECK_FAIL", "redirect")
        assert result.message.endswith("failed: it redirects to another host (localhost).")
        assert other.hits == []
    finally:
        other.stop()


@pytest.mark.parametrize("location, words", [
    ("http://127.0.0.1:1/api", "it redirects to another port (1)"),
    ("ftp://127.0.0.1/api", "is not an http or https URL"),
])
def test_other_bad_redirects(server, location, words):
    server.routes["/api/v1/health"] = lambda h: reply(h, 301, headers=[("Location", location)])
    result = check_health(server.url)
    assert result.code == "HEALTH_CHECK_FAIL" and words in result.message


def test_redirect_loop_stops(server):
    server.routes["/api/v1/health"] = lambda h: reply(h, 302, headers=[
        ("Location", "/api/v1/health")])
    result = check_health(server.url)
    assert result.message.endswith("it redirects more than 5 times.")
    assert len(server.hits) == 6


def test_redirect_without_location_is_an_answer(server):
    server.routes["/api/v1/health"] = json_route(302, {})
    assert check_health(server.url).message.endswith("answered HTTP 302 instead of 200.")


# --- check_endpoints -------------------------------------------------------------------------

@pytest.fixture
def odoo(server):
    routes = server.routes
    routes["/web/login"] = lambda h: reply(h, 200, b"<h1>Login</h1>", content_type="text/html")
    routes["/web"] = lambda h: reply(h, 303, headers=[("Location", "/web/login")])
    routes["/web/static/src/css/base.css"] = lambda h: reply(h, 200, b"body{}", [],
                                                             "text/css")
    routes["/api/v1/health"] = json_route(200, {"status": "ok", "data": {"items": [{"id": 7}]}})
    routes["/api/broken"] = json_route(500, {"status": "error"})
    routes["/big.js"] = lambda h: reply(h, 200, b"x" * (2 * MAX_RESPONSE_BYTES) + b"END",
                                        content_type="application/javascript")
    return server


def test_endpoints_that_answer_as_expected(odoo):
    results = check_endpoints(odoo.url, [
        {"path": "/web/login", "contains": "Login", "name": "login"},
        {"path": "/web", "contains": "Login"},
        {"path": "/web", "status": 303},
        {"path": "/web/static/src/css/base.css", "kind": "static", "max_ms": 60000},
        {"path": "/api/v1/health", "kind": "api", "json_field": "status", "json_value": "ok"},
        {"path": "/api/v1/health", "kind": "api", "json_field": "data.items.0.id",
         "json_value": "7"},
        {"path": "/big.js", "kind": "static"},
    ])
    assert [result.code for result in results] == [None] * 7, [r.message for r in results]
    assert results[0].data == {"url": f"{odoo.url}/web/login", "path": "/web/login",
                               "kind": "page", "name": "login"}
    assert results[0].message.startswith(f"{odoo.url}/web/login answered as expected in ")
    assert results[2].status == 303


@pytest.mark.parametrize("check, code, words", [
    ({"path": "/web/missing"}, "ENDPOINT_404", "/web/missing was not found (HTTP 404)."),
    ({"path": "/api/missing", "kind": "api"}, "ENDPOINT_404", "not found (HTTP 404)"),
    ({"path": "/web/static/x.css", "kind": "static"}, "STATIC_ASSET_MISSING", "(HTTP 404)"),
    ({"path": "/api/broken", "kind": "api"}, "API_ERROR", "answered HTTP 500 instead of 200."),
    ({"path": "/api/broken", "kind": "static"}, "STATIC_ASSET_MISSING", "HTTP 500"),
    ({"path": "/web/login", "contains": "Database"}, "API_ERROR",
     "does not contain 'Database'."),
    ({"path": "/big.js", "kind": "static", "contains": "END"}, "STATIC_ASSET_MISSING",
     "does not contain 'END'"),
    ({"path": "/web/login", "json_field": "status"}, "API_ERROR", "has no JSON field 'status'."),
    ({"path": "/api/v1/health", "json_field": "data.items.3.id"}, "API_ERROR", "no JSON field"),
    ({"path": "/api/v1/health", "json_field": "status.code"}, "API_ERROR", "no JSON field"),
    ({"path": "/api/v1/health", "json_field": "status", "json_value": "pass"}, "API_ERROR",
     "The JSON field 'status' of "),
    ({"path": "/web", "status": 301}, "API_ERROR", "answered HTTP 303 instead of 301."),
])
def test_endpoint_failures(odoo, check, code, words):
    [result] = check_endpoints(odoo.url, [check])
    assert (result.ok, result.code) == (False, code)
    assert words in result.message


def test_json_value_mismatch_message(odoo):
    [result] = check_endpoints(odoo.url, [{"path": "/api/v1/health", "json_field": "status",
                                           "json_value": "pass"}])
    assert result.message == (f"The JSON field 'status' of {odoo.url}/api/v1/health is 'ok', "
                              "not 'pass'.")


def test_slow_endpoint_is_performance_degradation(odoo):
    def slow(handler):
        odoo.release.wait(0.2)  # the handler's own delay; the test does not wait on time
        reply(handler, 200, b"Login", content_type="text/html")

    odoo.routes["/slow"] = slow
    [result] = check_endpoints(odoo.url, [{"path": "/slow", "contains": "Login", "max_ms": 50}])
    assert result.code == "PERFORMANCE_DEGRADATION"
    assert result.elapsed_ms >= 200
    assert "over its 50 ms budget" in result.message


def test_endpoint_timeout_is_performance_degradation(odoo):
    odoo.routes["/hang"] = lambda handler: odoo.release.wait(10)
    [result] = check_endpoints(odoo.url, [{"path": "/hang"}], timeout_seconds=0.3)
    odoo.release.set()
    assert (result.code, result.data["reason"]) == ("PERFORMANCE_DEGRADATION", "timeout")


def test_unreachable_endpoints(closed_port):
    page, static = check_endpoints(f"http://127.0.0.1:{closed_port}",
                                   [{"path": "/web/login"}, {"path": "/a.css", "kind": "static"}])
    assert (page.code, static.code) == ("API_ERROR", "STATIC_ASSET_MISSING")
    assert page.message.endswith("failed: the connection was refused.")


def test_endpoint_checks_share_a_caller_session(odoo):
    with requests.Session() as session:
        results = check_endpoints(odoo.url, [{"path": "/web/login"}] * 3, session=session)
    assert all(result.ok for result in results)


@pytest.mark.parametrize("check, words", [
    ("/web/login", "is a mapping"),
    ({"path": "/x", "contain": "Login"}, "unknown endpoint check fields: contain"),
    ({"status": 200}, "needs a path starting with '/'"),
    ({"path": "https://evil.example/"}, "needs a path starting with '/'"),
    ({"path": "/x", "kind": "image"}, "kind must be one of page, static, api"),
    ({"path": "/x", "status": "200"}, "must be an HTTP status code"),
    ({"path": "/x", "status": True}, "must be an HTTP status code"),
    ({"path": "/x", "status": 99}, "must be an HTTP status code"),
    ({"path": "/x", "max_ms": 0}, "must be a positive number"),
    ({"path": "/x", "max_ms": True}, "must be a positive number"),
    ({"path": "/x", "max_ms": "fast"}, "must be a positive number"),
])
def test_invalid_checks_are_refused_before_any_request(odoo, check, words):
    with pytest.raises(ValueError, match=words):
        check_endpoints(odoo.url, [{"path": "/web/login"}, check])
    assert odoo.hits == []


def test_normalize_check_fills_defaults():
    assert normalize_check({"path": "/x", "status": None, "kind": None, "max_ms": 250.5}) == {
        "name": None, "path": "/x", "status": 200, "contains": None, "json_field": None,
        "json_value": None, "max_ms": 250.5, "kind": "page"}


# --- check_served_version --------------------------------------------------------------------

def test_served_version_matches(server):
    server.routes["/api/v1/health"] = json_route(200, HEALTHY, [("X-Deployment-ID", "dep-2")])
    result = check_served_version(server.url, "v1.4.0", "dep-2")
    assert result.ok and result.message == "The ingress serves version 'v1.4.0'."
    assert result.data["deployment_id_checked"] is True
    assert check_served_version(server.url, None).ok


def test_served_version_without_deployment_header_checks_the_version_only(server):
    server.routes["/api/v1/health"] = json_route(200, HEALTHY)
    result = check_served_version(server.url, "v1.4.0", "dep-2")
    assert result.ok and result.data["deployment_id_checked"] is False


@pytest.mark.parametrize("answer, expected, code, words", [
    ((200, HEALTHY), ("v1.5.0", None), "TRAFFIC_SWITCH_FAILED",
     "serves version 'v1.4.0', not 'v1.5.0'."),
    ((200, b"<html>"), ("v1.4.0", None), "TRAFFIC_SWITCH_FAILED", "version None"),
    ((200, HEALTHY, [("X-Deployment-ID", "dep-1")]), ("v1.4.0", "dep-2"),
     "TRAFFIC_SWITCH_FAILED", "serves deployment dep-1, not dep-2."),
    ((502, b"bad gateway"), ("v1.4.0", None), "LOAD_BALANCER_ERROR", "answered HTTP 502"),
    ((504, b""), ("v1.4.0", None), "LOAD_BALANCER_ERROR", "answered HTTP 504"),
    ((404, b""), ("v1.4.0", None), "LOAD_BALANCER_ERROR", "served version is unknown."),
])
def test_served_version_failures(server, answer, expected, code, words):
    server.routes["/api/v1/health"] = json_route(*answer)
    result = check_served_version(server.url, *expected)
    assert (result.ok, result.code) == (False, code)
    assert words in result.message


def test_unreachable_ingress_is_load_balancer_error(closed_port):
    result = check_served_version(f"http://127.0.0.1:{closed_port}", "v1")
    assert result.code == "LOAD_BALANCER_ERROR" and result.data["reason"] == "unreachable"


# --- the simulator's fake ingress ------------------------------------------------------------

def _deploy(simulator, app, tag):
    """Roll the app forward to ``tag`` through the real /v2 API, as step 2 does."""
    simulator.sim.push_tag("odoo", tag)
    spec = set_image_tag(app["spec"], tag)
    response = requests.put(f"{simulator.url}/v2/apps/{app['id']}", json={"spec": spec},
                            headers=auth_headers(), timeout=10)
    response.raise_for_status()
    simulator.sim.clock.advance(60)
    return response.json()["app"]["pending_deployment"]["id"]


def test_simulated_app_passes_every_check(simulator, make_app):
    app = make_app("v1.0.0")
    ingress = app["default_ingress"]
    health = check_health(ingress, expected_version="v1.0.0")
    assert health.ok and health.data["version_matches"], health.message
    assert health.data["deployment_id"] == app["active_deployment"]["id"]
    assert check_health(ingress, path="/web/health").ok
    assert check_served_version(ingress, "v1.0.0", app["active_deployment"]["id"]).ok
    results = check_endpoints(ingress, [
        {"path": "/web/login", "contains": "Login"},
        {"path": "/web/database/selector", "contains": "Database"},
        {"path": "/web/static/src/css/base.css", "kind": "static"},
        {"path": "/api/v1/health", "kind": "api", "json_field": "status", "json_value": "ok"},
    ])
    assert all(result.ok for result in results), [result.message for result in results]


def test_simulated_roll_forward_is_served(simulator, make_app):
    app = make_app("v1.0.0")
    deployment_id = _deploy(simulator, app, "v1.1.0")
    result = check_served_version(app["default_ingress"], "v1.1.0", deployment_id)
    assert result.ok, result.message


def test_simulated_version_not_switched(simulator, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("version-not-switched", app_id=app["id"])
    deployment_id = _deploy(simulator, app, "v1.1.0")
    result = check_served_version(app["default_ingress"], "v1.1.0", deployment_id)
    assert result.code == "TRAFFIC_SWITCH_FAILED", result.message


@pytest.mark.parametrize("scenario, code", [
    ("health-fail-always", "HEALTH_CHECK_FAIL"),
    ("db-down", "DATABASE_CONNECTION_ERROR"),
])
def test_simulated_health_failures(simulator, make_app, scenario, code):
    app = make_app("v1.0.0", scenario=scenario)
    result = check_health(app["default_ingress"])
    assert result.code == code, result.message


def test_simulated_health_fails_once_then_passes(simulator, make_app):
    app = make_app("v1.0.0", scenario="health-fail-once")
    first, second = (check_health(app["default_ingress"]) for _ in range(2))
    assert (first.code, second.ok) == ("HEALTH_CHECK_FAIL", True)


def test_simulated_slow_health_is_response_timeout(simulator, make_app):
    app = make_app("v1.0.0")
    simulator.sim.set_scenario("health-slow", app_id=app["id"], delay=5)
    result = check_health(app["default_ingress"], budget_seconds=0.3)
    simulator.sim.wake()
    assert result.code == "RESPONSE_TIMEOUT"


@pytest.mark.parametrize("scenario, params, check_and_code", [
    ("endpoint-missing", {}, ({"path": "/web/login"}, "ENDPOINT_404")),
    ("static-missing", {}, ({"path": "/web/static/src/css/base.css", "kind": "static"},
                            "STATIC_ASSET_MISSING")),
    ("api-error", {}, ({"path": "/api/v1/health", "kind": "api"}, "API_ERROR")),
    ("api-error", {"status": 200}, ({"path": "/api/v1/health", "kind": "api",
                                     "json_field": "status", "json_value": "ok"}, "API_ERROR")),
    ("slow-endpoints", {"delay": 0.2}, ({"path": "/web/login", "max_ms": 50},
                                        "PERFORMANCE_DEGRADATION")),
])
def test_simulated_endpoint_failures(simulator, make_app, scenario, params, check_and_code):
    check, code = check_and_code
    app = make_app("v1.0.0")
    simulator.sim.set_scenario(scenario, app_id=app["id"], **params)
    [result] = check_endpoints(app["default_ingress"], [check])
    assert result.code == code, result.message


def test_simulated_unknown_app_is_a_load_balancer_error(simulator):
    result = check_served_version(f"{simulator.url}/_ingress/no-such-app", "v1")
    assert result.code == "LOAD_BALANCER_ERROR"


# --- check_dns -------------------------------------------------------------------------------

def fake_resolver(answers):
    calls = []

    def resolve(host, port, **options):
        calls.append((host, port, options.get("type")))
        if isinstance(answers, Exception):
            raise answers
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0)) for address in answers]

    resolve.calls = calls
    return resolve


def test_dns_resolves():
    resolver = fake_resolver(["203.0.113.9", "203.0.113.7", "203.0.113.9"])
    result = check_dns("https://Odoo-Prod.ondigitalocean.app/web", resolver=resolver)
    assert result.ok and result.data == {"hostname": "odoo-prod.ondigitalocean.app",
                                         "addresses": ["203.0.113.7", "203.0.113.9"]}
    assert resolver.calls == [("odoo-prod.ondigitalocean.app", None, socket.SOCK_STREAM)]
    assert check_dns("erp.example.com.", resolver=resolver).data["hostname"] == "erp.example.com"


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1", "[::1]",
                                      "http://127.0.0.1:8799/_ingress/x"])
def test_ip_literals_and_localhost_need_no_lookup(hostname):
    resolver = fake_resolver(socket.gaierror(-2, "Name or service not known"))
    assert check_dns(hostname, resolver=resolver).ok
    assert resolver.calls == []


@pytest.mark.parametrize("resolver", [
    fake_resolver(socket.gaierror(-2, "Name or service not known")),
    fake_resolver([]),
    socket.getaddrinfo,  # a 64-character label fails IDNA encoding before any lookup
])
def test_dns_not_resolving_yet(resolver):
    result = check_dns("a" * 64 + ".example.com", resolver=resolver)
    assert (result.ok, result.code) == (False, "DNS_PROPAGATION_DELAY")
    assert result.message.startswith(f"The hostname {'a' * 64}.example.com ")
    with pytest.raises(DeployError) as info:
        result.raise_for_result()
    assert info.value.retryable


@pytest.mark.parametrize("hostname", ["", None, "https://"])
def test_dns_without_hostname(hostname):
    result = check_dns(hostname)
    assert result.code == "DNS_PROPAGATION_DELAY" and result.message == (
        "No hostname was given to resolve.")


# --- check_tls -------------------------------------------------------------------------------

def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, not_after, *, ca=False, sans=(),
                 not_before=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - datetime.timedelta(days=1))
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256(), default_backend())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and PEM files for leaf certificates, valid or broken in one way each."""
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1(), default_backend())
    ca = _certificate("Test CA", ca_key, "Test CA", ca_key, now + datetime.timedelta(days=3650),
                      ca=True)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    localhost = [x509.DNSName("localhost")]
    leaves = {
        "valid": ("localhost", "ca", now + datetime.timedelta(days=90), localhost),
        "expiring": ("localhost", "ca", now + datetime.timedelta(days=3), localhost),
        "expired": ("localhost", "ca", now - datetime.timedelta(hours=1), localhost),
        "wrong-host": ("other.example", "ca", now + datetime.timedelta(days=90),
                       [x509.DNSName("other.example")]),
        "self-signed": ("localhost", "self", now + datetime.timedelta(days=90), localhost),
    }
    files = {"ca": str(folder / "ca.pem")}
    for label, (subject, issuer, not_after, sans) in leaves.items():
        key = ec.generate_private_key(ec.SECP256R1(), default_backend())
        if issuer == "self":
            cert = _certificate(subject, key, subject, key, not_after, sans=sans)
        else:
            cert = _certificate(subject, key, "Test CA", ca_key, not_after, sans=sans,
                                not_before=min(now - datetime.timedelta(days=1),
                                               not_after - datetime.timedelta(days=1)))
        path = folder / f"{label}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        files[label] = str(path)
    return files


class TLSServer(socketserver.ThreadingTCPServer):
    """Completes TLS handshakes with one certificate and closes the connection."""

    daemon_threads = True

    def __init__(self, certfile):
        super().__init__(("127.0.0.1", 0), socketserver.BaseRequestHandler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def get_request(self):
        connection, address = super().get_request()
        return self.context.wrap_socket(connection, server_side=True), address

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def tls_server(pki):
    servers = []

    def start(label):
        servers.append(TLSServer(pki[label]))
        return servers[-1].port

    yield start
    for started in servers:
        started.stop()


def test_valid_certificate(pki, tls_server):
    port = tls_server("valid")
    result = check_tls("localhost", port, cafile=pki["ca"])
    assert result.ok, result.message
    assert result.data["subject"] == "localhost" and result.data["issuer"] == "Test CA"
    assert 88 <= result.data["days_left"] <= 90
    assert result.data["not_after"].endswith("+00:00")
    assert result.message.startswith("The certificate of localhost is valid for ")
    assert check_tls(f"https://localhost:{port}/web", port, cafile=pki["ca"]).ok


@pytest.mark.parametrize("label, words", [
    ("expiring", "days, within the 7-day margin."),
    ("expired", "certificate has expired"),
    ("wrong-host", "Hostname mismatch"),
    ("self-signed", "self"),
])
def test_bad_certificates(pki, tls_server, label, words):
    result = check_tls("localhost", tls_server(label), min_days=7, cafile=pki["ca"])
    assert (result.ok, result.code) == (False, "SSL_CERTIFICATE_ERROR")
    assert words in result.message


def test_untrusted_ca_without_cafile(tls_server):
    result = check_tls("localhost", tls_server("valid"))
    assert result.code == "SSL_CERTIFICATE_ERROR"
    assert "unable to get local issuer certificate" in result.message


def test_plain_http_on_the_tls_port(server, pki):
    result = check_tls("localhost", server.port, cafile=pki["ca"])
    assert result.code == "SSL_CERTIFICATE_ERROR"
    assert result.message.startswith(f"The TLS handshake with localhost:{server.port} failed: ")


def test_tls_port_closed(closed_port):
    result = check_tls("localhost", closed_port)
    assert result.code == "LOAD_BALANCER_ERROR"
    assert "Connection refused" in result.message


def test_tls_host_not_resolving():
    result = check_tls("no-such-host.invalid")
    assert result.code == "DNS_PROPAGATION_DELAY"


def test_tls_without_hostname():
    assert check_tls("").message == "No hostname was given to check."


def test_https_health_check_with_untrusted_and_trusted_certificate(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["valid"])
    secure = LocalServer(context)
    try:
        secure.routes["/api/v1/health"] = json_route(200, HEALTHY)
        secure.routes["/old"] = lambda h: reply(h, 302, headers=[
            ("Location", f"http://localhost:{secure.port}/api/v1/health")])
        base = f"localhost:{secure.port}"  # no scheme: https is assumed
        refused = check_health(base)
        assert (refused.code, refused.data["reason"]) == ("SSL_CERTIFICATE_ERROR", "tls")
        with requests.Session() as session:
            session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify
            session.verify = pki["ca"]
            assert check_health(base, session=session).ok
            downgrade = check_health(base, path="/old", session=session)
        assert downgrade.message.endswith("it redirects from https to plain http.")
        # The URL guard checks the peer of TLS connections too, before the handshake.
        with guarded_session(["127.0.0.1", "::1"]) as guarded:
            guarded.verify = pki["ca"]
            assert check_health(base, session=guarded).ok
        assert check_health(base, session=guarded_session()).code == "URL_NOT_ALLOWED"
    finally:
        secure.stop()
