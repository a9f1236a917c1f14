"""The SageMaker container's HTTP front on port 8080, in front of MMS on loopback.

``GET /ping`` answers Healthy only when the model has a READY worker **and** answers:
MMS's own ``/ping`` says 200 even with no live worker, and a worker can stay READY with
no process behind it (after the model is scaled to 0 and back, or a handler is killed
during a crash), every request then hanging. So :class:`Health` sends the model a tiny
probe whenever no request has succeeded for ``probe_interval_s``; a probe unanswered
within ``probe_timeout_s`` (or failed) makes ``/ping`` 503 until one succeeds, and
SageMaker replaces the instance. ``POST /invocations`` goes to ``/predictions/{model}`` unchanged
(body, Content-Type, query), streamed: the front holds no body. Nothing else reaches MMS:
its management API (loopback only) is never proxied. At most as many requests as MMS can
hold (its job queue plus a batch per worker) are forwarded at once; the next ones get 503
``server_busy`` at once, so memory stays bounded however many clients send. Its own
errors follow docs/API.md: ``{"error": {"code", "message"}}`` with 404, 411, 413 or 503;
MMS's own error answers are translated into the same body (``wire.contract_error``).
``GET /metrics`` answers the Prometheus text of :class:`~.metrics.ServingMetrics` (what each
figure is and where it is measured: ``metrics.py``); the front counts and times every
``/invocations`` answer itself.

``GET /execution-parameters`` answers Batch Transform's handshake
(:func:`execution_parameters`).
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from model_handler.wire import JSON, PNG, contract_error, error_body

from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, ServingMetrics
from .mms import LocalMMS, response_timeout_minutes

if TYPE_CHECKING:
    from .container import ContainerSettings

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "expect",
              "proxy-connection", "te", "trailer", "upgrade"}

MIB = 1024 * 1024
BATCH_TRANSFORM_MAX_PAYLOAD_MB = 6  # the real-time limit: clients pack shards the same way


def execution_parameters(settings: ContainerSettings) -> dict:
    """Batch Transform's ``GET /execution-parameters`` answer, asked once per instance
    before the first ``/invocations`` (a job's own settings override it).

    One record is one shard of many frames, so a single request already fills a handler
    call: two per worker keep every worker busy (one runs while the next one's body
    arrives); more would only wait in MMS's queue, holding their bodies in the Java heap,
    and run into the response timeout. ``SINGLE_RECORD``: a multipart body cannot be
    concatenated with another. The payload stays at 6 MB (never over the front's own
    limit, never 0, which would mean chunked bodies, refused here with 411).
    """
    return {"MaxConcurrentTransforms": max(1, min(100, 2 * settings.workers)),
            "BatchStrategy": "SINGLE_RECORD",
            "MaxPayloadInMB": max(1, min(BATCH_TRANSFORM_MAX_PAYLOAD_MB,
                                         settings.max_request_bytes // MIB))}


NOT_FOUND = ("only GET /ping, GET /metrics, GET /execution-parameters and POST /invocations "
             "exist")
# A 1x1 gray PNG: any image model accepts it (the service resizes it to the input).
PROBE_PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
                          "0000000a49444154789c6360000000020001e221bc330000000049454e44ae426082")


class Health:
    """Whether the model answers: recent success (a request or a probe), or a probe now.

    ``run`` (a thread) probes when nothing succeeded for ``interval`` seconds. A probe the
    model does not answer within ``timeout`` seconds, or answers with a 5xx other than a
    full queue, marks the model failing; any later success clears it. A full queue (503
    from MMS) is load, not breakage: it changes nothing.
    """

    def __init__(self, mms: LocalMMS, model: str, interval: float, timeout: float,
                 metrics: ServingMetrics | None = None):
        self._clock = time.monotonic
        self.mms, self.model, self.interval, self.timeout = mms, model, interval, timeout
        self.metrics = metrics or ServingMetrics()
        self.last_ok = self._clock()  # registration just saw the worker READY
        self.failure: str | None = None
        self.probes = 0

    def succeeded(self) -> None:
        self.last_ok, self.failure = self._clock(), None

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(min(1.0, self.interval)):
            if self._clock() - self.last_ok >= self.interval:
                self.probe()

    def probe(self) -> None:
        """Send the model one tiny image and record the outcome."""
        self.probes += 1
        self.metrics.health_probes.inc()
        conn = http.client.HTTPConnection("127.0.0.1", self.mms.settings.port,
                                          timeout=self.timeout)
        try:
            conn.request("POST", f"/predictions/{self.model}", body=PROBE_PNG,
                         headers={"Content-Type": PNG})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.failure = f"a probe got no answer within {self.timeout:g}s ({exc})"
            return
        finally:
            conn.close()
        if resp.status == 200:
            self.succeeded()
        elif resp.status != 503 or b"queue" not in body:
            self.failure = f"a probe got HTTP {resp.status}: {body[:200]!r}"


class Front(ThreadingHTTPServer):
    """Port 8080: ``/ping`` from the worker status, ``/invocations`` to the model,
    ``/metrics`` from ``metrics`` (a new :class:`ServingMetrics` when None)."""

    daemon_threads, request_queue_size = True, 128

    def __init__(self, address, mms: LocalMMS, model: str, settings: ContainerSettings,
                 metrics: ServingMetrics | None = None):
        self.mms, self.model, self.settings = mms, model, settings
        self.metrics = metrics or ServingMetrics()
        self.max_in_flight = mms.job_queue_size + settings.batch_size * settings.workers
        self.in_flight = threading.BoundedSemaphore(self.max_in_flight)
        # MMS gives up on a batch after whole minutes (it rounds up); then 5 s for the answer.
        self.timeout_s = response_timeout_minutes(settings.response_timeout_s) * 60 + 5
        self.health = Health(mms, model, settings.probe_interval_s, settings.probe_timeout_s,
                             self.metrics)
        super().__init__(address, FrontHandler)


class BodyReader:
    """The request body as a file of exactly ``length`` bytes, read as it is sent on."""

    def __init__(self, stream, length: int):
        self.stream, self.left = stream, length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.stream.read(size) if size else b""
        self.left -= len(data)
        if size and not data:
            raise ConnectionError(f"the client sent {self.left} bytes less than its "
                                  "Content-Length")
        return data

    def discard(self) -> None:
        while self.read(64 * 1024):
            pass


class FrontHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests; bodies go to MMS unchanged."""

    protocol_version = "HTTP/1.1"  # keep-alive: SageMaker reuses connections
    disable_nagle_algorithm = True  # Nagle + delayed ACK would add ~40 ms per answer

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/metrics":
            return self._send(200, self.server.metrics.exposition(),
                              (("Content-Type", METRICS_CONTENT_TYPE),))
        if path == "/execution-parameters":
            body = execution_parameters(self.server.settings)
            return self._send(200, json.dumps(body).encode())
        if path != "/ping":
            return self._error(404, "not_found", NOT_FOUND)
        try:  # MMS's own /ping says Healthy even with no live worker
            workers = self.server.mms.model_status(self.server.model).get("workers", [])
        except (OSError, ValueError):
            workers = []
        ready = sum(w.get("status") == "READY" for w in workers)
        failure = self.server.health.failure
        healthy = ready and failure is None
        body = {"status": "Healthy" if healthy else "Unhealthy", "ready_workers": ready}
        if failure:
            body["reason"] = f"the model does not answer: {failure}"
        self._send(200 if healthy else 503, json.dumps(body).encode())

    def do_POST(self) -> None:
        path, _, query = self.path.partition("?")
        if path != "/invocations":
            return self._error(404, "not_found", NOT_FOUND)
        started, self.status_sent = time.monotonic(), None
        try:
            self._invocations(query)
        finally:  # every answer counts, whichever branch gave it
            if self.status_sent is not None:
                self.server.metrics.answered(self.status_sent, time.monotonic() - started)

    def _invocations(self, query: str) -> None:
        length = self.headers.get("content-length", "")
        if not length.isdigit():
            self.close_connection = True
            return self._error(411, "length_required", "send the body with a Content-Length")
        length = int(length)
        if length > self.server.settings.max_request_bytes:
            self.close_connection = True  # the unread body must not reach the next request
            return self._error(413, "request_too_large", f"body of {length} bytes is over "
                               f"{self.server.settings.max_request_bytes}; send fewer images")
        body = BodyReader(self.rfile, length)
        if not self.server.in_flight.acquire(blocking=False):
            body.discard()  # read, not kept: the client gets the answer instead of a reset
            return self._error(503, "server_busy", f"{self.server.max_in_flight} requests "
                               "are already in flight (the model server's job queue and "
                               "batches are full); retry with backoff")
        try:
            self._forward(body, length, query)
        finally:
            self.server.in_flight.release()

    def _forward(self, body: BodyReader, length: int, query: str) -> None:
        # Content-Type spelled as the handler looks it up (its lookup is case-sensitive).
        headers = {("Content-Type" if k.lower() == "content-type" else k): v
                   for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(length)
        target = f"/predictions/{self.server.model}" + (f"?{query}" if query else "")
        conn = http.client.HTTPConnection("127.0.0.1", self.server.mms.settings.port,
                                          timeout=self.server.timeout_s, blocksize=64 * 1024)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.request("POST", target, body=body, headers=headers)
            resp = conn.getresponse()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            answer = resp.read()
            if resp.status == 200:
                self.server.health.succeeded()
            else:  # MMS's own {"code", "type", "message"} or empty body: the contract's
                answer, out = self._as_contract(resp.status, answer), [("Content-Type", JSON)]
            self._send(resp.status, answer, out)
        except (OSError, http.client.HTTPException) as exc:
            self.close_connection = True  # the body may be only partly read
            self._error(503, "model_unavailable", f"the model server did not answer: {exc}")
        finally:
            conn.close()

    @staticmethod
    def _as_contract(status: int, answer: bytes) -> bytes:
        try:
            parsed = json.loads(answer) if answer else None
        except ValueError:
            parsed = {"message": answer[:300].decode("utf-8", "replace")}
        return json.dumps(contract_error(status, parsed)).encode()

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps(error_body(code, message)).encode())

    def _send(self, status: int, body: bytes, headers=(("Content-Type", JSON),)):
        self.status_sent = status
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code="-", size="-") -> None:  # stderr -> CloudWatch; no pings
        if not self.path.startswith(("/ping", "/metrics")):
            super().log_request(code, size)
