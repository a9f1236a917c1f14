"""Prometheus metrics of the serving side, and the MMS log lines most of them come from.

Each figure is measured where it is known, not inferred elsewhere:

- ``frame_infer_requests_total{status}`` and ``frame_infer_request_seconds``: at the HTTP
  edge. The front (``front.py``, before MMS in ``frame-infer serve`` and the container)
  answers every inference request itself (its own 400/404/411/413/503, MMS's answers,
  the model's), so it counts them and times each from the request line to the last byte
  written. Without a front (a bare :class:`~.lifecycle.ServedModel`, ``count_access``),
  MMS's access-log line of each ``/predictions/`` request gives the status and MMS's own
  duration (milliseconds since the request arrived, ``Session.toString`` in MMS 1.1.11).
- ``frame_infer_request_images``, ``frame_infer_image_errors_total{code}``,
  ``frame_infer_batch_images`` and ``frame_infer_inference_seconds``: in the handler, the
  only place that sees a batch. It prints one EMF line per batch (``model_handler.emf``)
  that MMS copies into its log; :class:`MMSLogReader` reads it. The front does not parse
  the answers it relays: it would decode up to 6.5 MB of JSON per request for figures the
  handler already counted, and MMS's worker processes are out of its sight anyway.
- ``frame_infer_worker_restarts_total``: MMS logs ``Retry worker: ID in N seconds.`` each
  time it starts a worker again after its process died (checked on MMS 1.1.11: one line
  per SIGKILL of the handler). The management API cannot count them: it lists only the
  current workers, and a restarted one keeps its start time.
- ``frame_infer_health_probes_total``: the front's own probes of an idle model. They are
  real batches, so the handler's figures include them; this says how many there were.

The same reader writes each EMF record to the container's stdout as the bare JSON object
(CloudWatch extracts metrics only from a log event that is nothing but the JSON object)
in place of MMS's prefixed line; every other line passes unchanged.
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import BinaryIO

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from model_handler.emf import NAMESPACE

IMAGE_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""Prometheus text format 0.0.4: what every Prometheus server version scrapes."""
# MMS's console layout: "%d{ISO8601} [%-5p] %t %c - %m%n" (its log4j2.xml).
MMS_LINE = re.compile(rb"^\S+ \[(\w+)\s*\] (\S+) (\S+) - (.*?)\r?\n?$")
ACCESS = re.compile(rb'"(\w+) (\S+) HTTP/[\d.]+" (\d{3}) (\d+)$')
MAX_LINE = 1024 * 1024  # a longer unterminated line is passed on as it is


class ServingMetrics:
    """The metrics of one server, in a registry of their own (several may run in a test)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("frame_infer_requests", "Inference requests answered, by "
                                "HTTP status", ["status"], registry=r)
        self.request_seconds = Histogram(
            "frame_infer_request_seconds", "End-to-end time of an inference request",
            buckets=SECONDS_BUCKETS, registry=r)
        self.request_images = Histogram(
            "frame_infer_request_images", "Images the handler answered per request "
            "(predictions and per-image errors)", buckets=IMAGE_BUCKETS, registry=r)
        self.image_errors = Counter("frame_infer_image_errors", "Images answered with an "
                                    "error instead of a prediction, by code", ["code"],
                                    registry=r)
        self.batch_images = Histogram("frame_infer_batch_images", "Images per handler batch",
                                      buckets=IMAGE_BUCKETS, registry=r)
        self.inference_seconds = Histogram(
            "frame_infer_inference_seconds", "Model time per handler batch",
            buckets=SECONDS_BUCKETS, registry=r)
        self.worker_restarts = Counter("frame_infer_worker_restarts", "Times MMS restarted "
                                       "a worker whose process died", registry=r)
        self.worker_retries = 0
        """The same count as ``worker_restarts``, as a plain number the front's health
        check reads (a retry MMS keeps repeating is a worker it cannot reach)."""
        self.health_probes = Counter("frame_infer_health_probes", "Probes the container "
                                     "front sent an idle model (their batches are counted "
                                     "in the handler's figures)", registry=r)

    def answered(self, status: int, seconds: float) -> None:
        """One inference request answered with ``status`` after ``seconds``."""
        self.requests.labels(str(status)).inc()
        self.request_seconds.observe(seconds)

    def batch(self, record: dict) -> None:
        """The figures of one handler batch (its EMF record, ``model_handler.emf``)."""
        for images in record.get("RequestImages", []):
            self.request_images.observe(images)
        for code, count in record.get("ImageErrorCodes", {}).items():
            self.image_errors.labels(code).inc(count)
        self.batch_images.observe(record["Images"])
        self.inference_seconds.observe(record["InferenceLatency"] / 1000)

    def exposition(self) -> bytes:
        """The Prometheus text of every metric, as served at ``/metrics``."""
        return generate_latest(self.registry)


def batch_record(message: bytes) -> dict | None:
    """The handler's EMF record in a log message, or None when it is something else."""
    if not message.startswith(b"{"):
        return None
    try:
        record = json.loads(message)
        directive = record["_aws"]["CloudWatchMetrics"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    ok = directive.get("Namespace") == NAMESPACE and isinstance(record.get("Images"), int)
    return record if ok else None


class MMSLogReader:
    """Turns MMS console lines into metrics; ``line`` says what to print for each.

    ``count_access``: count requests from MMS's access log (``frame-infer serve``, where no
    front sees them); the container's front counts its own answers instead.
    """

    def __init__(self, metrics: ServingMetrics, count_access: bool = False):
        self.metrics, self.count_access = metrics, count_access

    def line(self, raw: bytes) -> bytes:
        """Record what ``raw`` (one line of MMS's console) says; the bytes to print for it:
        the bare EMF object for a batch record, else ``raw`` unchanged."""
        found = MMS_LINE.match(raw)
        if not found:
            return raw
        _, thread, logger, message = found.groups()
        if thread.endswith(b"-stdout") and (record := batch_record(message)) is not None:
            self.metrics.batch(record)
            return message + b"\n"
        if message.startswith(b"Retry worker: "):
            self.metrics.worker_restarts.inc()
            self.metrics.worker_retries += 1
        elif self.count_access and logger == b"ACCESS_LOG":
            access = ACCESS.search(message)
            if access and access[1] == b"POST" and access[2].startswith(b"/predictions/"):
                self.metrics.answered(int(access[3]), int(access[4]) / 1000)
        return raw


def follow(path: Path, reader: MMSLogReader, stop: threading.Event,
           out: BinaryIO | None = None) -> None:
    """Read MMS's console log at ``path`` as it grows until ``stop``; each whole line goes
    through ``reader`` and, with ``out``, what it returns is written there. (SageMaker
    sends the container's stdout to CloudWatch Logs, never files inside it.)"""
    partial = b""
    with open(path, "rb") as source:
        while not stop.is_set():
            lines = source.readlines(256 * 1024)
            if lines:
                lines[0] = partial + lines[0]
                partial = b""
                if not lines[-1].endswith(b"\n") and len(lines[-1]) < MAX_LINE:
                    partial = lines.pop()  # Java is still writing it
                shown = [reader.line(line) for line in lines]
                if out is not None:
                    out.writelines(shown)
                    out.flush()
            stop.wait(0.0 if lines else 0.2)


def expose(port: int, metrics: ServingMetrics):
    """Serve ``metrics`` at ``http://127.0.0.1:PORT/metrics`` (loopback only: the figures
    are for this machine); returns the server, which the caller shuts down."""
    from prometheus_client import start_http_server

    server, _ = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    return server
