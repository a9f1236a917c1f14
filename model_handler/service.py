"""MMS custom service: initialize -> preprocess -> inference -> postprocess.

MMS calls ``handle(data, context)`` once at load with ``data=None`` (we initialize:
any failure there fails the worker's registration loudly), then with ``data`` = one
dict per request of the MMS batch. All images of all requests become one batched
array, run in chunks with one synchronisation, and every request is answered at its
own index with its own status. ``handle`` never raises (MMS 1.1.11: raising
with more than one request in a batch kills the worker; docs/API.md).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import codecs, emf
from .codecs import S3Ref
from .config import ModelConfig, load_config
from .engine import Engine, MXNetEngine, OnnxRuntimeEngine
from .errors import PHRASES, ImageError, RequestError
from .imaging import OpenedImage, PixelBudget, finish_image, normalise, open_image
from .s3fetch import RequestAllowance, S3Fetcher, S3Late
from .wire import INVALID_OUTPUT, S3_SLOW

logger = logging.getLogger(__name__)


@dataclass
class RequestPlan:
    """One request of the MMS batch: its image ids and where each result comes from."""

    ids: list[str] = field(default_factory=list)
    slots: list[int | ImageError] = field(default_factory=list)  # batch row or error
    error: RequestError | None = None
    pixels: PixelBudget | None = None
    """The request's ``max_request_pixels``, spent by its body's images and S3 objects."""


@dataclass
class PreparedBatch:
    batch: np.ndarray  # (N, C, H, W) float32: every good image of every request
    plans: list[RequestPlan]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def request_types(context, idx: int) -> tuple[str | None, dict[str, str]]:
    """The request's Content-Type (any spelling of the header) and each field's own type.

    MMS mixes both in one map: HTTP headers as strings, and per field (multipart part,
    query parameter, raw body) a dict ``{"content-type": ...}``.
    """
    content_type, part_types = None, {}
    for name, value in (context.get_all_request_header(idx) or {}).items():
        if isinstance(value, dict):
            part_types[name] = value.get("content-type") or ""
        elif isinstance(name, str) and name.lower() == "content-type":
            content_type = value
    return content_type, part_types


class ImageClassifierService:
    """Holds what lives as long as the worker: config, engine, pools. No request state."""

    def __init__(self):
        self.config: ModelConfig | None = None
        self.engine: Engine | None = None
        self.model_name = "model"
        self.endpoint = emf.LOCAL_ENDPOINT  # the EMF records' EndpointName
        self._fetcher: S3Fetcher | None = None
        self._decode_pool: ThreadPoolExecutor | None = None

    @property
    def initialized(self) -> bool:
        return self.engine is not None

    def initialize(self, context) -> None:
        props = context.system_properties
        model_dir = Path(props.get("model_dir") or ".")
        self.model_name = getattr(context, "model_name", None) or self.model_name
        cfg = load_config(model_dir)
        threads = cfg.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count()
        model_path = str(model_dir / cfg.model_file)
        if cfg.engine == "onnxruntime":
            engine: Engine = OnnxRuntimeEngine(model_path, cfg.input_name, cfg.max_batch_size,
                                               threads=threads)
        else:
            engine = MXNetEngine(model_path, cfg.input_name, cfg.input_shape,
                                 cfg.max_batch_size, context=cfg.context,
                                 gpu_id=props.get("gpu_id"))
        # One forward now: proves the model runs and that labels match its outputs.
        probe = engine.forward(np.zeros((1, *cfg.input_shape), dtype=np.float32))
        if probe.shape[1] != len(cfg.labels):
            raise ValueError(f"{model_path} has {probe.shape[1]} outputs but the config lists "
                             f"{len(cfg.labels)} labels; give one label per output: "
                             "repackage with a fixed labels file (package --labels), or fix "
                             "FRAME_INFER_LABELS if it is set")
        self.config = cfg
        self.engine = engine
        self.endpoint = emf.endpoint_name(os.environ)
        self._fetcher = S3Fetcher.from_config(cfg)
        self._decode_pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
        logger.info("model %s ready: engine=%s context=%s input=%s%s max_batch=%d "
                    "mms_batch_size=%s threads=%s", self.model_name, engine.name,
                    engine.context_name, cfg.input_name, cfg.input_shape, cfg.max_batch_size,
                    props.get("batch_size"), threads)

    # -- preprocess --------------------------------------------------------------------
    def preprocess(self, data: list[dict], context) -> PreparedBatch:
        cfg = self.config
        plans: list[RequestPlan] = []
        sources: list[codecs.Source] = []
        for idx, request in enumerate(data):
            plan = RequestPlan(pixels=PixelBudget(cfg.max_request_pixels))
            plans.append(plan)
            try:
                content_type, part_types = request_types(context, idx)
                items = codecs.decode_request(request or {}, content_type, cfg, part_types)
            except Exception as exc:  # noqa: BLE001 - every request gets an answer
                plan.error = codecs.request_error_from(exc)
                continue
            for image_id, source in items:
                plan.ids.append(image_id)
                plan.slots.append(len(sources))
                sources.append(source)

        resolved = self._resolve_s3(sources, plans)
        pixels = self._decode_all(self._open_all(resolved, plans))
        good = [i for i, p in enumerate(pixels) if isinstance(p, np.ndarray)]
        batch = np.empty((len(good), *cfg.input_shape), dtype=np.float32)
        row_of, pixel_rows = {}, []
        for row, i in enumerate(good):
            batch[row] = pixels[i]
            row_of[i] = row
            if pixels[i].dtype == np.uint8:
                pixel_rows.append(row)
        normalise(batch, np.asarray(pixel_rows, dtype=np.intp), cfg)
        for plan in plans:
            plan.slots = [row_of[s] if s in row_of else pixels[s] for s in plan.slots]
        return PreparedBatch(batch, plans)

    def _resolve_s3(self, sources: list, plans: list[RequestPlan]) -> list:
        """Fetch the ``s3`` references, each request spending its own allowance.

        The batch is answered only when every fetch is done or late, so requests without
        references wait for them: while the batch holds such requests, fetches get
        ``s3_shared_wait_s`` (not the whole ``s3_fetch_deadline_s``), and a request
        whose fetches are not all done by then is answered 503 ``s3_slow`` as a whole
        (retry: a batch of its own gets the whole deadline)."""
        cfg = self.config
        owner_of = {}
        for plan in plans:
            allowance = RequestAllowance(cfg.s3_max_bytes_per_request, plan.pixels)
            owner_of.update((slot, (plan, allowance)) for slot in plan.slots
                            if isinstance(sources[slot], S3Ref))
        if not owner_of:
            return sources
        shared = any(plan.error is None and plan.slots and
                     not any(slot in owner_of for slot in plan.slots) for plan in plans)
        refs = sorted(owner_of)
        fetched = self._fetcher.fetch_all([sources[i] for i in refs],
                                          [owner_of[i][1] for i in refs],
                                          wait_s=cfg.s3_shared_wait_s if shared else None)
        resolved = list(sources)
        for i, result in zip(refs, fetched):
            resolved[i] = result
            plan = owner_of[i][0]
            if shared and isinstance(result, S3Late) and plan.error is None:
                others = sum(1 for p in plans if p is not plan)
                plan.error = RequestError(503, S3_SLOW, (
                    f"{sources[i].uri} was not fetched within {cfg.s3_shared_wait_s:g} s "
                    f"(s3_shared_wait_s) while {others} other request(s) of the same batch "
                    "waited for it; retry the request (S3 answered slowly or not at all)"))
        return resolved

    def _open_all(self, sources: list, plans: list[RequestPlan]) -> list:
        """Read the headers of the encoded images, each request spending its own
        ``max_request_pixels`` budget in its order; nothing is decoded yet."""
        opened = list(sources)
        for plan in plans:
            budget = plan.pixels or PixelBudget(self.config.max_request_pixels)
            for slot in plan.slots:
                if isinstance(sources[slot], (bytes, bytearray)):
                    try:
                        opened[slot] = open_image(bytes(sources[slot]), self.config, budget)
                    except ImageError as exc:
                        opened[slot] = exc
        return opened

    def _decode_one(self, source):
        if isinstance(source, OpenedImage):
            try:
                return finish_image(source, self.config)
            except ImageError as exc:
                return exc
        return source  # an ndarray from .npy, or an ImageError

    def _decode_all(self, sources: list) -> list:
        encoded = sum(isinstance(s, OpenedImage) for s in sources)
        if encoded < 4:
            return [self._decode_one(s) for s in sources]
        return list(self._decode_pool.map(self._decode_one, sources))

    # -- inference ---------------------------------------------------------------------
    def inference(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, len(self.config.labels)), dtype=np.float32)
        return self.engine.forward(batch)

    # -- postprocess -------------------------------------------------------------------
    def postprocess(self, prepared: PreparedBatch, outputs: np.ndarray, context) -> list[str]:
        cfg = self.config
        probs = softmax(outputs.astype(np.float64)) if cfg.softmax else outputs
        model_info = {"name": self.model_name, "engine": self.engine.name,
                      "context": self.engine.context_name,
                      # What a client needs to shrink images exactly as preprocess does.
                      "input": {"width": cfg.width, "height": cfg.height,
                                "color_mode": cfg.color_mode, "faces": cfg.faces}}
        responses = []
        for idx, plan in enumerate(prepared.plans):
            if plan.error is not None:
                responses.append(self._respond(context, idx, plan.error.status,
                                               plan.error.body(), len(prepared.plans)))
                continue
            predictions = []
            for image_id, slot in zip(plan.ids, plan.slots):
                if isinstance(slot, ImageError):
                    predictions.append(slot.entry(image_id))
                    continue
                row = probs[slot]
                if not np.isfinite(row).all():  # JSON has no NaN/Inf; never emit them
                    predictions.append(non_finite(image_id, outputs[slot]))
                    continue
                top = int(row.argmax())
                predictions.append({
                    "id": image_id, "label": cfg.labels[top], "score": float(row[top]),
                    "probabilities": {label: float(p) for label, p in zip(cfg.labels, row)}})
            responses.append(self._respond(context, idx, 200,
                                           {"predictions": predictions, "model": model_info},
                                           len(prepared.plans)))
        return responses

    @staticmethod
    def _respond(context, idx: int, status: int, body: dict, batch_requests: int) -> str:
        context.set_response_status(status, PHRASES.get(status, ""), idx)
        # Content-Type travels in the response header map, which MMS 1.1.11's Java decoder
        # reads without checking for a partial socket read: when a multi-request batch's
        # answer is split inside a later request's map ("Invalid message size: -3"), the
        # worker is dropped. A single request's map sits in the message's first bytes,
        # inside the first read, so only then is the header set. See README, "Known limits".
        if batch_requests == 1:
            context.set_response_content_type(idx, codecs.JSON)
        return json.dumps(body, allow_nan=False)  # a NaN that slipped through: a 500, not
        # an answer that is not JSON

    # -- the MMS entry -------------------------------------------------------------------
    def handle(self, data: list[dict], context) -> list[str]:
        """Answer every request of the batch; never raises. Prints the batch's EMF record."""
        try:
            prepared = self.preprocess(data, context)
            started = time.perf_counter()
            outputs = self.inference(prepared.batch)
            inference_ms = (time.perf_counter() - started) * 1000
            # The batch's record (no response header for it: see _respond).
            logger.info("batch: requests=%d images=%d", len(data), len(prepared.batch))
            responses = self.postprocess(prepared, outputs, context)
        except Exception as exc:  # noqa: BLE001 - the one boundary that maps faults to 500
            logger.exception("inference failed for a batch of %d requests", len(data))
            error = RequestError(500, "internal_error",
                                 f"the service failed this batch: {type(exc).__name__}: {exc}")
            self._record([500] * len(data), [0] * len(data), [], 0.0)
            return [self._respond(context, idx, 500, error.body(), len(data))
                    for idx in range(len(data))]
        self._record(*batch_figures(prepared.plans), inference_ms)
        return responses

    def _record(self, statuses, request_images, error_codes, inference_ms: float) -> None:
        try:  # a metrics line must never cost the batch its answers
            emf.emit(emf.batch_record(self.endpoint, statuses, request_images, error_codes,
                                      inference_ms))
        except (OSError, ValueError) as exc:
            logger.warning("could not write the batch's metrics line: %s", exc)


