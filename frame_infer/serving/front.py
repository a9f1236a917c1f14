"""The HTTP front before MMS, for ``frame-infer serve`` and the SageMaker container alike.

MMS listens on loopback ports only the front knows; clients reach the front. What it adds
to raw MMS, each for a fault raw MMS has (docs/API.md, README "Known limits"):

- **Bodies are bounded before Java holds them.** A body is read whole by the front first
  (into memory while the front's body budget, :attr:`FrontSettings.memory_bytes`, has room,
  else into a temp file), and only then takes one of the slots MMS can hold (its job queue
  plus a batch per worker): slow uploads hold no slot, and at most that many bodies are in
  Java at once, so Netty's direct memory and the heap stay bounded however many clients
  send (raw MMS: 300 concurrent 6.4 MB uploads ran it out of direct memory). A body
  silent for ``body_timeout_s`` is dropped. A request that finds every slot taken gets 503
  ``server_busy`` at once, naming the full queue.
- **Framing is validated** (``framing.py``): multipart faults MMS turns into a raw Java 500
  or a silently dropped part are 400s.
- **Every answer of its own, and every MMS error, is in the contract's shape**
  ``{"error": {"code", "message"}}`` (404, 405, 411, 413, 503; MMS's bodies through
  ``wire.contract_error``), a wrong model name lists the served one, and MMS's "No worker
  is available" with a READY worker is said as what it is: a full queue.
- **``GET /ping`` means "the model answers"** (:class:`Health`): MMS's own ``/ping`` says
  200 with no live worker, and a worker can stay READY with no process behind it.
- **The front supervises MMS** (:class:`Health`): a probe that fails, or a worker MMS keeps
  failing to reconnect to, makes it restart MMS through the lifecycle
  (:meth:`~.lifecycle.ServedModel.restart`); ``/ping`` says Unhealthy until a probe passes.

Routes: ``POST /predictions/{model}`` and ``POST /invocations`` (SageMaker's name), both
forwarded to ``/predictions/{model}`` with Content-Type and query; ``GET /ping``,
``GET /metrics`` (Prometheus, :mod:`.metrics`),
``GET /execution-parameters`` (Batch Transform's handshake). MMS's management API is
never proxied.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import mmap
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from model_handler.wire import JSON, PNG, contract_error, error_body

from . import framing
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, ServingMetrics
from .mms import DEFAULT_MAX_REQUEST_BYTES, response_timeout_minutes

if TYPE_CHECKING:
    from .lifecycle import ServedModel

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "expect",
              "proxy-connection", "te", "trailer", "upgrade"}

MIB = 1024 * 1024
BATCH_TRANSFORM_MAX_PAYLOAD_MB = 6  # the real-time limit: clients pack shards the same way


@dataclass(frozen=True)
class FrontSettings:
    """The front's own settings (MMS's are :class:`~.mms.ServerSettings`)."""

    host: str = "127.0.0.1"
    """Address the front listens on (the container: 0.0.0.0)."""
    port: int = 8080
    """The port clients use; MMS's own ports are loopback and internal."""
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Larger bodies get 413 ``request_too_large`` before a byte of them is read."""
    batch_size: int = 8
    workers: int = 1
    """The model's MMS batch and workers: with MMS's job queue they say how many requests
    MMS can hold, so how many the front forwards at once."""
    response_timeout_s: int = 120
    """The worker timeout; the front waits for an answer that long, in whole minutes (as
    MMS counts it), plus 5 s."""
    memory_bytes: int = 256 * MIB
    """Request bodies the front holds in memory at once, in all; the next ones are written
    to a temp file in the run dir until they are forwarded."""
    body_timeout_s: float = 60.0
    """A connection silent this long (in a body, or idle between requests) is closed."""
    probe_interval_s: float = 10.0
    """Idle this long (no request answered 200): the front sends the model a probe."""
    probe_timeout_s: float = 20.0
    """A probe unanswered this long, with nothing else answered meanwhile, is a failure."""
    supervise: bool = True
    """Restart MMS when the model does not answer (:class:`Health`)."""
    restart_after_s: float = 6.0
    """After MMS logged a worker's death: no answer this long (or a second "Retry worker",
    MMS failing to reconnect to it) and MMS is restarted."""


def execution_parameters(settings) -> dict:
    """Batch Transform's ``GET /execution-parameters`` answer, asked once per instance
    before the first ``/invocations`` (a job's own settings override it). ``settings``:
    anything with ``workers`` and ``max_request_bytes`` (the container's, the front's).

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


ROUTES = {"/ping": "GET", "/metrics": "GET", "/execution-parameters": "GET",
          "/invocations": "POST"}
PREDICTIONS = "/predictions/"
NOT_FOUND = ("only GET /ping, GET /metrics, GET /execution-parameters, "
             "POST /predictions/{model} and POST /invocations exist")
# A 1x1 gray PNG: any image model accepts it (the service resizes it to the input).
PROBE_PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
                          "0000000a49444154789c6360000000020001e221bc330000000049454e44ae426082")


