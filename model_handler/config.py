"""The model's configuration: read once in ``initialize``, typed and frozen.

Sources, later ones winning: defaults derived from the ONNX file (input name and
shape, number of outputs), the ONNX file's own ``metadata_props`` (below), the archive's
``model-config.json``, and environment variables ``FRAME_INFER_<KEY>`` (upper-case key,
e.g. ``FRAME_INFER_ENGINE=onnxruntime``, ``FRAME_INFER_CONTEXT=cpu``,
``FRAME_INFER_ALLOWED_S3_BUCKETS=frames,other``).

A model can describe itself: the ``metadata_props`` keys ``labels``, ``color_mode``,
``scale``, ``mean``, ``std``, ``softmax`` and ``faces`` (:data:`METADATA_KEYS`), each a
JSON value as text (``labels`` = ``["angry", "disgust", ...]``, ``scale`` = ``0.00392156862745098``,
``mean`` = ``[0.5]``, ``softmax`` = ``false``; a bare string such as ``L`` also works), are
read like the same keys of ``model-config.json``. Other metadata keys are ignored.
``frame-infer import-fer`` writes them (:func:`metadata_props`), so such a model needs no
labels or config when packaged.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

import onnx

CONFIG_FILE = "model-config.json"
FERPLUS_LABELS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                  "contempt")
ENGINES = ("mxnet", "onnxruntime")
COLOR_MODES = {1: "L", 3: "RGB"}
METADATA_KEYS = ("labels", "color_mode", "scale", "mean", "std", "softmax", "faces")
"""Settings an ONNX file's ``metadata_props`` may carry (JSON values; see the module doc)."""


class ConfigError(ValueError):
    """The model config is wrong; the message names the key, the file and the fix."""


@dataclass(frozen=True)
class ModelConfig:
    model_file: str
    """ONNX file, relative to the model folder."""
    input_name: str
    """Name of the model's image input (derived from the ONNX graph)."""
    channels: int
    height: int
    width: int
    """Input shape (C, H, W) without the batch dimension (derived from the ONNX graph)."""
    labels: tuple[str, ...]
    """One label per output; default: the model's metadata ``labels``, else the FER+ eight
    for 8 outputs, else class_0..class_N."""
    color_mode: str = "L"
    """Pillow mode images are converted to: "L" (grayscale) or "RGB"; default from channels."""
    scale: float = 1.0
    """Pixel values (0..255) are multiplied by this first: 1.0 keeps 0..255, 1/255 gives 0..1."""
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    """Per-channel (or single) values: input = (pixel * scale - mean) / std."""
    softmax: bool = True
    """Apply softmax to the outputs; false when the model already outputs probabilities."""
    faces: bool = False
    """The model was trained on face crops (an emotion model): answers say so in
    ``model.input.faces``, and a client sending whole frames warns that it needs
    ``--faces``."""
    max_batch_size: int = 32
    """Largest batch run at once (accelerator memory is small); larger batches are chunked."""
    engine: str = "mxnet"
    """"mxnet" (can use Elastic Inference / GPU) or "onnxruntime" (CPU reference engine)."""
    context: str = "auto"
    """MXNet context: auto (EIA if the build has it, else the GPU MMS assigns, else CPU),
    cpu, gpu, gpu:N or eia."""
    threads: int = 0
    """onnxruntime's threads per worker; 0 = OMP_NUM_THREADS, else all cores. MXNet reads
    OMP_NUM_THREADS itself when it loads (``frame-infer serve`` sets cores / workers)."""
    max_image_pixels: int = 40_000_000
    """Larger images are rejected (image_too_large) before decoding: decompression bombs.
    Also sets the worker's decode memory ceiling: an image is decoded at full size once, at
    most 5 bytes a pixel (4 for RGB/RGBA/CMYK/32-bit, +1 for a palette image converted to
    RGB), and reduced near the model size before any other conversion; one image per
    decode thread (min(4, cores)): 2 x 40 M x 5 B = 400 MB on 2 cores."""
    max_request_pixels: int = 200_000_000
    """Decoded pixels one request may cost, counted in its order from the image headers
    (a JPEG counts at its draft scale, about 1/64 of its size when much larger than the
    model): an image that does not fit in what is left gets image_too_large. Bounds the
    CPU time of a request of small files with huge dimensions (a 6300x6300 16-bit PNG is
    90 KB and decodes 40 M pixels): about 7-10 ns per pixel, so 1.5-2 s per request."""
    max_images_per_request: int = 1024
    """More images in one request is a 400."""
    allowed_s3_buckets: tuple[str, ...] = ()
    """Buckets the service may fetch ``s3://`` references from; empty: none."""
    s3_connect_timeout_s: float = 5.0
    """Seconds to open a connection to S3, per attempt (boto3 retries: standard mode)."""
    s3_read_timeout_s: float = 10.0
    """Seconds S3 may stay silent in an answer (headers or any read of a body), per attempt."""
    s3_fetch_deadline_s: float = 30.0
    """All ``s3`` references of one MMS batch are fetched and decoded within this; any still
    pending get ``s3_error``. Keep it under the worker's response timeout (60 s or more)."""
    s3_max_bytes_in_flight: int = 128 * 1024 * 1024
    """Object bytes one batch holds at once (fetched, not yet decoded); other fetches wait
    for room. Each body is decoded as it arrives. Objects over this (or over 64 MiB) are
    ``image_too_large``."""
    s3_max_bytes_per_request: int = 128 * 1024 * 1024
    """Object bytes one request's ``s3`` references may fetch in all (a reference repeated
    within the request is fetched and counted once); an object past what is left is
    ``image_too_large`` without its body being read. Their decoded pixels are spent from
    the request's ``max_request_pixels`` like the body's images."""
    s3_shared_wait_s: float = 5.0
    """How long the other requests of an MMS batch wait for its ``s3`` fetches: a request
    whose objects are not all fetched by then is answered 503 ``s3_slow`` (retry), so a
    silent S3 delays the others by this, not by ``s3_fetch_deadline_s``. A batch holding
    only requests with references waits the whole deadline."""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


