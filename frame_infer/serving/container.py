"""SageMaker container entrypoint: ``serve`` runs MMS for the model in ``/opt/ml/model``.

SageMaker calls ``GET /ping`` and ``POST /invocations`` on port 8080. MMS 1.1.11 routes
``/invocations`` (no ``?model_name=``) only to a start-up model, and start-up models get
batch size 1 (hard-coded). So MMS runs on loopback, the model is registered through the
management API (batch size, delay, workers), and a small front on 8080 maps
``/invocations`` to ``/predictions/{model}`` and answers ``/ping`` from the worker status
(MMS's ``/ping`` says 200 even when unhealthy). The front (``front.py``) listens once a
worker is READY; if none is READY by the deadline, ``serve`` exits non-zero and
SageMaker fails the deployment. MMS's console log is copied to our stdout (SageMaker
sends the container's stdout to CloudWatch Logs), the handler's per-batch EMF records as
bare JSON lines, so CloudWatch turns them into metrics (``metrics.py``); the front serves
the same figures at ``GET /metrics``. This module is the container's lifecycle: settings,
finding the model, start, watch, stop.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

from ..errors import InputError
from .front import Front, FrontSettings, running_front
from .lifecycle import MetricsSettings, ServeConfig, ServedModel, StartupTimeout, Stopped
from .mms import DEFAULT_MAX_REQUEST_BYTES, ModelSettings, ServerError, ServerSettings
from .ports import free_port

MANIFEST = Path("MAR-INF") / "MANIFEST.json"


@dataclass(frozen=True)
class ContainerSettings:
    """What the entrypoint runs; each field's environment variable is in ``from_environ``."""

    model_dir: Path = Path("/opt/ml/model")
    host: str = "0.0.0.0"  # tests: 127.0.0.1
    port: int = 8080
    workers: int = 1
    batch_size: int = 8  # requests MMS aggregates into one handler call
    max_batch_delay_ms: int = 20
    startup_timeout_s: float = 300.0  # no READY worker by then: exit non-zero
    response_timeout_s: int = 60  # MMS rounds it up to whole minutes
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    job_queue_size: int = 0  # 0: derived from max_request_bytes (ServerSettings)
    java_heap_mb: int = 0  # 0: derived from the queue (ServerSettings)
    probe_interval_s: float = 10.0  # idle this long: the front sends the model a probe
    probe_timeout_s: float = 20.0  # a probe unanswered this long: /ping says Unhealthy
    front_memory_mb: int = 256  # request bodies the front holds in memory (then: temp files)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "ContainerSettings":
        """Read the settings from the environment (unset or empty: the default)."""
        def get(name: str, kind, default):
            value = environ.get(name, "")
            try:
                return kind(value) if value != "" else default
            except ValueError:
                raise InputError(f"environment {name}={value!r} is not {kind.__name__}") from None
        d = cls()
        return cls(
            model_dir=Path(get("FRAME_INFER_MODEL_DIR", str, str(d.model_dir))),
            host=get("FRAME_INFER_BIND_HOST", str, d.host),
            port=get("SAGEMAKER_BIND_TO_PORT", int, d.port),
            workers=get("SAGEMAKER_MODEL_SERVER_WORKERS", int, d.workers),
            batch_size=get("FRAME_INFER_BATCH_SIZE", int, d.batch_size),
            max_batch_delay_ms=get("FRAME_INFER_MAX_BATCH_DELAY_MS", int, d.max_batch_delay_ms),
            startup_timeout_s=get("FRAME_INFER_STARTUP_TIMEOUT_S", float, d.startup_timeout_s),
            response_timeout_s=get("SAGEMAKER_MODEL_SERVER_TIMEOUT", int, d.response_timeout_s),
            max_request_bytes=get("FRAME_INFER_MAX_REQUEST_BYTES", int, d.max_request_bytes),
            job_queue_size=get("FRAME_INFER_JOB_QUEUE_SIZE", int, d.job_queue_size),
            java_heap_mb=get("FRAME_INFER_JAVA_HEAP_MB", int, d.java_heap_mb),
            probe_interval_s=get("FRAME_INFER_PROBE_INTERVAL_S", float, d.probe_interval_s),
            probe_timeout_s=get("FRAME_INFER_PROBE_TIMEOUT_S", float, d.probe_timeout_s),
            front_memory_mb=get("FRAME_INFER_FRONT_MEMORY_MB", int, d.front_memory_mb))

    def front(self) -> FrontSettings:
        """The front's settings: this address, limits and probe timing."""
        return FrontSettings(host=self.host, port=self.port,
                             max_request_bytes=self.max_request_bytes,
                             batch_size=self.batch_size, workers=self.workers,
                             response_timeout_s=self.response_timeout_s,
                             memory_bytes=self.front_memory_mb * 1024 * 1024,
                             probe_interval_s=self.probe_interval_s,
                             probe_timeout_s=self.probe_timeout_s)


