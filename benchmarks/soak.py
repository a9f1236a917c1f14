"""``make soak``: load and faults against the real `frame-infer serve`, then count losses.

Not part of CI: bounded (a few minutes), loopback only. With the FER+-architecture
test model on `frame-infer serve` (a real subprocess, as a user runs it):

1. load: the 600 frames of a 20 s clip at 8, 32 and 64 requests in flight;
2. a killed handler process: SIGKILL to the worker's handler while 8 are in flight;
3. a restarted server: SIGTERM to `frame-infer serve` while `frame-infer run` sends,
   a new `serve` on the same ports 13 s later, then the same `run` command again: the
   first run must end 0 with no frame lost (the client rides the restart out).

Each phase reports requests, answers by status, worker restarts (new worker ids in the
management API), Java and worker RSS before and after, and the frames without a
prediction after the rerun (must be 0).

Then the bounds of issue 21, each against a stated figure (:data:`BOUNDS`):

4. 300 concurrent 6.4 MB requests, each sent once, at raw MMS (what `serve` was before
   the front; the "before" row) and at `frame-infer serve` (the front before MMS): no
   worker death, no 507, Java's peak RSS under the bound;
5. S3 amplification: one JSON request of 300 references to one 20 MB object, and one of
   300 references to 300 such objects, at `serve` with a loopback S3 stand-in: the
   worker's growth under the bound;
6. a handler killed behind the front (SIGTERM then SIGKILL, MMS's own recovery) and a
   worker MMS cannot reconnect to (its socket removed, then SIGKILL: the front restarts
   MMS): the first 200 within 10 s of the kill.

Writes build/soak/soak.md (``--save``: also benchmarks/results/soak.md).
"""
from __future__ import annotations

import argparse
import json
import os
import re
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

from .meters import Sampler, machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
FRAME_INFER = [sys.executable, "-m", "frame_infer.cli"]


BOUNDS = {"java_mb": 1200, "worker_growth_mb": 600, "recovered_s": 10.0}
"""The stated figures: Java's peak RSS under 300 concurrent 6.4 MB uploads (the front
forwards at most job queue + batch = 44 bodies: ~280 MB of bodies, held about twice,
over a ~150 MB idle frontend); the worker's growth over one request of 300 references
to 20 MB objects (one object or 128 MiB of them fetched, each decoded once); seconds
from a handler kill to the first 200 behind the front."""
RESTART_DOWN_S, START_S = 13.0, 3.0
"""Phase 3: `serve` is down this long (stop, wait, start: starting takes about START_S)."""
BIG_BODY_BYTES = 6_400_000
CONCURRENT = 300
S3_OBJECT_BYTES = 20 * 1024 * 1024


def management_workers(management_url: str, model: str = "ferplus") -> list[dict]:
    """``model``'s workers as the management API lists them; [] when it does not answer."""
    try:
        with urllib.request.urlopen(f"{management_url}/models/{model}", timeout=5) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return []
    body = body[0] if isinstance(body, list) and body else body
    return body.get("workers", []) if isinstance(body, dict) else []


