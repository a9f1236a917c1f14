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
import json
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from ..errors import InputError
from .front import Front
from .metrics import MMSLogReader, ServingMetrics, follow
from .mms import (DEFAULT_MAX_REQUEST_BYTES, LocalMMS, ModelSettings, ServerError,
                  ServerSettings, worker_threads)
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
            probe_timeout_s=get("FRAME_INFER_PROBE_TIMEOUT_S", float, d.probe_timeout_s))


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


def start_model(settings: ContainerSettings) -> tuple[LocalMMS, str]:
    """Start MMS on loopback and register the model; ServerError when no worker is READY
    by the deadline (a watchdog kills MMS then: no wait, however hung, outlasts it)."""
    store, url, name = find_model(settings.model_dir)
    ports = free_port(), free_port()
    mms = LocalMMS(ServerSettings(model_store=store, port=ports[0], management_port=ports[1],
                                  max_request_bytes=settings.max_request_bytes,
                                  response_timeout_s=settings.response_timeout_s,
                                  job_queue_size=settings.job_queue_size or None,
                                  heap_mb=settings.java_heap_mb or None))
    sock_path = mms.run_dir / "tmp" / ".mms.sock.9000"
    if len(str(sock_path)) > 107:  # Unix socket path limit; MMS would only time out
        mms.cleanup()
        raise ServerError(f"TMPDIR is too deep for MMS's worker sockets ({sock_path}); "
                          "set TMPDIR to a short path such as /tmp")
    deadline, expired = settings.startup_timeout_s, threading.Event()

    def expire() -> None:  # kill, keeping the handle: LocalMMS's waits see "exited" at once
        expired.set()
        if mms.process is not None:
            os.killpg(mms.process.pid, signal.SIGKILL)
    watchdog = threading.Timer(deadline, expire)
    watchdog.start()
    try:  # LocalMMS's own timeouts lie past the deadline: the watchdog decides
        mms.start(threads=worker_threads(settings.workers), timeout=deadline + 30)
        _say(f"MMS pid {mms.process.pid} on {mms.inference_url}; registering {url} as {name}")
        mms.register(ModelSettings(archive=url, name=name, batch_size=settings.batch_size,
                                   max_batch_delay_ms=settings.max_batch_delay_ms,
                                   workers=settings.workers), timeout=deadline + 30)
        if expired.is_set():
            raise ServerError("deadline passed")
    except BaseException as exc:
        watchdog.cancel()
        tail = mms.log_tail()
        mms.stop()
        mms.cleanup()
        if not isinstance(exc, (ServerError, OSError)):
            raise
        cause = (re.findall(r"WorkerLifeCycle - (\w*(?:Error|Exception): .*)", tail)
                 or ["see the log below"])[-1]
        why = (f"no READY worker within {deadline:g}s (FRAME_INFER_STARTUP_TIMEOUT_S)"
               if expired.is_set() else " ".join(str(exc).split("\n--- ")[0].split()))
        raise ServerError(f"model {name} from {settings.model_dir} did not become ready: "
                          f"{why}; cause: {cause}\n{tail}") from exc
    watchdog.cancel()
    return mms, name


def serve(settings: ContainerSettings) -> int:
    """Run until SIGTERM/SIGINT (0) or until MMS dies or never gets ready (1)."""
    stop, ready = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame) -> None:
        if not stop.is_set() and not ready.is_set():  # still starting: abandon the start
            stop.set()
            raise SystemExit(128 + signum)
        stop.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        mms, name = start_model(settings)
    except ServerError as exc:
        _say(f"error: {exc}", sys.stderr)
        return 1
    ready.set()  # from here a signal only sets ``stop``: the finally below cleans up
    front, code, metrics = None, 0, ServingMetrics()
    threading.Thread(target=follow, args=(mms.run_dir / "mms.stdout.log",
                                          MMSLogReader(metrics), stop, sys.stdout.buffer),
                     daemon=True).start()
    try:
        front = Front((settings.host, settings.port), mms, name, settings, metrics)
        threading.Thread(target=front.serve_forever, daemon=True).start()
        threading.Thread(target=front.health.run, args=(stop,), daemon=True).start()
        _say(f"ready: model {name} at http://{settings.host}:{settings.port}/invocations (batch"
             f"_size {settings.batch_size}, max_batch_delay {settings.max_batch_delay_ms} ms, "
             f"workers {settings.workers}, job queue {mms.job_queue_size}, Java heap "
             f"{mms.heap_mb} MiB; management {mms.management_url}; logs {mms.log_dir})")
        while not stop.wait(1.0):
            if mms.process is None or mms.process.poll() is not None:
                _say("error: MMS exited unexpectedly:\n" + mms.log_tail(), sys.stderr)
                code = 1
                break
    except OSError as exc:
        _say(f"error: cannot listen on {settings.host}:{settings.port}: {exc}", sys.stderr)
        code = 1
    finally:
        shut_down(front, mms)
        _say("stopped")
    return code


def shut_down(front: Front | None, mms: LocalMMS) -> None:
    """Stop the front (if it started) and MMS by pid, and remove MMS's run folder."""
    if front is not None:
        front.shutdown()
        front.server_close()
    mms.stop()
    mms.cleanup()


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
