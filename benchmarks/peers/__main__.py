"""``make bench-peers``: the project's served path against the servers a user would pick
instead, side by side in one run on this machine.

For each server (:data:`~benchmarks.peers.servers.SERVERS`): start it, send the whole
workload once unmeasured (warm-up: JIT, thread pools, batch windows), then at each
concurrency send it :data:`~benchmarks.tables.REPEATS` times, keep the median run with the
range, and check every image's answer against onnxruntime in this process. A server that
drops or alters an answer, or fails, is listed with what went wrong and is not ranked; a
peer whose packages are not installed is listed as such. Writes
``build/bench-peers/peers.{md,json,png}`` and each server's log in ``logs/`` there;
``--save`` also writes the three files to ``benchmarks/results/``.

    python -m benchmarks.peers [--frames 600] [--servers frame-infer,fastapi] [--save]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .load import TOLERANCE, Workload, build_workload, check, send_all
from .servers import BY_NAME, SERVERS, start

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
QUIET_LOAD = 1.5
"""Above this 1-minute load average at the start, the table and chart say the machine was
not quiet (other work shares the cores being measured)."""


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def measure(name: str, workload: Workload, concurrencies: list[int], repeats: int,
            model_dir: Path, store: Path, work: Path, logs: Path) -> list[dict]:
    """One row per concurrency for server ``name`` (or one row saying why none); the
    server's own log is kept in ``logs`` (MMS's: its run dir's ``*.log``)."""
    server = BY_NAME[name]
    base = {"server": name, "label": server.label, "setting": server.setting}
    missing = server.missing()
    if missing:
        return [{**base, "status": f"not installed ({', '.join(missing)}): "
                 "pip install -c constraints.txt -e '.[peers]'", "ranked": False}]
    rows = []
    try:
        with start(name, model_dir=model_dir, store=store, work=work) as running:
            send_all(running.url, workload, max(concurrencies))  # warm-up, unmeasured
            for concurrency in concurrencies:
                runs = []
                for _ in range(repeats):
                    cpu0, fw0 = running.cpu_seconds(), len(running.forwards())
                    result = send_all(running.url, workload, concurrency)
                    cpu, forwards = running.cpu_seconds() - cpu0, running.forwards()[fw0:]
                    verdict = check(result, workload)
                    runs.append({"images_s": workload.images / result.wall_s,
                                 "wall_s": result.wall_s,
                                 "p50_ms": percentile(result.latencies, 50),
                                 "p99_ms": percentile(result.latencies, 99),
                                 "cpu_s": cpu, "forwards": len(forwards),
                                 "images_per_forward": (sum(forwards) / len(forwards)
                                                        if forwards else None),
                                 "answered": verdict.answered, "max_dp": verdict.max_dp,
                                 "errors": len(result.errors),
                                 "problems": list(verdict.problems)})
                rows.append(summarise(base, concurrency, runs, workload.images))
                print(f"    {server.label}, {concurrency} in flight: "
                      f"{rows[-1]['images_s']:.1f} images/s ({rows[-1]['status']})",
                      flush=True)
    except Exception as exc:  # noqa: BLE001 - a failing peer is reported, not hidden
        rows.append({**base, "status": f"failed: {type(exc).__name__}: "
                     f"{str(exc)[-600:]}", "ranked": False})
        print(f"    {server.label}: {rows[-1]['status']}", flush=True)
    finally:
        logs.mkdir(parents=True, exist_ok=True)
        mms_logs = work.glob("mms-*/**/*.log") if name == "frame-infer" else []
        for log in [work / f"{name}.log", *mms_logs]:
            if log.is_file():
                shutil.copy(log, logs / f"{name}-{log.name}")
    return rows


def summarise(base: dict, concurrency: int, runs: list[dict], images: int) -> dict:
    """The median run (by images/s) with the range; answers judged over every run."""
    ordered = sorted(runs, key=lambda r: r["images_s"])
    median = ordered[len(ordered) // 2]
    answered = min(r["answered"] for r in runs)
    dps = [r["max_dp"] for r in runs if r["max_dp"] == r["max_dp"]]
    max_dp = max(dps) if dps else float("nan")
    if answered < images:
        status = f"dropped: {images - answered} of {images} images unanswered in a run"
    elif not max_dp <= TOLERANCE:
        status = f"altered: |Δp| up to {max_dp:.3g}"
    else:
        status = "ok"
    problems = [p for r in runs for p in r["problems"]][:5]
    return {**base, "concurrency": concurrency, "runs": len(runs),
            "images_s": median["images_s"], "images_s_min": ordered[0]["images_s"],
            "images_s_max": ordered[-1]["images_s"], "p50_ms": median["p50_ms"],
            "p99_ms": median["p99_ms"], "cpu_s": median["cpu_s"],
            "images_per_forward": median["images_per_forward"], "answered": answered,
            "images": images, "max_dp": max_dp, "errors": sum(r["errors"] for r in runs),
            "problems": problems, "status": status, "ranked": status == "ok"}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("multi-model-server", "litserve", "ray", "bentoml", "fastapi",
                    "uvicorn"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=600,
                        help="frames of the 20 s 30 FPS sample video (600: all)")
    parser.add_argument("--per-request", type=int, default=16)
    parser.add_argument("--concurrency", default="4,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--servers", default=",".join(s.name for s in SERVERS))
    parser.add_argument("--label", default="",
                        help="what kind of run this is, e.g. 'smoke run, load 5' (in the table)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-peers")
    parser.add_argument("--save", action="store_true",
                        help="also write peers.{md,json,png} to benchmarks/results/")
    args = parser.parse_args(argv)
    from frame_infer.client.extract import extract_frames, make_sample_video
    from frame_infer.models import packager, testgen

    from ..meters import machine
    from ..tables import write_peers

    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="frame-infer-peers-"))
    try:
        model_dir = work / "model"
        model = testgen.write_test_model("ferplus", model_dir / "ferplus.onnx")
        store = work / "store"
        packager.build_archive(model, "ferplus", store)
        video = make_sample_video(work / "sample.mp4", seconds=20, fps=30)
        extract_frames(video, work / "frames", progress=False)
        files = sorted((work / "frames").glob("*.jpg"))[:args.frames]
        workload = build_workload(files, model_dir, args.per_request)
        load = _loadavg()[0]
        label = args.label or (f"not a quiet machine: load average {load:.1f} at the start"
                               if load > QUIET_LOAD else "")
        info = {**machine(), "load_average": [round(x, 2) for x in _loadavg()],
                "versions": versions(), "frames": workload.images,
                "per_request": args.per_request, "repeats": args.repeats, "label": label}
        print(f"machine: {info}", flush=True)
        rows = []
        for name in args.servers.split(","):
            print(f"[{time.perf_counter() - began:.0f}s] {name}", flush=True)
            rows += measure(name, workload, [int(c) for c in args.concurrency.split(",")],
                            args.repeats, model_dir, store, work, args.out / "logs")
        info["load_average_end"] = [round(x, 2) for x in _loadavg()]
        info["seconds"] = round(time.perf_counter() - began)
        write_peers(info, rows, args.out)
        if args.save:
            for name in ("peers.md", "peers.json", "peers.png"):
                shutil.copy(args.out / name, RESULTS / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _loadavg() -> tuple[float, float, float]:
    import os

    return os.getloadavg()


if __name__ == "__main__":
    sys.exit(main())