class Serve:
    """`frame-infer serve` as a subprocess on fixed ports; its Java and worker processes."""

    def __init__(self, store: Path, port: int, management_port: int, log: Path,
                 env: dict | None = None):
        self.store, self.port, self.management_port, self.log = store, port, management_port, log
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        """Start `serve` and wait until it says it serves (the front listens, the worker
        is READY)."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        log = open(self.log, "a")
        self.proc = subprocess.Popen(
            [*FRAME_INFER, "serve", "--archive", str(self.store / "ferplus.mar"),
             "--port", str(self.port), "--management-port", str(self.management_port),
             "--batch-size", "4", "--max-batch-delay", "10"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            env={**os.environ, **(self.env or {})})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}; see {self.log}")
            if b"Ctrl-C stops" in self.log.read_bytes()[offset:] and self.ready_workers():
                return
            time.sleep(0.2)  # polling for the "serving" line and a READY worker
        raise RuntimeError(f"serve not ready within {timeout}s; see {self.log}")

    def workers(self) -> list[dict]:
        return management_workers(f"http://127.0.0.1:{self.management_port}")

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


class WorkerIds(Sampler):
    """Every worker id the management API shows while it runs (a restart is a new id)."""

    interval = 0.25

    def __init__(self, serve: Serve):
        super().__init__()
        self.serve, self.ids = serve, set()

    def sample(self) -> None:
        self.ids |= {w.get("id") for w in self.serve.workers() if w.get("id")}

    def __enter__(self):
        self.ids = set()
        self.sample()
        return super().__enter__()

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
               "--frames-per-request", "4", "--concurrency", "8", "--no-progress",
               "--retries", "8"]
    log = open(work / "restart-run.log", "w")
    before = serve.rss_mb()
    started = time.monotonic()
    run = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    journal = out / "predictions.journal.jsonl"
    while (not journal.exists() or journal.read_text().count("\n") < 100) \
            and run.poll() is None:
        time.sleep(0.02)  # polling until a hundred frames are in
    stopping = time.monotonic()
    serve.stop()
    stopped_at = stopping - started
    time.sleep(max(0.0, RESTART_DOWN_S - START_S - (time.monotonic() - stopping)))
    serve.start()  # down RESTART_DOWN_S in all: an ordinary restart, as the issue measured
    down = time.monotonic() - stopping
    first = run.wait(timeout=600)
    lost_first = lost(out, frame_count)
    second = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            timeout=600).returncode
    statuses = Counter({f"first run exit {first}": 1,
                        f"frames lost in the first run: {lost_first}": 1,
                        f"rerun exit {second}": 1})
    row = phase_row(f"`serve` down {down:.1f}s (stopped at {stopped_at:.1f}s) during "
                    "`frame-infer run`", statuses, 0, before, serve.rss_mb(),
                    lost(out, frame_count))
    row["lost_in_first_run"], row["first_exit"] = lost_first, first
    row["requests"] = "-"
    return row


class Peak(Sampler):
    """The peak RSS (MB) of the processes ``pick()`` returns, sampled every 50 ms."""

    def __init__(self, pick):
        super().__init__()
        self.pick, self.mb = pick, 0.0

    def sample(self) -> None:
        import psutil

        total = 0
        for proc in self.pick():
            try:
                total += proc.memory_info().rss
            except (psutil.Error, AttributeError):
                pass
        self.mb = max(self.mb, total / 2**20)


def big_body() -> bytes:
    """A valid small JPEG padded to 6.4 MB (decoders stop at its end marker): the upload
    is large, the decoding cheap, so the phase measures bodies, not the model."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.RandomState(7).randint(0, 255, (96, 96), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "JPEG")
    return buffer.getvalue() + bytes(BIG_BODY_BYTES - buffer.tell())


def concurrent_uploads(url: str, body: bytes, count: int) -> tuple[Counter, float]:
    """``count`` POSTs of ``body`` released at once, each sent once; answers by status
    (``transport``: no HTTP answer) and the seconds until the last answer."""
    import requests

    statuses, lock = Counter(), threading.Lock()
    barrier = threading.Barrier(count)

    def send():
        barrier.wait()
        try:
            answer = requests.post(url, data=body, timeout=300,
                                   headers={"Content-Type": "image/jpeg"})
            key = answer.status_code
            if key == 503:
                try:
                    key = f"503 {answer.json()['error']['code']}"
                except (ValueError, KeyError, TypeError):
                    key = "503 (MMS's own body)"
        except requests.RequestException:
            key = "transport"
        except Exception as exc:  # noqa: BLE001 - every request is counted, whatever ends it
            key = f"client error {type(exc).__name__}"
        with lock:
            statuses[key] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, time.monotonic() - started


def out_of_memory_lines(log_dir: Path) -> int:
    total = 0
    for path in Path(log_dir).glob("*.log"):
        total += path.read_text(errors="replace").count("OutOfMemoryError")
    return total


def raw_mms_uploads_phase(store: Path, work: Path, body: bytes) -> dict:
    """Phase 4 "before": the same uploads at MMS with nothing in front (serve's MMS settings:
    job queue 40, heap 756 MiB), run through the lifecycle as every MMS is."""
    import psutil

    from frame_infer.serving.lifecycle import ServeConfig, ServedModel
    from frame_infer.serving.mms import ModelSettings, ServerSettings

    config = ServeConfig(ServerSettings(store, port=free_port(), management_port=free_port(),
                                        run_dir=work / "raw-mms"),
                         (ModelSettings("ferplus.mar", "ferplus", batch_size=4,
                                        max_batch_delay_ms=10),), remove_run_dir="never")
    with ServedModel(config) as served:
        server = served.server
        java = psutil.Process(server.process.pid)
        ids = ManagementIds(server.management_url)
        with ids, Peak(lambda: [java]) as peak:
            statuses, took = concurrent_uploads(
                f"{server.inference_url}/predictions/ferplus", body, CONCURRENT)
        oom = out_of_memory_lines(server.log_dir)
    return {"phase": f"{CONCURRENT} concurrent 6.4 MB requests, raw MMS (before)",
            "statuses": statuses, "worker_restarts": ids.restarts, "oom": oom,
            "java_peak_mb": peak.mb, "seconds": took}


