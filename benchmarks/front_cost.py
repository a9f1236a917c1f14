"""What the front before MMS costs: served throughput through it vs. raw MMS, same run.

``python -m benchmarks.front_cost`` starts `frame-infer serve` (the front on its port,
MMS on an internal one), then sends the same 600 frames (16 per request, 8 in flight,
the served rows of ``make bench``) alternately to the front and straight to MMS's
internal port: the same MMS, worker and machine, so the ratio is the front's cost.
Writes build/front-cost.md (``--save``: also benchmarks/results/front_cost.md).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from frame_infer.client.extract import extract_frames, make_sample_video
from frame_infer.client.options import PredictOptions
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import HttpTarget
from frame_infer.models import packager, testgen
from frame_infer.serving.ports import free_port

from .meters import machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
ROUNDS = 5


def rate(url: str, frames, work: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    summary = predict(frames, HttpTarget(url), out, PredictOptions(
        batch_size=16, concurrency=8, progress=False))
    took = time.perf_counter() - started
    assert summary.predicted == len(frames), summary
    return len(frames) / took


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "front-cost")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    model = testgen.write_test_model("ferplus", work / "ferplus.onnx")
    packager.build_archive(model, "ferplus", work / "store")
    video = make_sample_video(work / "clip.mp4", seconds=20, fps=30)
    extract_frames(video, work / "frames", fps=30, progress=False)
    frames = local_frames(work / "frames")
    port = free_port()
    log = work / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count())}
    serve = subprocess.Popen(
        [sys.executable, "-m", "frame_infer.cli", "serve", "--archive",
         str(work / "store" / "ferplus.mar"), "--port", str(port), "--management-port",
         str(free_port()), "--batch-size", "8", "--max-batch-delay", "10"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        start_new_session=True)
    rates: dict[str, list[float]] = {"raw MMS": [], "front": []}
    try:
        deadline = time.monotonic() + 120
        while b"Ctrl-C stops" not in log.read_bytes():
            if serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {log.read_text()}")
            time.sleep(0.2)  # polling for the "serving" line
        internal = int(re.search(r"on internal port (\d+)", log.read_text())[1])
        urls = {"raw MMS": f"http://127.0.0.1:{internal}/predictions/ferplus",
                "front": f"http://127.0.0.1:{port}/predictions/ferplus"}
        for url in urls.values():  # warm up: JIT, worker, batch shapes
            rate(url, frames, work)
        for round_ in range(ROUNDS):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for name in order:
                rates[name].append(rate(urls[name], frames, work))
                print(f"round {round_ + 1}: {name} {rates[name][-1]:.1f} images/s", flush=True)
    finally:
        serve.terminate()
        serve.wait(60)
    raw, front = (statistics.median(rates[k]) for k in ("raw MMS", "front"))
    facts = machine()
    lines = ["# The front's cost: served throughput through it vs. raw MMS", "",
             f"Run {facts['date']} on {facts['cpu']}, {facts['cores']} cores, "
             f"{facts['memory_gib']} GiB; `frame-infer serve` (FER+-architecture test model, "
             "MXNet, 1 worker, MMS batch 8 / 10 ms), 600 frames, 16 per request, 8 in "
             f"flight; {ROUNDS} rounds alternating, after one warm-up each; the same MMS "
             "reached through the front or straight on its internal port.", "",
             "| path | images/s, median | runs |", "| --- | ---: | --- |"]
    for name in rates:
        runs = ", ".join(f"{r:.1f}" for r in rates[name])
        lines.append(f"| {name} | {statistics.median(rates[name]):.1f} | {runs} |")
    lines += ["", f"Front / raw MMS: **{front / raw:.3f}** ({(front / raw - 1) * 100:+.1f} %)."]
    report = work.parent / "front-cost.md"
    report.write_text("\n".join(lines) + "\n")
    if args.save:
        shutil.copy(report, RESULTS / "front_cost.md")
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