class Health:
    """Whether the model answers, and MMS restarted when it does not.

    ``run`` (a thread) checks twice a second. Evidence that the model answers: any 200
    through the front, or a probe's. A probe is sent when nothing succeeded for
    ``probe_interval_s``; one unanswered within ``probe_timeout_s`` while nothing else
    succeeded either, or answered with a 5xx other than a full queue, is a failure. When
    MMS logs that a worker died ("Retry worker", counted by the metrics reader), a probe
    goes at once, and no success within ``restart_after_s`` (or a second retry logged: MMS
    failed to reconnect to the worker) is a failure too. A failure makes ``/ping`` 503 and, with ``supervise``,
    restarts MMS (:meth:`ServedModel.restart`); any later success clears it. A full queue
    (503 from MMS) is load, not breakage: it changes nothing.
    """

    def __init__(self, served: ServedModel, settings: FrontSettings,
                 metrics: ServingMetrics | None = None):
        self._clock = time.monotonic
        self.served, self.settings = served, settings
        self.model = served.name
        self.metrics = metrics or ServingMetrics()
        self.last_ok = self._clock()  # registration just saw the worker READY
        self.failure: str | None = None
        self.restarting = False
        self.probes = 0
        self.restarts: list[float] = []
        """Seconds each restart of MMS took (failure seen -> model READY again)."""
        self._retries_seen = self.metrics.worker_retries
        self._suspect_since: float | None = None
        self._suspect_retries = 0
        self._prober: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.served.server.settings.port

    def succeeded(self) -> None:
        self.last_ok, self.failure = self._clock(), None

    def worker_died(self) -> None:
        """Evidence from an answer (500 "Worker died."): check soon."""
        if self._suspect_since is None:
            self._suspect_since = self._clock()

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any fault
                print(f"frame-infer front: health check failed: {exc}", file=sys.stderr,
                      flush=True)

    def check(self) -> None:
        """One round: notice worker deaths, probe when idle or suspect, recover."""
        now = self._clock()
        retries = self.metrics.worker_retries
        if retries != self._retries_seen:
            self._suspect_retries += retries - self._retries_seen
            self._retries_seen = retries
            if self._suspect_since is None:
                self._suspect_since = now
        if self._suspect_since is not None:
            if self.last_ok > self._suspect_since:  # answered since: MMS restarted it
                self._suspect_since, self._suspect_retries = None, 0
                return
            waited = now - self._suspect_since
            if self._suspect_retries >= 2:  # a reconnect failed: not a worker MMS restarts
                return self.recover(f"a worker died and MMS failed {self._suspect_retries} "
                                    f"times to reconnect to it in {waited:.1f}s")
            if waited >= self.settings.restart_after_s:
                return self.recover(f"a worker died and nothing was answered for "
                                    f"{waited:.1f}s")
            # A probe in its own thread: this loop goes on counting MMS's retries meanwhile.
            if self._prober is None or not self._prober.is_alive():
                self._prober = threading.Thread(
                    target=self.probe, args=(self.settings.restart_after_s,), daemon=True)
                self._prober.start()
            return
        if now - self.last_ok >= self.settings.probe_interval_s:
            self.probe()
            if self.failure is not None:
                self.recover(self.failure)

    def probe(self, timeout: float | None = None) -> None:
        """Send the model one tiny image and record the outcome."""
        timeout = self.settings.probe_timeout_s if timeout is None else timeout
        self.probes += 1
        self.metrics.health_probes.inc()
        began = self._clock()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("POST", f"/predictions/{self.model}", body=PROBE_PNG,
                         headers={"Content-Type": PNG})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            if self.last_ok < began:  # others were answered meanwhile: busy, not broken
                self.failure = f"a probe got no answer within {timeout:g}s ({exc})"
            return
        finally:
            conn.close()
        if resp.status == 200:
            self.succeeded()
        elif resp.status != 503 or b"queue" not in body:
            self.failure = f"a probe got HTTP {resp.status}: {body[:200]!r}"

    def recover(self, why: str) -> None:
        """Restart MMS (with ``supervise``); the failure stays until a probe passes."""
        self.failure = self.failure or f"the model does not answer: {why}"
        self._suspect_since, self._suspect_retries = None, 0
        if not self.settings.supervise or self.served.stopping.is_set():
            return
        began = self._clock()
        print(f"frame-infer front: {why}; restarting MMS", file=sys.stderr, flush=True)
        self.restarting = True
        try:
            self.served.restart(grace_s=0)  # SIGKILL: a Java that is not serving keeps nothing
        except Exception as exc:  # noqa: BLE001 - /ping stays Unhealthy; next round retries
            self.failure = f"restarting MMS failed: {exc}"
            print(f"frame-infer front: {self.failure}", file=sys.stderr, flush=True)
            return
        finally:
            self.restarting = False
        self._retries_seen = self.metrics.worker_retries
        self.probe()
        took = self._clock() - began
        self.restarts.append(took)
        print(f"frame-infer front: MMS restarted in {took:.1f}s"
              + (f"; still failing: {self.failure}" if self.failure else ""),
              file=sys.stderr, flush=True)