def find_model(model_dir: Path) -> tuple[Path, str, str]:
    """(model store, URL to register, model name) for a model dir laid out by SageMaker.

    Accepted: one ``NAME.mar`` in ``model_dir``; one unpacked archive (a folder with
    ``MAR-INF/MANIFEST.json``) in it; or ``model_dir`` itself unpacked.
    """
    model_dir = Path(model_dir).resolve()
    if not model_dir.is_dir():
        raise ServerError(f"model directory {model_dir} does not exist (SageMaker unpacks "
                          "ModelDataUrl's model.tar.gz there)")
    if (model_dir / MANIFEST).is_file():
        found = [model_dir]
    else:
        found = sorted(p for p in model_dir.iterdir()
                       if (p.suffix == ".mar" and p.is_file()) or (p / MANIFEST).is_file())
    if len(found) != 1:
        raise ServerError(f"expected exactly one .mar file or unpacked model archive in "
                          f"{model_dir}, found {[p.name for p in found]}; package it with "
                          "`frame-infer package` and deploy with `frame-infer deploy`")
    chosen = found[0]
    if chosen.suffix == ".mar":
        return model_dir, chosen.name, chosen.stem
    try:
        name = json.loads((chosen / MANIFEST).read_text())["model"]["modelName"]
    except (OSError, ValueError, KeyError, TypeError):
        name = chosen.name
    return chosen.parent, chosen.name, name


def _say(message: str, stream=None) -> None:
    print(f"frame-infer serve: {message}", file=stream or sys.stdout, flush=True)


def serve_config(settings: ContainerSettings, log_to: BinaryIO | None = None) -> ServeConfig:
    """MMS on free loopback ports for the model in ``settings.model_dir``, registered with
    the container's batching, under its start-up deadline; ``log_to``: where MMS's console
    goes (the container's stdout), with the metrics read from it."""
    store, url, name = find_model(settings.model_dir)
    # The worker sockets go in the run dir, made in TMPDIR; a Unix socket path may not
    # exceed 107 bytes, and MMS would only time out.
    sock_path = (Path(tempfile.gettempdir()).resolve() / "frame-infer-mms-xxxxxxxx" / "tmp"
                 / ".mms.sock.9000")
    if len(str(sock_path)) > 107:
        raise ServerError(f"TMPDIR is too deep for MMS's worker sockets ({sock_path}); "
                          "set TMPDIR to a short path such as /tmp")
    server = ServerSettings(model_store=store, port=free_port(), management_port=free_port(),
                            max_request_bytes=settings.max_request_bytes,
                            response_timeout_s=settings.response_timeout_s,
                            job_queue_size=settings.job_queue_size or None,
                            heap_mb=settings.java_heap_mb or None)
    model = ModelSettings(archive=url, name=name, batch_size=settings.batch_size,
                          max_batch_delay_ms=settings.max_batch_delay_ms,
                          workers=settings.workers)
    # The metrics reader always runs: the front's health check reads MMS's worker retries.
    return ServeConfig(server, (model,), startup_timeout_s=settings.startup_timeout_s,
                       metrics=MetricsSettings(copy_to=log_to), remove_run_dir="always")