def non_finite(image_id: str, output: np.ndarray) -> dict:
    """The per-image error for a model output with NaN or Inf (what JSON cannot carry)."""
    bad = int((~np.isfinite(output)).sum())
    return ImageError(INVALID_OUTPUT, f"the model's output for this image is not finite "
                      f"({bad} of {output.size} values are NaN or Inf); the model or its "
                      "input normalisation is broken for this input").entry(image_id)


def exit_on_sigterm() -> None:
    """SIGTERM ends this handler process at once (MMS 1.1.11's own handler does not).

    MMS's ``start_worker`` installs, in each handler it forks, a SIGTERM handler that
    removes the *listener's* socket file and returns: the handler lives on until some
    crash, and the frontend then retries that socket forever ("Failed to connect to
    worker"), the worker READY but dead. Exiting instead lets the frontend reconnect to
    the listener, which forks a new handler (as after SIGKILL: about a second and a model
    load). Only in the handler's main thread, where signal handlers can be set."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))


def batch_figures(plans: list[RequestPlan]) -> tuple[list[int], list[int], list[str]]:
    """(status of each request, images each answered, code of each per-image error)."""
    statuses, images, codes = [], [], []
    for plan in plans:
        statuses.append(plan.error.status if plan.error is not None else 200)
        images.append(0 if plan.error is not None else len(plan.slots))
        if plan.error is None:
            codes += [slot.code for slot in plan.slots if isinstance(slot, ImageError)]
    return statuses, images, codes


_service = ImageClassifierService()


def handle(data, context):
    """MMS entry point (``model_handler.service:handle``)."""
    if not _service.initialized:
        _service.initialize(context)  # raising here fails registration loudly, as intended
        exit_on_sigterm()
        if data is None:
            return None
    if data is None:
        return None
    return _service.handle(data, context)
