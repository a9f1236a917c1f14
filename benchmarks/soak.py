"""``make soak``: load and faults against the real `frame-infer serve`, then count losses.

Not part of CI: bounded (a few minutes), loopback only. With the FER+-architecture
test model on `frame-infer serve` (a real subprocess, as a user runs it):

1. load: the 600 frames of a 20 s clip at 8, 32 and 64 requests in flight;
2. a killed handler process: SIGKILL to the worker's handler while 8 are in flight;
3. a restarted server: SIGTERM to `frame-infer serve` while `frame-infer run` sends,
   a new `serve` on the same ports, then the same `run` command again.

Each phase reports requests, answers by status, worker restarts (new worker ids in the
management API), Java and worker RSS before and after, and the frames without a
prediction after the rerun (must be 0). Writes build/soak/soak.md (``--save``: also
benchmarks/results/soak.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from frame_infer.client.extract import extract_frames, make_sample_video
from frame_infer.client.options import PredictOptions
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import HttpTarget, RetryPolicy
from frame_infer.models import packager, testgen
from frame_infer.serving.ports import free_port

from .meters import machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
FRAME_INFER = [sys.executable, "-m", "frame_infer.cli"]


class Serve:
    """`frame-infer serve` as a subprocess on fixed ports; its Java and worker processes."""

    def __init__(self, store: Path, port: int, management_port: int, log: Path):
        self.store, self.port, self.management_port, self.log = store, port, management_port, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        log = open(self.log, "a")
        self.proc = subprocess.Popen(
            [*FRAME_INFER, "serve", "--archive", str(self.store / "ferplus.mar"),
             "--port", str(self.port), "--management-port", str(self.management_port),
             "--batch-size", "4", "--max-batch-delay", "10"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}; see {self.log}")
            if self.ready_workers():
                return
            time.sleep(0.2)  # polling the management API for a READY worker
        raise RuntimeError(f"serve not ready within {timeout}s; see {self.log}")

    def workers(self) -> list[dict]:
        url = f"http://127.0.0.1:{self.management_port}/models/ferplus"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError):
            return []
        body = body[0] if isinstance(body, list) and body else body
        return body.get("workers", []) if isinstance(body, dict) else []

    def ready_workers(self) -> int:
        return sum(w.get("status") == "READY" for w in self.workers())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def processes(self):
        """(java, [worker listeners], [handler processes]) as psutil processes."""
        import psutil

        java, listeners, handlers = None, [], []
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                line = " ".join(proc.cmdline())
                if "java" in proc.name():
                    java = proc
                elif "model_service_worker" in line:
                    (listeners if proc.parent().name().startswith("java") else handlers
                     ).append(proc)
            except psutil.Error:
                continue
        return java, listeners, handlers

    def rss_mb(self) -> tuple[float, float]:
        """(Java RSS, all worker processes' RSS) in MB."""
        import psutil

        java, listeners, handlers = self.processes()

        def rss(procs):
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            return total / 2**20
        return (rss([java]) if java else 0.0), rss(listeners + handlers)


class WorkerIds:
    """Every worker id the management API shows while it runs (a restart is a new id)."""

    def __init__(self, serve: Serve):
        self.serve, self.ids = serve, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.25):
            self.ids |= {w.get("id") for w in self.serve.workers() if w.get("id")}

    def __enter__(self):
        self.ids = {w.get("id") for w in self.serve.workers() if w.get("id")}
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def restarts(self) -> int:
        return max(0, len(self.ids) - 1)


class CountingTarget:
    """The real HTTP target, counting answers by status (``transport`` for no answer)."""

    def __init__(self, url: str):
        self.inner, self.statuses = HttpTarget(url, timeout=120, pool_size=64), Counter()
        self.max_payload = self.inner.max_payload
        self._lock = threading.Lock()

    def send(self, body, content_type):
        try:
            status, answer = self.inner.send(body, content_type)
        except Exception:
            with self._lock:
                self.statuses["transport"] += 1
            raise
        with self._lock:
            self.statuses[status] += 1
        return status, answer

    def describe(self):
        return self.inner.describe()


def lost(out: Path, total: int) -> int:
    """Frames of ``out/predictions.jsonl`` without a prediction (missing rows count)."""
    path = out / "predictions.jsonl"
    if not path.exists():
        return total
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return total - sum("label" in r for r in rows)


def phase_row(name, statuses: Counter, restarts: int, before, after, lost_frames: int) -> dict:
    return {"phase": name, "requests": sum(statuses.values()),
            "statuses": dict(sorted(statuses.items(), key=lambda kv: str(kv[0]))),
            "worker_restarts": restarts, "java_mb": (before[0], after[0]),
            "workers_mb": (before[1], after[1]), "lost_after_rerun": lost_frames}


def load_phase(serve: Serve, frames, work: Path, in_flight: int) -> dict:
    out = work / f"load-{in_flight}"
    target = CountingTarget(f"http://127.0.0.1:{serve.port}/predictions/ferplus")
    options = PredictOptions(batch_size=4, concurrency=in_flight, progress=False,
                             retry=RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=2))
    before = serve.rss_mb()
    with WorkerIds(serve) as ids:
        predict(frames, target, out, options)
        predict(frames, target, out, options)  # the rerun: sends only what is missing
    return phase_row(f"load, {in_flight} in flight", target.statuses, ids.restarts, before,
                     serve.rss_mb(), lost(out, len(frames)))


