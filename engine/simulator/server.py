"""A small threaded HTTP/1.1 server for the simulator's WSGI app.

``wsgiref`` speaks HTTP/1.0 and closes every connection, which caps a load
test at a few hundred requests per second; this adapter keeps connections
alive, writes each response in one ``send`` and can really drop a connection
(the ``drop-connection`` scenario).
"""

import io
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from .app import DropConnection


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DigitalOceanSimulator/1.0"
    sys_version = ""

    def log_message(self, format, *args):
        """Stay quiet: a load test would otherwise spend its time on stderr."""

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _environ(self, body):
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"), "QUERY_STRING": query,
            "RAW_URI": self.path, "REQUEST_URI": self.path,
            "SERVER_NAME": host, "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _run(self):
        environ = self._environ(self._read_body())
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]

        try:
            result = self.server.app(environ, start_response)
            body = b"".join(result)
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status, headers = started
        lines = [f"HTTP/1.1 {status}", f"Server: {self.server_version}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if not any(name.lower() == "content-length" for name, _value in headers):
            length = len(body) if self.command != "HEAD" else 0
            lines.append(f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)
        except ConnectionError:
            self.close_connection = True  # the client gave up waiting (scenario delays)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _run


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, app):
        super().__init__(address, _Handler)
        self.app = app
        self._connections = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """Clients that hang up are normal here; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self):
        """Close kept-alive client connections so their threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimulatorServer:
    """Serve a :class:`~.app.Simulator` on a loopback port in a background thread.

    ``port=0`` picks a free port; ``url`` tells which. Usable as a context
    manager.
    """

    def __init__(self, sim, host="127.0.0.1", port=0):
        self.sim = sim
        self.host = host
        self.port = port
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        self._server = _Server((self.host, self.port), self.sim)
        self.port = self._server.server_address[1]
        self.sim.base_url = self.url
        self.sim._wake.clear()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"simulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self.sim.wake()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        self._server = None

    def __enter__(self):
        return self if self._server else self.start()

    def __exit__(self, *exc_info):
        self.stop()
