"""The main job on built-in defaults: a 20-second 30 FPS video through local MMS.

Builds (once) the FER+-architecture test model — deterministic random weights, so the
labels it prints are not real emotions — packages it, starts MMS with server-side
batching, runs ``frame-infer run`` on a generated sample video (or ``--video``), prints
the per-second summary and where the plot is, and stops MMS. ``--model
path/to/emotion-ferplus-8.onnx`` (see ``frame-infer fetch-ferplus``) serves the real one.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from . import modelgen, packager, run_job
from .server import free_port, serve_model
from .video import make_sample_video


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="ONNX model (default: build the test model)")
    parser.add_argument("--video", type=Path, help="video (default: a generated 20 s clip)")
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--name", default="ferplus")
    parser.add_argument("--seconds", type=float, default=20.0, help="sample video length")


def prepare_inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    work = args.work_dir
    model = args.model
    if model is None:
        model = work / "ferplus-test.onnx"
        if not model.exists():
            modelgen.write_test_model("ferplus", model)
            print(f"built the FER+-architecture test model (random weights): {model}")
    video = args.video
    if video is None:
        video = work / f"sample-{args.seconds:g}s-30fps.mp4"
        if not video.exists():
            make_sample_video(video, seconds=args.seconds, fps=30)
            print(f"generated a {args.seconds:g}-second 30 FPS sample video: {video}")
    return model, video


def run(args: argparse.Namespace) -> int:
    model, video = prepare_inputs(args)
    work = args.work_dir
    archive = packager.build_archive(model, args.name, work / "model-store")
    print(f"packaged {archive}")
    started = time.monotonic()
    server = serve_model(work / "model-store", archive.name, args.name, free_port(),
                         free_port(), batch_size=4, max_batch_delay_ms=10, workers=1,
                         run_dir=work / "mms")
    try:
        print(f"MMS ready in {time.monotonic() - started:.1f}s at {server.inference_url} "
              f"(logs: {server.log_dir})")
        out = work / "run"
        shutil.rmtree(out, ignore_errors=True)  # the demo starts fresh each time
        parser = argparse.ArgumentParser()
        run_job.add_arguments(parser)
        job_args = parser.parse_args([str(video), "--endpoint",
                                      f"{server.inference_url}/predictions/{args.name}",
                                      "--out", str(out), "--batch-size", "16",
                                      "--concurrency", "4"])
        result = run_job.run_job(video, out, job_args)
    finally:
        server.stop()
        print("MMS stopped")
    run_job.print_result(result)
    return 0 if result.summary.output and not result.summary.unfinished else 1