def _onnx_defaults(model_path: Path) -> dict:
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ConfigError(f"cannot read ONNX model {model_path}: {exc}; package a complete "
                          ".onnx file") from exc
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ConfigError(f"{model_path} has {len(inputs)} data inputs "
                          f"({[i.name for i in inputs]}); an image classifier needs exactly one")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    defaults: dict = {"input_name": inputs[0].name}
    if len(dims) == 4 and all(d for d in dims[1:]):
        defaults.update(channels=dims[1], height=dims[2], width=dims[3])
    out_dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    classes = out_dims[-1] if out_dims and out_dims[-1] else None
    if classes:
        defaults["labels"] = (FERPLUS_LABELS if classes == 8
                              else tuple(f"class_{i}" for i in range(classes)))
    defaults.update(_metadata_settings(model, model_path))
    return defaults


def _metadata_settings(model: onnx.ModelProto, model_path: Path) -> dict:
    """The :data:`METADATA_KEYS` the model's ``metadata_props`` set, typed."""
    settings = {}
    for prop in model.metadata_props:
        if prop.key in METADATA_KEYS:
            try:
                value = json.loads(prop.value)
            except ValueError:
                value = prop.value  # a bare string: "L", "a,b,c"
            settings[prop.key] = _coerce(prop.key, value, f"{model_path} metadata_props")
    return settings


def metadata_props(settings: Mapping) -> dict[str, str]:
    """``settings`` (only :data:`METADATA_KEYS`) as ``metadata_props`` text, for a model
    file that describes itself (``onnx.helper.set_model_props``)."""
    unknown = sorted(set(settings) - set(METADATA_KEYS))
    if unknown:
        raise ConfigError(f"not model metadata: {unknown}; allowed: {list(METADATA_KEYS)}")
    return {key: json.dumps(list(value) if isinstance(value, tuple) else value)
            for key, value in settings.items()}


