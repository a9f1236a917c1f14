"""Build the ``.mar`` archive: ONNX model + model config + the ``model_handler`` service.

The archive is self-contained: MMS puts the unpacked model folder on the worker's
``PYTHONPATH``, so the copy of ``model_handler`` inside it is the one that serves.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import model_handler
from model_handler.config import CONFIG_FILE, ConfigError, load_config
from ..errors import PackagingError  # noqa: F401 (re-exported)

HANDLER = "model_handler.service:handle"


def read_labels(path: Path) -> list[str]:
    """One label per non-empty line of ``path``."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PackagingError(f"cannot read the labels file {path}: {exc.strerror or exc}; "
                             "give a text file with one label per line") from exc
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise PackagingError(f"{path} lists no labels: write one label per line")
    return labels


def stage_model_dir(model: Path, dest: Path, config: dict) -> Path:
    """Lay out what goes into the archive in ``dest`` and validate its config."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(model, dest / model.name)
    config = {**config, "model_file": model.name}
    (dest / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    source = Path(model_handler.__file__).parent
    shutil.copytree(source, dest / "model_handler",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    try:
        cfg = load_config(dest, environ={})
    except ConfigError as exc:
        raise PackagingError(f"the model config is invalid: {exc}") from exc
    check_label_count(model, len(cfg.labels), "labels" in config)
    return dest


def model_outputs(model: Path) -> int | None:
    """The number of classes the model outputs (last dimension of its first output, after
    shape inference), or None when the file does not say."""
    import onnx

    proto = onnx.shape_inference.infer_shapes(onnx.load(str(model)))
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    if not dims or not dims[-1].HasField("dim_value"):
        return None
    return dims[-1].dim_value


def check_label_count(model: Path, labels: int, given: bool) -> None:
    """Fail now, not in the worker, when the labels are not one per model output."""
    outputs = model_outputs(model)
    if outputs is None or outputs == labels:
        return
    if given:
        source, fix = "--labels / the config's labels", "fix that list"
    else:
        source, fix = f"{model.name}'s metadata_props", "pass them with --labels"
    raise PackagingError(
        f"{model.name} has {outputs} outputs but {labels} labels come from {source}: give "
        f"exactly {outputs} labels, one per output in the model's order ({fix})")


def build_archive(model: Path | str, name: str, out_dir: Path | str,
                  labels: Path | str | None = None, config: Path | str | dict | None = None,
                  ) -> Path:
    """Package ``model`` (an .onnx file) as ``out_dir/name.mar`` and return its path."""
    model, out_dir = Path(model), Path(out_dir)
    if not model.is_file():
        raise PackagingError(f"model file {model} does not exist; create one with "
                             "`frame-infer make-test-model`, `fetch-ferplus` or `import-fer`")
    if isinstance(config, dict):
        settings = dict(config)
    elif config:
        try:
            settings = json.loads(Path(config).read_text())
        except (OSError, ValueError) as exc:
            raise PackagingError(f"cannot read model config {config}: {exc}") from exc
    else:
        settings = {}
    if labels:
        settings["labels"] = read_labels(Path(labels))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="frame-infer-stage-") as tmp:
        staged = stage_model_dir(model, Path(tmp) / name, settings)
        cmd = [sys.executable, "-m", "model_archiver.model_packaging",
               "--model-name", name, "--model-path", str(staged), "--handler", HANDLER,
               "--export-path", str(out_dir), "--archive-format", "default", "--force"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise PackagingError(f"model-archiver failed ({result.returncode}): "
                                 f"{result.stderr.strip() or result.stdout.strip()}")
    archive = out_dir / f"{name}.mar"
    if not archive.is_file():
        raise PackagingError(f"model-archiver did not write {archive}")
    store_uncompressed(archive)
    return archive


def store_uncompressed(archive: Path) -> None:
    """Rewrite the zip ``archive`` with every entry stored, not deflated.

    MMS unpacks the ``.mar`` at every registration, before it starts a worker: inflating
    the 35 MB FER+ model took about 0.25 s of the 0.9 s cold start (onnxruntime) and
    saves 7% of its size (float weights barely compress; benchmarks/NOTES.md). Entries
    are copied in chunks (any model size) to a sibling file that replaces the archive
    only once complete."""
    partial = archive.with_name(archive.name + ".partial")
    try:
        with zipfile.ZipFile(archive) as src, \
                zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as dst:
            for info in src.infolist():
                entry = zipfile.ZipInfo(info.filename, info.date_time)
                entry.external_attr, entry.compress_type = info.external_attr, zipfile.ZIP_STORED
                if info.is_dir():
                    dst.writestr(entry, b"")
                    continue
                entry.file_size = info.file_size
                big = info.file_size >= zipfile.ZIP64_LIMIT
                with src.open(info) as data, dst.open(entry, "w", force_zip64=big) as out:
                    shutil.copyfileobj(data, out, 1 << 20)
        partial.replace(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        partial.unlink(missing_ok=True)
        raise PackagingError(f"cannot rewrite {archive} uncompressed: {exc}") from exc
