"""A loopback HTTP server in a daemon thread: the base of the fake services tests talk to."""

import threading
from http.server import ThreadingHTTPServer


class LoopbackServer:
    """Serves ``handler_class`` on a free 127.0.0.1 port: ``start()``/``stop()``, or ``with``."""

    def __init__(self, handler_class):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