def _coerce(name: str, value, source: str):
    """Convert a raw config value (JSON or env string) to the field's type."""
    tuple_fields = {"labels": str, "mean": float, "std": float, "allowed_s3_buckets": str}
    int_fields = {"channels", "height", "width", "max_batch_size", "threads",
                  "max_image_pixels", "max_request_pixels", "max_images_per_request"}
    try:
        if name in tuple_fields:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, (int, float)):
                value = [value]
            return tuple(tuple_fields[name](v) for v in value)
        if name in int_fields:
            return int(value)
        if name in ("scale", "s3_connect_timeout_s", "s3_read_timeout_s",
                    "s3_fetch_deadline_s", "s3_shared_wait_s"):
            return float(value)
        if name in ("s3_max_bytes_in_flight", "s3_max_bytes_per_request"):
            return int(value)
        if name in ("softmax", "faces"):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return bool(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {name}={value!r} is not valid ({exc})") from exc


def _validate(cfg: ModelConfig, source: str) -> None:
    problems = []
    if cfg.engine not in ENGINES:
        problems.append(f"engine must be one of {ENGINES}, not {cfg.engine!r}")
    if cfg.color_mode not in ("L", "RGB"):
        problems.append(f"color_mode must be 'L' or 'RGB', not {cfg.color_mode!r}")
    elif {"L": 1, "RGB": 3}[cfg.color_mode] != cfg.channels:
        problems.append(f"color_mode {cfg.color_mode!r} does not give {cfg.channels} channels")
    for key in ("mean", "std"):
        if len(getattr(cfg, key)) not in (1, cfg.channels):
            problems.append(f"{key} needs 1 or {cfg.channels} values")
    if any(s == 0 for s in cfg.std):
        problems.append("std values must not be 0")
    for key in ("max_batch_size", "max_image_pixels", "max_request_pixels",
                "max_images_per_request", "height", "width", "channels"):
        if getattr(cfg, key) < 1:
            problems.append(f"{key} must be at least 1")
    for key in ("s3_connect_timeout_s", "s3_read_timeout_s", "s3_fetch_deadline_s",
                "s3_max_bytes_in_flight", "s3_max_bytes_per_request", "s3_shared_wait_s"):
        if not getattr(cfg, key) > 0:
            problems.append(f"{key} must be more than 0")
    if not cfg.labels:
        problems.append("labels are missing: list one label per model output")
    if problems:
        raise ConfigError(f"invalid model config ({source}): " + "; ".join(problems))


def load_config(model_dir: str | Path, environ: Mapping[str, str] | None = None) -> ModelConfig:
    """Build the config for the model in ``model_dir`` (an unpacked archive)."""
    model_dir = Path(model_dir)
    environ = os.environ if environ is None else environ
    names = {f.name for f in fields(ModelConfig)}
    config_path = model_dir / CONFIG_FILE
    raw: dict = {}
    if config_path.exists():
        try:
            raw = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {config_path}: {exc}; fix the JSON") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_path} must hold a JSON object of settings, not "
                              f"{type(raw).__name__}")
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ConfigError(f"{config_path}: unknown keys {unknown}; known keys: "
                              f"{sorted(names)}")
    # The environment wins for model_file too, so it must be known before the ONNX defaults.
    model_file = (environ.get("FRAME_INFER_MODEL_FILE") or raw.get("model_file")
                  or _single_onnx(model_dir))
    values = dict(_onnx_defaults(model_dir / model_file), model_file=model_file)
    values.update({k: _coerce(k, v, str(config_path)) for k, v in raw.items()})
    for name in names:
        env_value = environ.get(f"FRAME_INFER_{name.upper()}")
        if env_value is not None and env_value != "":
            values[name] = _coerce(name, env_value, f"environment FRAME_INFER_{name.upper()}")
    missing = [k for k in ("channels", "height", "width", "labels") if k not in values]
    if missing:
        raise ConfigError(f"cannot derive {missing} from {model_file} (dynamic shape?); "
                          f"set them in {CONFIG_FILE}")
    values.setdefault("color_mode", COLOR_MODES.get(values["channels"], "L"))
    cfg = ModelConfig(**values)
    _validate(cfg, str(config_path))
    return cfg


def _single_onnx(model_dir: Path) -> str:
    found = sorted(p.name for p in model_dir.glob("*.onnx"))
    if len(found) != 1:
        raise ConfigError(f"expected exactly one .onnx file in {model_dir}, found {found}; "
                          f"name it with model_file in {CONFIG_FILE}")
    return found[0]
