"""A small HTTP server on a free loopback port, for the stand-ins of AWS APIs."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from frame_infer.serving.ports import free_port


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet handler with one way to answer: JSON (or raw bytes) plus extra headers."""

    def log_message(self, *args):
        pass

    def send_json(self, status: int, body, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class LoopbackHTTPServer:
    """``handler`` served on 127.0.0.1 from a daemon thread between start() and stop()."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StandIn:
    """Base of the loopback stand-ins: ``serve(Handler)`` in ``__init__``, then use the
    object as a context manager; the server stops however the block ends."""

    url: str

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._http = LoopbackHTTPServer(handler)
        self.url = self._http.url

    def __enter__(self):
        self._http.start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.stop()
