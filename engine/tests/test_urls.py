"""The outbound URL guard: non-public addresses refused unless allowed, before sending
(check_url) and at connect time (guarded_session), with the simulator still reachable
when 127.0.0.1 is allowed."""

import ipaddress
import socket

import pytest
import requests

from engine import checks
from engine.client import AppPlatformClient
from engine.errors import DeployError
from engine.urls import AllowList, check_url, guarded_session, refused_reason


def resolving_to(*addresses):
    """A getaddrinfo stand-in answering ``addresses`` for any host, recording the hosts."""
    def resolver(host, port, type=0):
        resolver.hosts.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, port or 0))
                for a in addresses]
    resolver.hosts = []
    return resolver


def refused(call, *args, **kwargs):
    with pytest.raises(DeployError) as info:
        call(*args, **kwargs)
    assert info.value.code == "URL_NOT_ALLOWED", info.value.to_dict()
    assert info.value.entry.mitigation and not info.value.retryable
    return info.value


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("127.5.5.5", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
    ("192.168.1.1", "private"), ("fd12:3456::1", "private"), ("fc00::1", "private"),
    ("169.254.169.254", "link-local"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"), ("100.127.255.255", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("255.255.255.255", "reserved"), ("192.0.0.192", "reserved"),
    # IPv6 forms of the same places: mapped, NAT64, 6to4.
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::a9fe:a9fe", "link-local"), ("2002:0a00:0001::1", "private"),
])
def test_non_public_addresses_are_refused_with_what_they_are(address, reason):
    assert refused_reason(address) == reason


@pytest.mark.parametrize("address", [
    "8.8.8.8", "104.16.0.1", "100.128.0.1", "100.63.255.255", "172.32.0.1", "11.0.0.1",
    "192.169.0.1", "2606:4700::1", "2002:0808:0808::1",
])
def test_public_addresses_pass(address):
    assert refused_reason(address) is None


def test_allow_list_takes_networks_addresses_and_host_names():
    allow = AllowList(["127.0.0.1", "10.0.0.0/8", "fd00::/8", ipaddress.ip_address("::1"),
                       ipaddress.ip_network("192.168.5.0/24"), "Sim.Internal."])
    assert refused_reason("127.0.0.1", allow) is None
    assert refused_reason("127.0.0.2", allow) == "loopback"
    assert refused_reason("10.200.0.1", allow) is None
    assert refused_reason("::ffff:10.0.0.1", allow) is None
    assert refused_reason("fd00::5", allow) is None and refused_reason("::1", allow) is None
    assert refused_reason("192.168.5.9", allow) is None
    assert allow.allows_host("sim.internal") and not allow.allows_host("other.internal")
    assert AllowList.of(allow) is allow
    assert bool(allow) and not AllowList()
    for bad in ("not a host!", "10.0.0.0/33", ""):
        with pytest.raises(ValueError, match="neither a network"):
            AllowList([bad])


def test_check_url_resolves_and_refuses_any_private_answer():
    public = resolving_to("93.184.216.34")
    assert check_url("https://example.com/api/v1/health", resolver=public) == ["93.184.216.34"]
    assert public.hosts == ["example.com"]
    error = refused(check_url, "https://app.example.com/x?token=abc",
                    resolver=resolving_to("93.184.216.34", "169.254.169.254"))
    assert error.code == "URL_NOT_ALLOWED"
    assert error.details == {"url": "https://app.example.com/x?token=***", "host":
                             "app.example.com", "address": "169.254.169.254",
                             "reason": "link-local"}
    assert "169.254.169.254, a link-local address" in error.message
    assert "abc" not in str(error)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8069/web", "http://[::1]/", "http://2130706433/", "http://127.1/",
    "http://0x7f.0.0.1/", "http://0.0.0.0:8080/", "http://[::ffff:7f00:1]/",
    "http://169.254.169.254/latest/meta-data/", "http://localhost/",
])
def test_numeric_and_local_spellings_of_this_machine_are_refused(url):
    """The real resolver reads decimal, short and hex forms as the kernel would."""
    refused(check_url, url)


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "example.com",
    "http://", "http://example.com:99999/", None,
])
def test_only_http_urls_with_a_host_pass(url):
    error = refused(check_url, url, resolver=resolving_to("93.184.216.34"))
    assert error.details["reason"] == "not an http(s) URL"


