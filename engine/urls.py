"""Which outbound URLs the engine may fetch: public addresses, and what an administrator allows.

API, ingress, log and endpoint-check URLs come from account settings, app
settings and DigitalOcean's answers, and parts of each answer are stored where
every Deployment User reads them. A URL that reaches this server's own network
(loopback, RFC 1918 and RFC 4193 private ranges, link-local with the cloud
metadata service at 169.254.169.254, carrier-grade NAT, unspecified, multicast)
would turn a deployment into a probe of it, so such addresses are refused
unless the caller passes an allow-list (e.g. the simulator on 127.0.0.1).

Two ways to use it:

* :func:`check_url` resolves the host and decides before anything is sent (for
  a setting as it is saved, or before a step starts);
* :func:`guarded_session` gives a ``requests`` session that checks the address
  each connection really reached, so a host that resolves to a public address
  for :func:`check_url` and to a private one a moment later (DNS rebinding) is
  still refused. Pass it as ``session`` to the checks and the REST client, and
  as ``log_session`` to the client.

A refusal is a :class:`~engine.errors.DeployError` with code ``URL_NOT_ALLOWED``.
"""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import DeployError, redact

# (what the address is, networks), checked in order; a public address is in none.
_REFUSED = (
    ("unspecified", ("0.0.0.0/8", "::/128")),
    ("loopback", ("127.0.0.0/8", "::1/128")),
    ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10",
                 "64:ff9b:1::/48")),
    ("link-local", ("169.254.0.0/16", "fe80::/10")),
    ("carrier-grade NAT", ("100.64.0.0/10",)),
    ("multicast", ("224.0.0.0/4", "ff00::/8")),
    # IETF protocol assignments (192.0.0.192 is a metadata service too), 240/4 with the
    # broadcast address, IPv4-compatible IPv6 and the IPv6 discard prefix.
    ("reserved", ("192.0.0.0/24", "240.0.0.0/4", "::/96", "100::/64")),
)
REFUSED_NETWORKS = tuple((kind, tuple(ipaddress.ip_network(net) for net in nets))
                         for kind, nets in _REFUSED)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_RE = re.compile(r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
                      r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")


def _address(value):
    """An ip_address from text (an IPv6 zone such as ``%eth0`` is dropped) or as given."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    return ipaddress.ip_address(str(value).split("%", 1)[0])


def _host(value):
    return str(value or "").strip().strip("[]").rstrip(".").lower()


class AllowList:
    """Networks (``10.0.0.0/8``, ``127.0.0.1``, ``::1``) and host names (``sim.internal``)
    allowed although their addresses are not public.

    A host allowed by name is not resolved at all: the administrator trusts that
    name, whatever it points at. Anything else is a ValueError, since a typo in
    the list must not pass silently.
    """

    def __init__(self, entries=()):
        self.networks = []
        self.hosts = set()
        for entry in entries or ():
            if isinstance(entry, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                self.networks.append(entry)
                continue
            if isinstance(entry, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                self.networks.append(ipaddress.ip_network(entry))
                continue
            text = str(entry).strip()
            try:
                self.networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            host = _host(text)
            if not _HOST_RE.fullmatch(host):
                raise ValueError(f"{entry!r} is neither a network, an address nor a host name")
            self.hosts.add(host)

    @classmethod
    def of(cls, allowed):
        """``allowed`` as an AllowList (it may already be one)."""
        return allowed if isinstance(allowed, cls) else cls(allowed)

    def allows_host(self, host):
        return _host(host) in self.hosts

    def allows_address(self, address):
        address = _address(address)
        return any(address.version == net.version and address in net for net in self.networks)

    def __bool__(self):
        return bool(self.networks or self.hosts)


def _embedded_ipv4(address):
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return address.sixtofour
    return address.teredo[1] if address.teredo else None


def refused_reason(address, allowed=()):
    """What makes ``address`` not fetchable ("loopback", "private"...), or None when it is
    public or allowed. An IPv6 address carrying an IPv4 one is judged by both."""
    allow = AllowList.of(allowed)
    address = _address(address)
    candidates = [address]
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        candidates.append(embedded)
    if any(allow.allows_address(candidate) for candidate in candidates):
        return None
    for candidate in candidates:
        for kind, networks in REFUSED_NETWORKS:
            if any(candidate.version == net.version and candidate in net for net in networks):
                return kind
    return None


def _refusal(shown, host, address, reason):
    return DeployError(
        "URL_NOT_ALLOWED",
        f"{shown} points at {address}, a {reason} address, which this server does not fetch "
        "unless a system administrator allows it.",
        details={"url": shown, "host": host, "address": str(address), "reason": reason},
    )


def check_url(url, *, allowed=(), resolver=socket.getaddrinfo):
    """Decide whether ``url`` may be fetched; return the addresses its host resolves to.

    Refused (DeployError URL_NOT_ALLOWED): a scheme other than http(s), no host,
    or any resolved address that is not public and not in ``allowed`` (an
    :class:`AllowList` or its entries). A host allowed by name is not resolved
    and gives ``[]``. A host that does not resolve is DNS_PROPAGATION_DELAY
    (retryable): nothing can be decided about it yet. ``resolver`` is called
    like :func:`socket.getaddrinfo`.
    """
    shown = redact(url)
    try:
        parts = urlsplit(str(url or "").strip())
        host, port = _host(parts.hostname), parts.port
    except ValueError:
        parts, host, port = None, "", None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise DeployError("URL_NOT_ALLOWED", f"{shown} is not an http or https URL with a host.",
                          details={"url": shown, "reason": "not an http(s) URL"})
    allow = AllowList.of(allowed)
    if allow.allows_host(host):
        return []
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DeployError("DNS_PROPAGATION_DELAY",
                          f"The host {host} of {shown} does not resolve yet ({exc}), so whether "
                          "it may be fetched is not known.",
                          details={"url": shown, "host": host}, retryable=True) from None
    addresses = sorted({_address(info[4][0]) for info in infos}, key=lambda a: (a.version, a))
    if not addresses:
        raise DeployError("DNS_PROPAGATION_DELAY", f"The host {host} of {shown} resolves to no "
                          "address yet.", details={"url": shown, "host": host}, retryable=True)
    for address in addresses:
        reason = refused_reason(address, allow)
        if reason:
            raise _refusal(shown, host, address, reason)
    return [str(address) for address in addresses]


# ---------------------------------------------------------------- connect-time guard

def _check_peer(connection, sock, allow):
    """Close ``sock`` and refuse when the address it reached may not be fetched."""
    if allow.allows_host(connection.host):
        return
    address = sock.getpeername()[0]
    reason = refused_reason(address, allow)
    if reason:
        sock.close()
        scheme = "https" if isinstance(connection, HTTPSConnection) else "http"
        raise _refusal(f"{scheme}://{connection.host}:{connection.port}", connection.host,
                       _address(address), reason)


def _pool_classes(allow):
    """Connection pools whose connections check their peer as soon as they connect
    (urllib3 1.26 and 2.x both open every socket in ``_new_conn``)."""

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            _check_peer(self, sock, allow)
            return sock

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            _check_peer(self, sock, allow)
            return sock

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, allow, **kwargs):
        self._allow = allow
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._allow)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # Through a proxy the peer is the proxy, not the URL's host: nothing to check.
        raise DeployError("URL_NOT_ALLOWED", "A guarded connection does not go through a proxy.",
                          details={"proxy": redact(proxy)})


def guarded_session(allowed=()):
    """A ``requests`` session that refuses, at connect time, any address :func:`check_url`
    would refuse (DeployError URL_NOT_ALLOWED raised from the request).

    Proxy variables and ~/.netrc are ignored, as the checks' own sessions do.
    """
    allow = AllowList.of(allowed)
    session = requests.Session()
    session.trust_env = False
    for prefix in ("http://", "https://"):
        session.mount(prefix, _GuardedAdapter(allow))
    return session
