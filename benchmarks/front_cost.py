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


def cpu_seconds(serve_pid: int) -> dict[str, float]:
    """CPU seconds so far of the front (the `serve` process itself), Java, the workers."""
    import psutil

    def cpu(proc) -> float:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system + times.children_user + times.children_system

    front = psutil.Process(serve_pid)
    times = front.cpu_times()
    java = [c for c in front.children() if "java" in c.name()]
    workers = [w for j in java for w in j.children(recursive=True)]
    return {"front": times.user + times.system, "java": sum(cpu(j) for j in java) -
            sum(cpu(w) for w in workers if w.ppid() == java[0].pid),
            "workers": sum(w.cpu_times().user + w.cpu_times().system for w in workers)}


def rate(url: str, frames, work: Path, serve_pid: int) -> tuple[float, dict]:
    """Images/s of one run of the frames at ``url``, and the CPU seconds it cost."""
    out = Path(tempfile.mkdtemp(dir=work))
    before = cpu_seconds(serve_pid)
    started = time.perf_counter()
    summary = predict(frames, HttpTarget(url), out, PredictOptions(
        batch_size=16, concurrency=8, progress=False))
    took = time.perf_counter() - started
    after = cpu_seconds(serve_pid)
    assert summary.predicted == len(frames), summary
    return len(frames) / took, {k: after[k] - before[k] for k in after}


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
    cpu: dict[str, list[dict]] = {"raw MMS": [], "front": []}
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
            rate(url, frames, work, serve.pid)
        for round_ in range(ROUNDS):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for name in order:
                images_s, spent = rate(urls[name], frames, work, serve.pid)
                rates[name].append(images_s)
                cpu[name].append(spent)
                print(f"round {round_ + 1}: {name} {images_s:.1f} images/s, CPU s "
                      + ", ".join(f"{k} {v:.2f}" for k, v in spent.items()), flush=True)
    finally:
        serve.terminate()
        serve.wait(60)
    raw, front = (statistics.median(rates[k]) for k in ("raw MMS", "front"))
    paired = statistics.median(f / r for f, r in zip(rates["front"], rates["raw MMS"]))
    front_cpu = statistics.median(c["front"] for c in cpu["front"])
    idle_cpu = statistics.median(c["front"] for c in cpu["raw MMS"])
    served_cpu = statistics.median(c["java"] + c["workers"] for c in cpu["front"])
    facts = machine()
    lines = ["# The front's cost: served throughput through it vs. raw MMS", "",
             f"Run {facts['date']} on {facts['cpu']}, {facts['cores']} cores, "
             f"{facts['memory_gib']} GiB; `frame-infer serve` (FER+-architecture test model, "
             "MXNet, 1 worker, MMS batch 8 / 10 ms), 600 frames, 16 per request, 8 in "
             f"flight; {ROUNDS} rounds alternating, after one warm-up each; the same MMS "
             "reached through the front or straight on its internal port.", "",
             "| path | images/s, median | runs | CPU s of the `serve` process per run, median "
             "| CPU s of Java + worker per run, median |", "| --- | ---: | --- | ---: | ---: |"]
    for name in rates:
        runs = ", ".join(f"{r:.1f}" for r in rates[name])
        own = statistics.median(c["front"] for c in cpu[name])
        rest = statistics.median(c["java"] + c["workers"] for c in cpu[name])
        lines.append(f"| {name} | {statistics.median(rates[name]):.1f} | {runs} | {own:.2f} "
                     f"| {rest:.2f} |")
    share = (front_cpu - idle_cpu) / (served_cpu + front_cpu - idle_cpu)
    lines += ["", f"Front / raw MMS throughput: **{front / raw:.3f}** (ratio of medians), "
              f"**{paired:.3f}** (median of the {ROUNDS} back-to-back pairs).", "",
              f"The front's own CPU per 600 frames: {front_cpu - idle_cpu:.2f} s ({front_cpu:.2f} s "
              f"while it forwards, {idle_cpu:.2f} s of its idle threads during a raw run), "
              f"against {served_cpu:.2f} s of Java and the worker: **{share * 100:.1f} %** of "
              "the served path's CPU. On a machine whose cores the model keeps busy, that "
              "share is the throughput the front can cost; wall-clock ratios on a shared "
              "machine move more than that from run to run."]
    report = work.parent / "front-cost.md"
    report.write_text("\n".join(lines) + "\n")
    if args.save:
        shutil.copy(report, RESULTS / "front_cost.md")
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
