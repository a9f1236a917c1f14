"""One CloudWatch Embedded Metric Format (EMF) line per handler batch, on the worker's stdout.

The handler is the only place that sees a batch: how many requests MMS aggregated, how many
images they held, which images failed with which code, how long the model ran. It prints
one JSON object per batch (:func:`batch_record`) as one line; MMS copies the worker's
stdout into its log, line by line, behind its own prefix
(``2026-01-01T00:00:00,000 [INFO ] W-9000-model-stdout ...WorkerLifeCycle - {...}``).
``frame_infer.serving`` reads that log: it writes the bare JSON object to the container's
stdout (a log event is EMF only when it is nothing but the JSON object) and feeds the same
figures to its Prometheus metrics.

Contract (docs/API.md, "Metrics"): namespace ``FrameInfer``, one dimension set
``[["EndpointName"]]`` whose value is ``$FRAME_INFER_ENDPOINT_NAME`` (``local`` when unset),
metrics ``Images``, ``ImageErrors``, ``Requests`` (Count) and ``InferenceLatency``
(Milliseconds). Further members are plain log properties CloudWatch keeps but does not turn
into metrics: ``RequestImages`` (images of each request, in batch order),
``ImageErrorCodes`` (per-image error code -> count) and ``RequestStatuses`` (HTTP status
the handler gave each request -> count). This module imports nothing from ``frame_infer``.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Iterable, Mapping, TextIO

NAMESPACE = "FrameInfer"
ENDPOINT_ENV = "FRAME_INFER_ENDPOINT_NAME"
LOCAL_ENDPOINT = "local"
METRICS = (("Images", "Count"), ("ImageErrors", "Count"), ("Requests", "Count"),
           ("InferenceLatency", "Milliseconds"))
"""(name, CloudWatch unit) of every metric in a batch record, in this order."""


def endpoint_name(environ: Mapping[str, str]) -> str:
    """The ``EndpointName`` dimension: ``$FRAME_INFER_ENDPOINT_NAME``, else ``local``."""
    return environ.get(ENDPOINT_ENV, "").strip() or LOCAL_ENDPOINT


def batch_record(endpoint: str, statuses: Iterable[int], request_images: Iterable[int],
                 error_codes: Iterable[str], inference_ms: float,
                 timestamp_ms: int | None = None) -> dict:
    """The EMF document of one handler batch.

    ``statuses`` and ``request_images`` have one entry per request of the batch (a request
    refused as a whole answered 0 images); ``error_codes`` one entry per image answered
    with an error instead of a prediction. ``Images`` counts every image answered,
    predictions and per-image errors alike; ``ImageErrors`` the latter.
    """
    statuses, request_images = list(statuses), [int(n) for n in request_images]
    codes = Counter(error_codes)
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["EndpointName"]],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in METRICS]}]},
        "EndpointName": endpoint,
        "Images": sum(request_images),
        "ImageErrors": sum(codes.values()),
        "Requests": len(statuses),
        "InferenceLatency": round(float(inference_ms), 3),
        "RequestImages": request_images,
        "ImageErrorCodes": dict(sorted(codes.items())),
        "RequestStatuses": {str(s): n for s, n in sorted(Counter(statuses).items())},
    }


def emit(record: dict, stream: TextIO | None = None) -> None:
    """Print ``record`` as one JSON line and flush: the worker's stdout is a pipe to MMS,
    block-buffered, and a record must reach the log while its batch is news."""
    stream = stream or sys.stdout
    stream.write(json.dumps(record, separators=(",", ":")) + "\n")
    stream.flush()