class BodyBudget:
    """The request-body bytes the front holds in memory at once, across connections."""

    def __init__(self, capacity: int):
        self.capacity, self._free = capacity, capacity
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self._free:
                return False
            self._free -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self._free += size


class Body:
    """One whole request body: in memory when the budget has room, else in a temp file."""

    def __init__(self, length: int, budget: BodyBudget, spool_dir: Path):
        self.length, self._budget = length, budget
        self._memory = bytearray(length) if budget.take(length) else None
        self._file = None if self._memory is not None else tempfile.TemporaryFile(
            dir=spool_dir, prefix="body-")
        self._map: mmap.mmap | None = None

    @property
    def in_memory(self) -> bool:
        return self._memory is not None

    def receive(self, stream) -> None:
        """Read exactly ``length`` bytes from ``stream``; ConnectionError when it ends first."""
        got = 0
        if self._memory is not None:
            view = memoryview(self._memory)
            while got < self.length:
                n = stream.readinto(view[got:got + 256 * 1024])
                if not n:
                    break
                got += n
            view.release()
        else:
            while got < self.length:
                chunk = stream.read(min(256 * 1024, self.length - got))
                if not chunk:
                    break
                self._file.write(chunk)
                got += len(chunk)
        if got < self.length:
            raise ConnectionError(f"the client sent {self.length - got} bytes less than its "
                                  "Content-Length")

    def view(self):
        """The bytes, to read (a bytearray, or the temp file mapped)."""
        if self._memory is not None:
            return self._memory
        if self._map is None:
            self._file.flush()
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) \
                if self.length else b""
        return self._map

    def source(self):
        """What http.client sends: the bytes, or the file from its start."""
        if self._memory is not None:
            return self._memory
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._memory is not None:
            self._memory = None
            self._budget.give(self.length)
        if self._map is not None and not isinstance(self._map, bytes):
            self._map.close()
        if self._file is not None:
            self._file.close()


class Front(ThreadingHTTPServer):
    """The front of ``served`` (its MMS, model and restarts) on ``settings.host:port``;
    ``/metrics`` from ``metrics`` (a new :class:`ServingMetrics` when None)."""

    daemon_threads, request_queue_size = True, 128

    def __init__(self, served: ServedModel, settings: FrontSettings,
                 metrics: ServingMetrics | None = None):
        self.served, self.model, self.settings = served, served.name, settings
        self.metrics = metrics or ServingMetrics()
        mms = served.server
        self.max_in_flight = mms.job_queue_size + settings.batch_size * settings.workers
        self.in_flight = threading.BoundedSemaphore(self.max_in_flight)
        self.bodies = BodyBudget(settings.memory_bytes)
        self.spool_dir = mms.run_dir / "front"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        # MMS gives up on a batch after whole minutes (it rounds up); then 5 s for the answer.
        self.timeout_s = response_timeout_minutes(settings.response_timeout_s) * 60 + 5
        self.health = Health(served, settings, self.metrics)
        super().__init__((settings.host, settings.port), FrontHandler)

    @property
    def mms(self):
        return self.served.server

    def ready_workers(self) -> int:
        try:  # MMS's own /ping says Healthy even with no live worker
            workers = self.mms.model_status(self.model).get("workers", [])
        except (OSError, ValueError):
            workers = []
        return sum(w.get("status") == "READY" for w in workers)


class FrontHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests; whole bodies go to MMS unchanged."""

    protocol_version = "HTTP/1.1"  # keep-alive: SageMaker reuses connections
    disable_nagle_algorithm = True  # Nagle + delayed ACK would add ~40 ms per answer
    server: Front

    def setup(self) -> None:
        self.timeout = self.server.settings.body_timeout_s  # slowloris: silent -> closed
        super().setup()

    # -- routing -------------------------------------------------------------------------
    def _route(self) -> tuple[str | None, str]:
        """(the method the path takes, or None for an unknown path; the query)."""
        path, _, query = self.path.partition("?")
        if path.startswith(PREDICTIONS):
            return "POST", query
        return ROUTES.get(path), query

    def _not_allowed(self, allowed: str | None) -> None:
        self.close_connection = True  # an unread body must not reach the next request
        if allowed is None:
            return self._error(404, "not_found", NOT_FOUND)
        self._error(405, "method_not_allowed", f"{self.command} {self.path.split('?')[0]} "
                    f"is not served; use {allowed}", extra=(("Allow", allowed),))

    def do_GET(self) -> None:
        allowed, _ = self._route()
        path = self.path.split("?")[0]
        if allowed != "GET":
            return self._not_allowed(allowed)
        if path == "/metrics":
            return self._send(200, self.server.metrics.exposition(),
                              (("Content-Type", METRICS_CONTENT_TYPE),))
        if path == "/execution-parameters":
            body = execution_parameters(self.server.settings)
            return self._send(200, json.dumps(body).encode())
        self._ping()

    def _ping(self) -> None:
        health = self.server.health
        ready = self.server.ready_workers()
        failure = health.failure
        if failure and not failure.startswith(("the model", "restarting")):
            failure = f"the model does not answer: {failure}"
        if health.restarting:
            failure = f"MMS is being restarted ({failure or 'the model stopped answering'})"
        healthy = ready and failure is None
        body = {"status": "Healthy" if healthy else "Unhealthy", "ready_workers": ready}
        if failure:
            body["reason"] = failure
        self._send(200 if healthy else 503, json.dumps(body).encode())

    def do_POST(self) -> None:
        allowed, query = self._route()
        if allowed != "POST":
            return self._not_allowed(allowed)
        path = self.path.partition("?")[0]
        if path.startswith(PREDICTIONS) and path[len(PREDICTIONS):] != self.server.model:
            self.close_connection = True
            name = path[len(PREDICTIONS):]
            return self._error(404, "model_not_found", f"no model {name!r} is served here; "
                               f"served: {self.server.model} (POST /predictions/"
                               f"{self.server.model})")
        started, self.status_sent = time.monotonic(), None
        try:
            self._invocations(query)
        finally:  # every answer counts, whichever branch gave it
            if self.status_sent is not None:
                self.server.metrics.answered(self.status_sent, time.monotonic() - started)

    def _other(self) -> None:
        self._not_allowed(self._route()[0])

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other

    # -- one inference request -------------------------------------------------------------
    def _invocations(self, query: str) -> None:
        length = self.headers.get("content-length", "")
        limit = self.server.settings.max_request_bytes
        if not length.isdigit():
            self.close_connection = True
            return self._error(411, "length_required", "send the body with a Content-Length")
        length = int(length)
        if length > limit:
            self.close_connection = True  # the unread body must not reach the next request
            return self._error(413, "request_too_large", f"body of {length} bytes is over "
                               f"the server's limit of {limit}; send fewer or smaller images "
                               "per request")
        body = Body(length, self.server.bodies, self.server.spool_dir)
        try:
            try:
                body.receive(self.rfile)
            except OSError:  # cut short or silent past body_timeout_s: nobody to answer
                self.close_connection = True
                return
            problem = framing.multipart_problem(body.view(), self.headers.get("content-type"))
            if problem is not None:
                return self._error(400, *problem)
            if not self.server.in_flight.acquire(blocking=False):
                return self._error(503, "server_busy", self._busy_message())
            try:
                self._forward(body, query)
            finally:
                self.server.in_flight.release()
        finally:
            body.close()

    def _busy_message(self) -> str:
        return (f"the model server's queue is full: {self.server.max_in_flight} requests are "
                f"already in flight (its job queue of {self.server.mms.job_queue_size} plus "
                "a batch per worker); retry with backoff")

    def _forward(self, body: Body, query: str) -> None:
        server = self.server
        if server.health.restarting:
            return self._error(503, "model_unavailable", "the model server is being "
                               "restarted (its model stopped answering); retry shortly")
        # Content-Type spelled as the handler looks it up (its lookup is case-sensitive).
        headers = {("Content-Type" if k.lower() == "content-type" else k): v
                   for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(body.length)
        target = f"/predictions/{server.model}" + (f"?{query}" if query else "")
        conn = http.client.HTTPConnection("127.0.0.1", server.mms.settings.port,
                                          timeout=server.timeout_s, blocksize=256 * 1024)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.request("POST", target, body=body.source(), headers=headers)
            resp = conn.getresponse()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            answer = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            return self._error(503, "model_unavailable", "the model server did not answer"
                               + (" (it is being restarted)" if server.health.restarting
                                  else "") + f": {exc}; retry shortly")
        finally:
            conn.close()
        if resp.status == 200:
            server.health.succeeded()
            if not any(k.lower() == "content-type" for k, _ in out):
                # The handler leaves it out of multi-request batches (an MMS decoder bug,
                # model_handler/service.py); the body is the service's JSON all the same.
                out.append(("Content-Type", JSON))
            return self._send(200, answer, out)
        self._send(resp.status, self._mms_error(resp.status, answer))

    def _mms_error(self, status: int, answer: bytes) -> bytes:
        """A non-200 answer in the contract's shape, with what the front knows of its cause."""
        try:
            parsed = json.loads(answer) if answer else None
        except ValueError:
            parsed = {"message": answer[:300].decode("utf-8", "replace")}
        error = contract_error(status, parsed)
        message = error["error"]["message"]
        if status == 503 and "No worker is available" in message:
            if self.server.ready_workers():  # a live worker: MMS's queue was full
                error = error_body("server_busy", self._busy_message() + f" (MMS: {message})")
            else:
                error = error_body("model_unavailable", "the model has no live worker (MMS "
                                   f"is starting or restarting one); retry shortly (MMS: "
                                   f"{message})")
        elif status == 500 and "Worker died" in message:
            self.server.health.worker_died()
        return json.dumps(error).encode()

    @staticmethod
    def _as_contract(status: int, answer: bytes) -> bytes:
        """``answer`` (MMS's or the service's) as the contract's error body."""
        try:
            parsed = json.loads(answer) if answer else None
        except ValueError:
            parsed = {"message": answer[:300].decode("utf-8", "replace")}
        return json.dumps(contract_error(status, parsed)).encode()

    # -- answers ------------------------------------------------------------------------
    def _error(self, status: int, code: str, message: str, extra=()) -> None:
        self._send(status, json.dumps(error_body(code, message)).encode(),
                   (("Content-Type", JSON), *extra))

    def _send(self, status: int, body: bytes, headers=(("Content-Type", JSON),)):
        self.status_sent = status
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:  # the client went away (its own timeout): nobody to tell
            self.close_connection = True

    def log_request(self, code="-", size="-") -> None:  # stderr -> CloudWatch; no pings
        if not self.path.startswith(("/ping", "/metrics")):
            super().log_request(code, size)


@contextlib.contextmanager
def running_front(served: ServedModel, settings: FrontSettings) -> Iterator[Front]:
    """The front on ``settings.host:port`` before ``served`` (READY, with its metrics
    reader) while the block runs, its health check watching and restarting MMS until MMS
    stops; OSError when it cannot listen. ``frame-infer serve`` and the container both
    run it."""
    front = Front(served, settings, served.metrics)
    listener = threading.Thread(target=front.serve_forever, daemon=True)
    try:
        listener.start()
        threading.Thread(target=front.health.run, args=(served.stopping,), daemon=True).start()
        yield front
    finally:
        if listener.ident is None:  # never listened: shutdown() would wait forever
            front.server_close()
        else:
            shut_down(front)


def shut_down(front: Front) -> None:
    """Stop the front: no new connections; MMS's stop is the lifecycle's."""
    front.shutdown()
    front.server_close()