def front_uploads_phase(serve: Serve, body: bytes) -> dict:
    """Phase 4: the uploads at `frame-infer serve` (the front before MMS)."""
    import psutil

    java = serve.processes()[0]
    front = psutil.Process(serve.proc.pid)
    with WorkerIds(serve) as ids, Peak(lambda: [java]) as peak, Peak(lambda: [front]) as fp:
        statuses, took = concurrent_uploads(
            f"http://127.0.0.1:{serve.port}/predictions/ferplus", body, CONCURRENT)
    log_dir = re.findall(r"logs in (\S+);", serve.log.read_text())[-1]
    return {"phase": f"{CONCURRENT} concurrent 6.4 MB requests, `frame-infer serve` (front)",
            "statuses": statuses, "worker_restarts": ids.restarts,
            "oom": out_of_memory_lines(Path(log_dir)), "java_peak_mb": peak.mb,
            "front_peak_mb": fp.mb, "seconds": took}


class ManagementIds(WorkerIds):
    """:class:`WorkerIds` of a server given by its management URL."""

    def __init__(self, management_url: str):
        class Server:
            def workers(self):
                return management_workers(management_url)
        super().__init__(Server())


def s3_phase(store: Path, work: Path) -> list[dict]:
    """Phase 5: 300 references to one 20 MB object, then to 300 of them, in one request."""
    import io

    import numpy as np
    import requests
    from PIL import Image

    from tests.helpers.s3standin import S3StandIn, worker_env

    side = 2600  # a noise PNG of about 20 MB
    pixels = np.random.RandomState(3).randint(0, 255, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)
    data = buffer.getvalue()
    objects = {"big/one.png": data, **{f"big/{i}.png": data for i in range(CONCURRENT)}}
    stand_in = S3StandIn(objects)
    stand_in.server.handle_error = lambda *args: None  # bodies cut short by the client
    stand_in.start()
    serve = Serve(store, free_port(), free_port(), work / "serve-s3.log",
                  env=worker_env(stand_in.url, "frames"))
    rows = []
    try:
        serve.start()
        url = f"http://127.0.0.1:{serve.port}/predictions/ferplus"
        for what, keys in (("one 20 MB object", ["big/one.png"] * CONCURRENT),
                           (f"{CONCURRENT} distinct 20 MB objects",
                            [f"big/{i}.png" for i in range(CONCURRENT)])):
            before = serve.rss_mb()[1]
            workers = lambda: serve.processes()[1] + serve.processes()[2]  # noqa: E731
            gets_before = sum(stand_in.gets.values())
            body = json.dumps({"instances": [{"id": str(i), "s3": f"s3://frames/{key}"}
                                             for i, key in enumerate(keys)]})
            with Peak(workers) as peak:
                started = time.monotonic()
                answer = requests.post(url, data=body, timeout=300,
                                       headers={"Content-Type": "application/json"})
                took = time.monotonic() - started
            codes = Counter(p.get("error", {}).get("code", "predicted")
                            for p in answer.json().get("predictions", [])) \
                if answer.status_code == 200 else Counter({f"HTTP {answer.status_code}": 1})
            rows.append({"phase": f"one request of {CONCURRENT} references to {what} "
                                  f"({len(data) / 1e6:.1f} MB each)",
                         "codes": codes, "gets": sum(stand_in.gets.values()) - gets_before,
                         "worker_mb": (before, peak.mb, serve.rss_mb()[1]), "seconds": took})
    finally:
        serve.stop()
        stand_in.stop()
    return rows


def front_kill_phase(serve: Serve) -> list[dict]:
    """Phase 6: seconds from a handler kill behind the front to the first 200."""
    import glob

    import requests

    url = f"http://127.0.0.1:{serve.port}/predictions/ferplus"
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
                        "0000000a49444154789c6360000000020001e221bc330000000049454e44ae426082")
    run_dir = Path(re.findall(r"logs in (\S+);", serve.log.read_text())[-1]).parent
    rows = []
    for what in ("SIGTERM, then SIGKILL 0.5 s later, to the handler process",
                 "the worker's socket removed, then SIGKILL to the handler (MMS cannot "
                 "reconnect: the front restarts MMS)"):
        while not serve.ready_workers():
            time.sleep(0.2)  # polling: the previous round's worker
        handler = serve.processes()[2][0]
        started = time.monotonic()
        if what.startswith("SIGTERM"):
            handler.terminate()
            time.sleep(0.5)
        else:
            for path in glob.glob(str(run_dir / "tmp" / ".mms.sock.*")):
                if not path.endswith(".lock"):
                    os.remove(path)
        handler.kill()
        statuses, recovered = Counter(), None
        while time.monotonic() - started < 60:
            try:
                answer = requests.post(url, data=png, timeout=2,
                                       headers={"Content-Type": "image/png"})
                statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    recovered = time.monotonic() - started
                    break
            except requests.RequestException:
                statuses["no answer within 2 s"] += 1
            time.sleep(0.2)  # polling: one request every 0.2 s, as a client retrying
        rows.append({"phase": what, "statuses": statuses, "recovered_s": recovered})
    return rows