class ContainerModel(ServedModel):
    """The container's MMS: says Java's pid before registering, and when no worker is READY
    by the deadline raises ServerError with the cause and MMS's log tail (its run dir
    is removed: the container's logs are its stdout and stderr)."""

    def __init__(self, settings: ContainerSettings, log_to: BinaryIO | None = None):
        super().__init__(serve_config(settings, log_to), on_started=self._started)
        self.settings = settings

    def _started(self, mms) -> None:
        model = self.config.models[0]
        _say(f"MMS pid {mms.process.pid} on {mms.inference_url}; registering "
             f"{model.archive} as {model.name}")

    def start(self) -> "ContainerModel":
        try:
            return super().start()
        except (ServerError, OSError) as exc:
            tail = self.failure_log
            cause = (re.findall(r"WorkerLifeCycle - (\w*(?:Error|Exception): .*)", tail)
                     or ["see the log below"])[-1]
            why = (f"no READY worker within {self.settings.startup_timeout_s:g}s "
                   "(FRAME_INFER_STARTUP_TIMEOUT_S)" if isinstance(exc, StartupTimeout)
                   else " ".join(str(exc).split("\n--- ")[0].split()))
            raise ServerError(f"model {self.name} from {self.settings.model_dir} did not "
                              f"become ready: {why}; cause: {cause}\n{tail}") from exc


def start_model(settings: ContainerSettings, log_to: BinaryIO | None = None) -> ContainerModel:
    """MMS on loopback with the model READY while a ``with`` block on the result runs
    (stopped by pid after it); ``log_to``: see :func:`serve_config`."""
    return ContainerModel(settings, log_to)


@contextlib.contextmanager
def serving_front(settings: ContainerSettings, served: ServedModel) -> Iterator[Front]:
    """The front on ``settings.host:port`` before ``served`` while the block runs
    (:func:`running_front` with the container's settings)."""
    with running_front(served, settings.front()) as front:
        yield front


def serve(settings: ContainerSettings) -> int:
    """Run until SIGTERM/SIGINT (0) or until MMS dies or never gets ready (1); a signal
    before the model is ready exits 128 + its number, MMS stopped."""
    ready = False
    try:
        with start_model(settings, sys.stdout.buffer) as served:
            ready = True
            code = _serve_front(settings, served)
    except ServerError as exc:  # before ready: the model did not start
        _say(f"error: {exc}", sys.stderr)
        return 1
    except Stopped as stop:
        if not ready:
            return stop.exit_code
        code = 0
    _say("stopped")
    return code


def _serve_front(settings: ContainerSettings, served: ServedModel) -> int:
    mms, name = served.server, served.name
    try:
        with serving_front(settings, served):
            _say(f"ready: model {name} at http://{settings.host}:{settings.port}/invocations "
                 f"(batch_size {settings.batch_size}, max_batch_delay "
                 f"{settings.max_batch_delay_ms} ms, workers {settings.workers}, job queue "
                 f"{mms.job_queue_size}, Java heap {mms.heap_mb} MiB; management "
                 f"{mms.management_url}; logs {mms.log_dir})")
            if not served.wait():
                _say("error: MMS exited unexpectedly:\n" + mms.log_tail(), sys.stderr)
                return 1
    except OSError as exc:
        _say(f"error: cannot listen on {settings.host}:{settings.port}: {exc}", sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``serve [--model-dir D] [--host H] [--port P]``; everything else from the environment."""
    parser = argparse.ArgumentParser(prog="serve", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--model-dir", type=Path,
                        help="default $FRAME_INFER_MODEL_DIR or /opt/ml/model")
    parser.add_argument("--host", help="default $FRAME_INFER_BIND_HOST or 0.0.0.0")
    parser.add_argument("--port", type=int, help="default $SAGEMAKER_BIND_TO_PORT or 8080")
    args = parser.parse_args(argv)
    try:
        settings = ContainerSettings.from_environ(os.environ)
    except ValueError as exc:
        _say(f"error: {exc}", sys.stderr)
        return 2
    given = {"model_dir": args.model_dir, "host": args.host, "port": args.port}
    return serve(replace(settings, **{k: v for k, v in given.items() if v is not None}))


if __name__ == "__main__":
    sys.exit(main())
