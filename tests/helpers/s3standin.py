"""A loopback S3 stand-in that misbehaves on purpose: silent, stalled, or fast and large.

boto3 reaches it through ``AWS_ENDPOINT_URL_S3`` (path-style, as for any IP endpoint).
``GET /BUCKET/KEY`` answers by key:

- ``stall/headers...``: reads the request and never answers (until :meth:`stop`);
- ``stall/body...``: answers 200 with a Content-Length, sends a few bytes, then stalls;
- a key in ``objects``: 200 with those bytes; any other key: S3's 404 ``NoSuchKey``.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from .loopback import JsonHandler, LoopbackHTTPServer

NO_SUCH_KEY = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
               b"<Message>The specified key does not exist.</Message></Error>")


class S3StandIn(LoopbackHTTPServer):
    """The stand-in; ``gets`` counts GET requests by key (every attempt of boto3's)."""

    def __init__(self, objects: dict[str, bytes] | None = None):
        self.objects = dict(objects or {})
        self.gets: dict[str, int] = {}
        self.released = threading.Event()
        stand_in = self

        class Handler(JsonHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                key = self.path.split("?")[0].lstrip("/").partition("/")[2]
                stand_in.gets[key] = stand_in.gets.get(key, 0) + 1
                if key.startswith("stall/headers"):
                    stand_in.released.wait()
                    return
                if key.startswith("stall/body"):
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"\xff\xd8\xff")
                    self.wfile.flush()
                    stand_in.released.wait()
                    self.close_connection = True
                    return
                data = stand_in.objects.get(key)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(NO_SUCH_KEY)))
                    self.end_headers()
                    self.wfile.write(NO_SUCH_KEY)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", '"0"')
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)
        self.server.daemon_threads = True

    def stop(self) -> None:
        self.released.set()  # stalled answers end, so their threads and sockets do too
        super().stop()


@contextlib.contextmanager
def s3_stand_in(objects: dict[str, bytes] | None = None) -> Iterator[S3StandIn]:
    """A running :class:`S3StandIn`, always stopped."""
    server = S3StandIn(objects)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def worker_env(url: str, bucket: str, **settings: object) -> dict[str, str]:
    """Environment for an MMS worker fetching from ``bucket`` at the stand-in ``url``;
    ``settings`` are model config keys (``s3_read_timeout_s=1`` -> FRAME_INFER_...)."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": url,
           "AWS_EC2_METADATA_DISABLED": "true", "FRAME_INFER_ALLOWED_S3_BUCKETS": bucket}
    env.update({f"FRAME_INFER_{key.upper()}": str(value) for key, value in settings.items()})
    return env