def write_bounds(rows4: list[dict], rows5: list[dict], rows6: list[dict]) -> list[str]:
    """The tables of phases 4-6 (markdown lines)."""
    def answers(statuses):
        return ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))

    lines = ["", "## Bounds (issue 21)", "",
             f"Stated figures: Java peak RSS under {BOUNDS['java_mb']} MB, worker growth "
             f"under {BOUNDS['worker_growth_mb']} MB, recovery within "
             f"{BOUNDS['recovered_s']:g} s.", "",
             "| phase | answers by status | worker restarts | `OutOfMemoryError` lines | "
             "Java peak RSS MB | front peak RSS MB | took s | within the bound |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows4:
        ok = (r["worker_restarts"] == 0 and r["oom"] == 0 and
              not any("507" in str(k) for k in r["statuses"]) and
              r["java_peak_mb"] < BOUNDS["java_mb"])
        front = f"{r['front_peak_mb']:.0f}" if "front_peak_mb" in r else "-"
        lines.append(f"| {r['phase']} | {answers(r['statuses'])} | {r['worker_restarts']} | "
                     f"{r['oom']} | {r['java_peak_mb']:.0f} | {front} | {r['seconds']:.1f} | "
                     f"**{'yes' if ok else 'no'}** |")
    lines += ["", "| S3 phase | per-image answers | GETs sent to S3 | worker RSS MB before → "
              "peak → after | took s | within the bound |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in rows5:
        before, peak, after = r["worker_mb"]
        ok = peak - before < BOUNDS["worker_growth_mb"]
        lines.append(f"| {r['phase']} | {answers(r['codes'])} | {r['gets']} | {before:.0f} → "
                     f"{peak:.0f} → {after:.0f} | {r['seconds']:.1f} | "
                     f"**{'yes' if ok else 'no'}** |")
    lines += ["", "| handler killed behind the front | answers until the first 200 | "
              "first 200 after s | within the bound |", "| --- | --- | --- | --- |"]
    for r in rows6:
        took = r["recovered_s"]
        ok = took is not None and took <= BOUNDS["recovered_s"]
        lines.append(f"| {r['phase']} | {answers(r['statuses'])} | "
                     f"{'never' if took is None else f'{took:.1f}'} | "
                     f"**{'yes' if ok else 'no'}** |")
    return lines


def bounds_held(rows4, rows5, rows6) -> bool:
    front4 = [r for r in rows4 if "front" in r["phase"]]
    return (all(r["worker_restarts"] == 0 and r["oom"] == 0 and r["java_peak_mb"] <
                BOUNDS["java_mb"] and not any("507" in str(k) for k in r["statuses"])
                for r in front4)
            and all(r["worker_mb"][1] - r["worker_mb"][0] < BOUNDS["worker_growth_mb"]
                    for r in rows5)
            and all(r["recovered_s"] is not None and r["recovered_s"] <= BOUNDS["recovered_s"]
                    for r in rows6))


def write_report(info: dict, rows: list[dict], path: Path, bounds: list[str] = ()) -> None:
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
    lines += list(bounds)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "soak")
    parser.add_argument("--save", action="store_true",
                        help="also write benchmarks/results/soak.md")
    parser.add_argument("--skip-raw", action="store_true",
                        help="skip the raw-MMS \"before\" row of the 6.4 MB uploads")
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
        body = big_body()
        rows4 = [front_uploads_phase(serve, body)]
        print(rows4[-1], flush=True)
        rows6 = front_kill_phase(serve)
        print(rows6, flush=True)
    finally:
        serve.stop()
    if not args.skip_raw:
        rows4.insert(0, raw_mms_uploads_phase(store, work, body))
        print(rows4[0], flush=True)
    rows5 = s3_phase(store, work)
    print(rows5, flush=True)
    facts = machine()
    info = {"date": facts["date"],
            "machine": f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB"}
    report = work / "soak.md"
    write_report(info, rows, report, write_bounds(rows4, rows5, rows6))
    if args.save:
        shutil.copy(report, RESULTS / "soak.md")
    print(report.read_text())
    print(f"soak took {time.monotonic() - started:.0f}s; report: {report}")
    lost_none = all(r["lost_after_rerun"] == 0 and r.get("lost_in_first_run", 0) == 0
                    and r.get("first_exit", 0) == 0 for r in rows)
    return 0 if lost_none and bounds_held(rows4, rows5, rows6) else 1


if __name__ == "__main__":
    sys.exit(main())
