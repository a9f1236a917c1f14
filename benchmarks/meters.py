"""Measuring instruments of ``make bench``: progress lines, the machine, rates and
percentiles, the model's FLOPs and the GEMM peak, and what a served run costs (worker
RSS, CPU seconds per process, request latencies)."""
from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path

import numpy as np

from frame_infer.client.targets import HttpTarget
from frame_infer.serving.mms import LocalMMS


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


class Sampler:
    """Calls :meth:`sample` every :attr:`interval` seconds on a daemon thread, from the
    ``with`` block's start to its end (the soak's meters share it)."""

    interval = 0.05

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class RssSampler(Sampler):
    """Peak RSS of MMS's handler processes, sampled every 50 ms in a thread.

    The handler processes are looked up once, not at every sample: walking /proc for
    every process's children, command line and parent took 1.8 ms of the client's CPU
    per sample, about 0.2 s per served run of 600 frames on the cores being measured."""

    def __init__(self, server: LocalMMS):
        import psutil

        super().__init__()
        self._java = psutil.Process(server.process.pid)
        self._handlers: list = []
        self.peak = 0

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

    def sample(self) -> None:
        self.peak = max(self.peak, self.current())


class CpuMeter:
    """CPU seconds a run costs: MMS's Python workers, its Java frontend, and the client:
    this process plus the commands it ran and waited for meanwhile (row 7 runs
    ``frame-infer run`` itself: cutting, shrinking, sending, the report, and Python's
    start-up). On one machine they share its cores, so together with the wall time they
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
        import resource

        waited = resource.getrusage(resource.RUSAGE_CHILDREN)  # commands that have ended
        return {"java": self._cpu(self._java),
                "client": self._cpu(self._me) + waited.ru_utime + waited.ru_stime,
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