def kill_handler_phase(serve: Serve, frames, work: Path) -> dict:
    out = work / "kill-handler"
    target = CountingTarget(f"http://127.0.0.1:{serve.port}/predictions/ferplus")
    options = PredictOptions(batch_size=4, concurrency=8, progress=False,
                             retry=RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=2))
    before = serve.rss_mb()
    with WorkerIds(serve) as ids:
        runner = threading.Thread(target=predict, args=(frames, target, out, options))
        runner.start()
        while sum(target.statuses.values()) < 20 and runner.is_alive():
            time.sleep(0.02)  # polling until the run is under way
        for handler in serve.processes()[2]:
            handler.kill()
        runner.join()
        deadline = time.monotonic() + 60
        while not serve.ready_workers() and time.monotonic() < deadline:
            time.sleep(0.2)  # polling for the replacement worker
        predict(frames, target, out, options)  # the rerun
    return phase_row("handler process killed (8 in flight)", target.statuses, ids.restarts,
                     before, serve.rss_mb(), lost(out, len(frames)))


def restart_phase(serve: Serve, video: Path, frame_count: int, work: Path) -> dict:
    out = work / "restart"
    command = [*FRAME_INFER, "run", str(video), "--endpoint",
               f"http://127.0.0.1:{serve.port}/predictions/ferplus", "--out", str(out),
               "--frames-per-request", "4", "--concurrency", "8", "--no-progress", "--retries", "8"]
    log = open(work / "restart-run.log", "w")
    before = serve.rss_mb()
    started = time.monotonic()
    run = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    journal = out / "predictions.journal.jsonl"
    while (not journal.exists() or journal.read_text().count("\n") < 100) \
            and run.poll() is None:
        time.sleep(0.02)  # polling until a hundred frames are in
    serve.stop()
    stopped_at = time.monotonic() - started
    serve.start()
    first = run.wait(timeout=600)
    second = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            timeout=600).returncode
    statuses = Counter({f"first run exit {first}": 1, f"rerun exit {second}": 1})
    row = phase_row(f"`serve` restarted during `frame-infer run` (stopped at {stopped_at:.1f}s)",
                    statuses, 0, before, serve.rss_mb(), lost(out, frame_count))
    row["requests"] = "-"
    return row


def write_report(info: dict, rows: list[dict], path: Path) -> None:
    lines = ["# Soak: load and faults against `frame-infer serve`", "",
             f"Run {info['date']} on {info['machine']}; FER+-architecture test model, "
             "MMS batching 4, one worker; 600 frames of a 20 s clip per phase.", "",
             "| phase | requests | answers by status | worker restarts | Java RSS MB "
             "before → after | worker RSS MB before → after | frames lost after rerun |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        lines.append(f"| {r['phase']} | {r['requests']} | {statuses} | {r['worker_restarts']} "
                     f"| {r['java_mb'][0]:.0f} → {r['java_mb'][1]:.0f} "
                     f"| {r['workers_mb'][0]:.0f} → {r['workers_mb'][1]:.0f} "
                     f"| **{r['lost_after_rerun']}** |")
    lines += ["", "A phase's rerun is the same command again: it sends only the frames "
              "without an answer from the service. `transport`: no HTTP answer (refused, "
              "reset, cut short)."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "soak")
    parser.add_argument("--save", action="store_true",
                        help="also write benchmarks/results/soak.md")
    args = parser.parse_args(argv)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    model = testgen.write_test_model("ferplus", work / "ferplus.onnx")
    store = work / "store"
    packager.build_archive(model, "ferplus", store)
    video = make_sample_video(work / "clip.mp4", seconds=20, fps=30)
    extract_frames(video, work / "frames", fps=30, progress=False)
    frames = local_frames(work / "frames")
    serve = Serve(store, free_port(), free_port(), work / "serve.log")
    rows = []
    started = time.monotonic()
    try:
        serve.start()
        for in_flight in (8, 32, 64):
            rows.append(load_phase(serve, frames, work, in_flight))
            print(f"{rows[-1]['phase']}: {rows[-1]['statuses']}, lost "
                  f"{rows[-1]['lost_after_rerun']}", flush=True)
        rows.append(kill_handler_phase(serve, frames, work))
        print(f"{rows[-1]['phase']}: {rows[-1]['statuses']}, restarts "
              f"{rows[-1]['worker_restarts']}, lost {rows[-1]['lost_after_rerun']}", flush=True)
        rows.append(restart_phase(serve, video, len(frames), work))
        print(f"{rows[-1]['phase']}: {rows[-1]['statuses']}, lost "
              f"{rows[-1]['lost_after_rerun']}", flush=True)
    finally:
        serve.stop()
    facts = machine()
    info = {"date": facts["date"],
            "machine": f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB"}
    report = work / "soak.md"
    write_report(info, rows, report)
    if args.save:
        shutil.copy(report, RESULTS / "soak.md")
    print(report.read_text())
    print(f"soak took {time.monotonic() - started:.0f}s; report: {report}")
    return 0 if all(r["lost_after_rerun"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
