"""The main job on built-in defaults: a 20-second 30 FPS video through local MMS.

Builds (once) the FER+-architecture test model — deterministic random weights, so the
labels it prints are not real emotions — packages it, starts MMS with server-side
batching, runs the video job (``frame_infer.client.job``) on a generated sample video
(or ``video``), and stops MMS. ``model=path/to/emotion-ferplus-8.onnx`` (see
``frame-infer fetch-ferplus``) serves the real one. It spans every part of the project:
models, serving and the client.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .client.job import JobResult, run_job
from .client.options import JobOptions, PredictOptions
from .models import packager, testgen
from .serving.mms import free_port, serve_model


@dataclass(frozen=True)
class DemoOptions:
    """What ``frame-infer demo`` runs."""

    model: Path | None = None
    """ONNX model; None: build the FER+-architecture test model."""
    video: Path | None = None
    """Video; None: generate a ``seconds``-long 30 FPS clip."""
    work_dir: Path = Path("build/demo")
    """Models, archive, MMS logs and the job's output go here."""
    name: str = "ferplus"
    """Model name (and archive name) in MMS."""
    seconds: float = 20.0
    """Length of the generated sample video."""


def prepare_inputs(options: DemoOptions, say=print) -> tuple[Path, Path]:
    """(model, video): the given ones, or generated into the work dir once."""
    from .client.extract import make_sample_video

    work = Path(options.work_dir)
    model = options.model
    if model is None:
        model = work / "ferplus-test.onnx"
        if not model.exists():
            testgen.write_test_model("ferplus", model)
            say(f"built the FER+-architecture test model (random weights): {model}")
    video = options.video
    if video is None:
        video = work / f"sample-{options.seconds:g}s-30fps.mp4"
        if not video.exists():
            make_sample_video(video, seconds=options.seconds, fps=30)
            say(f"generated a {options.seconds:g}-second 30 FPS sample video: {video}")
    return model, video


def run_demo(options: DemoOptions = DemoOptions(), say=print) -> JobResult:
    """Package, serve, run the video job into ``work_dir/run``, stop MMS; the job's result."""
    model, video = prepare_inputs(options, say)
    work = Path(options.work_dir)
    archive = packager.build_archive(model, options.name, work / "model-store")
    say(f"packaged {archive}")
    started = time.monotonic()
    server = serve_model(work / "model-store", archive.name, options.name, free_port(),
                         free_port(), batch_size=4, max_batch_delay_ms=10, workers=1,
                         run_dir=work / "mms")
    try:
        say(f"MMS ready in {time.monotonic() - started:.1f}s at {server.inference_url} "
            f"(logs: {server.log_dir})")
        out = work / "run"
        shutil.rmtree(out, ignore_errors=True)  # the demo starts fresh each time
        job = JobOptions(predict=PredictOptions(batch_size=16, concurrency=4))
        return run_job(video, out, f"{server.inference_url}/predictions/{options.name}", job)
    finally:
        server.stop()
        say("MMS stopped")
