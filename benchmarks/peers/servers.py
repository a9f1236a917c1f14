"""The servers compared, each started the way its documentation recommends for this
machine's cores, on loopback ports in 20000-32000, and stopped by pid.

:data:`SERVERS` lists them in table order: the project (``frame-infer serve``'s MMS +
onnxruntime, started through :class:`~frame_infer.serving.lifecycle.ServedModel`, the one
way MMS is run), then the peers (apps in this package). ``start(name, ...)`` is a context
manager giving a :class:`Running`: the URL to post to, the server's CPU seconds so far,
and the images of every forward so far.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from frame_infer.serving.ports import free_port, port_in_use

from .core import MODEL_DIR_ENV, STATS_ENV, THREADS_ENV, read_forwards
from .processes import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    name: str
    label: str
    """Short, for tables and charts."""
    setting: str
    """What is configured, and the documentation page it follows."""
    needs: tuple[str, ...] = ()
    """Modules that must be importable (the peer packages, ``.[peers]``)."""

    def missing(self) -> list[str]:
        return [m for m in self.needs if importlib.util.find_spec(m) is None]


SERVERS = (
    Server("frame-infer", "frame-infer (MMS)",
           "MMS + onnxruntime, 2 workers of 1 thread, no MMS batching (the best served "
           "setting of `make bench` row 6), through ServedModel"),
    Server("litserve", "LitServe",
           "workers_per_device=2 on accelerator=cpu, max_batch_size=4 requests, "
           "batch_timeout=0.01 (lightning.ai/docs/litserve: features/batching, "
           "api-reference/litserver)", ("litserve",)),
    Server("ray", "Ray Serve",
           "@serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01), num_replicas=2 of "
           "num_cpus=1 (docs.ray.io: serve/advanced-guides/dyn-req-batch)",
           ("ray", "starlette")),
    Server("bentoml", "BentoML",
           "front service + model service with workers=\"cpu_count\" and adaptive batching "
           "(batchable=True, max_batch_size=64 images) (docs.bentoml.com: "
           "guides/adaptive-batching, guides/workers)", ("bentoml", "fastapi")),
    Server("fastapi", "FastAPI + uvicorn",
           "uvicorn --workers 2, no batching (fastapi.tiangolo.com/deployment/"
           "server-workers)", ("fastapi", "uvicorn")),
)
BY_NAME = {s.name: s for s in SERVERS}


@dataclass
class Running:
    pid: int
    """The server's leader process (its process group)."""
    url: str
    cpu_seconds: Callable[[], float]
    forwards: Callable[[], list[int]]


def _free_block(size: int) -> int:
    """The first of ``size`` consecutive free loopback ports in 20000-32000."""
    for _ in range(200):
        first = free_port(20000, 32000 - size)
        if not any(port_in_use(first + i) for i in range(size)):
            return first
    raise RuntimeError(f"no {size} consecutive free ports in 20000-32000")


def _peer_env(model_dir: Path, stats: Path, threads: int) -> dict:
    return {MODEL_DIR_ENV: str(model_dir), STATS_ENV: str(stats), THREADS_ENV: str(threads),
            "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT),
            # no telemetry calls out (there is no network), no update checks
            "RAY_USAGE_STATS_ENABLED": "0", "BENTOML_DO_NOT_TRACK": "True",
            "DO_NOT_TRACK": "1", "LITSERVE_DISABLE_TELEMETRY": "1"}


def _command(name: str, port: int, work: Path, cores: int) -> tuple[list[str], str, str]:
    """(command, path to post to, readiness path) of a peer; a temp folder it needs goes
    under ``work`` or is named ``/tmp/fi-ray-*`` (removed by :func:`start_peer`)."""
    python = sys.executable
    if name == "fastapi":
        return ([python, "-m", "uvicorn", "benchmarks.peers.fastapi_app:app", "--host",
                 "127.0.0.1", "--port", str(port), "--workers", str(cores), "--log-level",
                 "warning"], "/predict", "/health")
    if name == "litserve":
        return ([python, "-m", "benchmarks.peers.litserve_app", "--port", str(port),
                 "--workers", str(cores)], "/predict", "/health")
    if name == "ray":
        temp = Path(tempfile.mkdtemp(prefix="fi-ray-", dir="/tmp"))  # short: socket paths
        return ([python, "-m", "benchmarks.peers.ray_app", "--port", str(port),
                 "--ports-from", str(_free_block(40)), "--temp-dir", str(temp),
                 "--replicas", str(cores)], "/", "/-/healthz")
    if name == "bentoml":
        return ([str(Path(python).with_name("bentoml")), "serve",
                 "benchmarks.peers.bento_app:Front", "--host", "127.0.0.1", "--port",
                 str(port)], "/v1/predict", "/readyz")
    if name == "standin":  # the harness's own tests
        return ([python, "-m", "benchmarks.peers.standin", "--port", str(port)],
                "/predict", "/health")
    raise KeyError(name)


@contextlib.contextmanager
def start_peer(name: str, model_dir: Path, work: Path, cores: int | None = None,
               extra_args: tuple[str, ...] = ()) -> Iterator[Running]:
    cores = cores or os.cpu_count() or 1
    port = free_port()
    stats = Path(tempfile.mkdtemp(prefix=f"{name}-stats-", dir=work))
    command, path, ready = _command(name, port, work, cores)
    threads = cores if name == "standin" else 1  # one process (or replica) per core
    try:
        with ServerProcess([*command, *extra_args], f"http://127.0.0.1:{port}{ready}",
                           work / f"{name}.log", env=_peer_env(model_dir, stats, threads),
                           cwd=ROOT) as proc:
            yield Running(proc.process.pid, f"http://127.0.0.1:{port}{path}",
                          proc.cpu_seconds, lambda: read_forwards(stats))
    finally:
        for arg in command:  # Ray's session folder (its sockets need a short path)
            if arg.startswith("/tmp/fi-ray-"):
                shutil.rmtree(arg, ignore_errors=True)


_BATCH_LINE = re.compile(rb"batch: requests=\d+ images=(\d+)")


@contextlib.contextmanager
def start_project(store: Path, work: Path, workers: int = 2) -> Iterator[Running]:
    """``frame-infer serve``'s server: MMS with the .mar on onnxruntime, through
    :class:`ServedModel`; images per forward from the handler's "batch:" log lines."""
    import psutil

    from frame_infer.serving.lifecycle import ServeConfig, ServedModel
    from frame_infer.serving.mms import ModelSettings, ServerSettings

    run_dir = Path(tempfile.mkdtemp(prefix="mms-", dir=work))
    config = ServeConfig(
        ServerSettings(model_store=store, port=free_port(), management_port=free_port(),
                       run_dir=run_dir, extra_env={"FRAME_INFER_ENGINE": "onnxruntime"}),
        (ModelSettings("ferplus.mar", "ferplus", batch_size=1, max_batch_delay_ms=10,
                       workers=workers),), handle_signals=False)
    with ServedModel(config) as served:
        java = psutil.Process(served.server.process.pid)

        def cpu() -> float:
            total = 0.0
            for proc in [java, *java.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
            return total

        def forwards() -> list[int]:  # the console only: mms_log.log has each line twice
            log = served.server.stdout_log
            return [int(n) for n in _BATCH_LINE.findall(log.read_bytes())] \
                if log.is_file() else []

        yield Running(java.pid, f"{served.server.inference_url}/predictions/ferplus", cpu,
                      forwards)


def start(name: str, *, model_dir: Path, store: Path, work: Path,
          cores: int | None = None):
    if name == "frame-infer":
        return start_project(store, work)
    return start_peer(name, model_dir, work, cores)
