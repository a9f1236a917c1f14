"""frame-infer: batched ONNX image classification of video frames on Multi Model Server.

Packages by where their code runs:

- ``frame_infer.client``: video -> frames -> endpoint -> predictions and report (your
  machine); :class:`Client` is its Python entry point.
- ``frame_infer.serving``: local MMS launcher and the SageMaker container front.
- ``frame_infer.deploy``: S3 artifacts and CloudFormation stacks for SageMaker.
- ``frame_infer.models``: the ``.mar`` packager, test-model generator, model fetchers.
- ``frame_infer.cli``: the ``frame-infer`` command.

The service inside every ``.mar`` is the separate top-level package ``model_handler``;
the HTTP contract between the two is docs/API.md.
"""
from __future__ import annotations

from importlib import metadata

from .errors import FrameInferError

try:
    __version__ = metadata.version("frame-infer")
except metadata.PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["Client", "FrameInferError", "ImageResult", "__version__"]


def __getattr__(name: str):
    # Lazy: the serving image has no client extras, and `import frame_infer` must work there.
    if name in ("Client", "ImageResult"):
        from .client import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