def test_allowed_networks_and_hosts_pass():
    assert check_url("http://127.0.0.1:8799/v2", allowed=["127.0.0.1"]) == ["127.0.0.1"]
    assert check_url("http://10.1.2.3/", allowed=["10.0.0.0/8"],
                     resolver=resolving_to("10.1.2.3")) == ["10.1.2.3"]
    by_name = resolving_to("10.1.2.3")
    assert check_url("https://sim.internal/v2", allowed=["sim.internal"], resolver=by_name) == []
    assert by_name.hosts == []


def test_a_host_that_does_not_resolve_is_dns_propagation_delay():
    def failing(host, port, type=0):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    for resolver in (failing, resolving_to()):
        with pytest.raises(DeployError) as info:
            check_url("https://new-app.ondigitalocean.app/", resolver=resolver)
        assert info.value.code == "DNS_PROPAGATION_DELAY" and info.value.retryable


# ------------------------------------------------------------- over real loopback HTTP

def test_the_simulator_is_refused_unless_127_0_0_1_is_allowed(simulator, make_app):
    app = make_app()
    refused(check_url, simulator.url)
    assert check_url(app["live_url"], allowed=["127.0.0.1"]) == ["127.0.0.1"]
    error = refused(guarded_session().get, f"{simulator.url}/v2/apps", timeout=5)
    assert error.details["address"] == "127.0.0.1" and error.details["reason"] == "loopback"
    with guarded_session(["127.0.0.1"]) as allowed:
        assert allowed.get(f"{simulator.url}/_sim/clock", timeout=5).status_code == 200
    with guarded_session(AllowList(["localhost"])) as by_name:
        host_url = simulator.url.replace("127.0.0.1", "localhost")
        assert by_name.get(f"{host_url}/_sim/clock", timeout=5).status_code == 200


def test_the_guarded_session_refuses_what_the_host_resolves_to_when_connecting(simulator):
    """DNS rebinding: check_url was told a public address, the connection reaches loopback."""
    url = simulator.url.replace("127.0.0.1", "localhost") + "/_sim/clock"
    assert check_url(url, resolver=resolving_to("93.184.216.34")) == ["93.184.216.34"]
    error = refused(guarded_session().get, url, timeout=5)
    assert error.code == "URL_NOT_ALLOWED" and error.details["host"] == "localhost"
    https = refused(guarded_session().get, url.replace("http://", "https://"), timeout=5)
    assert https.details["url"].startswith("https://localhost:")


def test_the_guarded_session_never_goes_through_a_proxy():
    session = guarded_session()
    session.proxies = {"http": "http://proxy.example:3128"}
    refused(session.get, "http://example.com/", timeout=5)


def test_checks_through_a_guarded_session_fail_with_url_not_allowed(simulator, make_app):
    app = make_app()
    result = checks.check_health(app["live_url"], session=guarded_session())
    assert (result.ok, result.code, result.data["reason"]) == (False, "URL_NOT_ALLOWED",
                                                                "refused")
    assert result.message.endswith("unless a system administrator allows it.")
    with pytest.raises(DeployError) as info:
        result.raise_for_result()
    assert info.value.code == "URL_NOT_ALLOWED"
    [page] = checks.check_endpoints(app["live_url"], [{"path": "/web/login"}],
                                    session=guarded_session())
    assert page.code == "URL_NOT_ALLOWED"
    allowed = guarded_session(["127.0.0.1"])
    assert checks.check_health(app["live_url"], session=allowed).ok
    assert checks.check_served_version(app["live_url"], "v1.0.0", session=allowed).ok


def test_the_client_through_guarded_sessions(simulator, sim_token, make_app):
    app = make_app()
    refused(AppPlatformClient(sim_token, simulator.url, session=guarded_session(),
                              max_retries=0).get_app, app["id"])
    client = AppPlatformClient(sim_token, simulator.url, session=guarded_session(["127.0.0.1"]),
                               log_session=guarded_session())
    assert client.get_app(app["id"])["id"] == app["id"]
    # Log URLs come from the API's answer: they are checked on their own.
    error = refused(client.get_logs, app["id"], app["active_deployment"]["id"], log_type="BUILD")
    assert error.details["reason"] == "loopback"
    logs = AppPlatformClient(sim_token, simulator.url, session=guarded_session(["127.0.0.1"]),
                             log_session=guarded_session(["127.0.0.1"]))
    assert "odoo" in logs.get_logs(app["id"], app["active_deployment"]["id"], log_type="BUILD")
    shared = requests.Session()
    with pytest.raises(ValueError, match="own session"):
        AppPlatformClient(sim_token, simulator.url, session=shared, log_session=shared)
