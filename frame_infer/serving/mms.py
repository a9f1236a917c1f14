"""Run Multi Model Server locally: config, start (Java, by pid), register, readiness, stop.

MMS's own launcher (``multi-model-server --start``) forks Java, writes a pid file into
``$TMPDIR`` and returns 0 even when Java is missing. We start the Java frontend
ourselves, in its own process group, so we own its pid, its temp dir and its logs,
and can always stop it (and its Python workers).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from model_handler.wire import MMS_MAX_REQUEST_BYTES as DEFAULT_MAX_REQUEST_BYTES

from ..errors import ServerError  # noqa: F401 (re-exported)


def free_port(low: int = 20000, high: int = 32000) -> int:
    """A loopback port that is free now, below 32768: MMS rejects higher port numbers
    ("Invalid port number"), and the kernel's ephemeral ports all lie above that."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(low, high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerError(f"no free loopback port between {low} and {high}")


def java_command() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise ServerError("java not found: Multi Model Server needs Java 8+; install it "
                          "(Debian: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME")
    return java


@dataclass
class ServerSettings:
    model_store: Path
    port: int = 8080
    management_port: int = 8081
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    response_timeout_s: int = 120
    """How long a worker may take for one batch before MMS gives up on it."""
    run_dir: Path | None = None
    """Temp dir, logs and config of this server; a new temp folder when None."""
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelSettings:
    archive: str
    """File name of the .mar inside the model store (or a URL MMS accepts)."""
    name: str
    batch_size: int = 8
    max_batch_delay_ms: int = 20
    workers: int = 1


def worker_threads(workers: int) -> int:
    """Threads per worker so that all workers together use every core once."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class LocalMMS:
    """One MMS server process on loopback. Use as a context manager: it always stops."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self._owns_run_dir = settings.run_dir is None
        self.run_dir = Path(settings.run_dir or tempfile.mkdtemp(prefix="frame-infer-mms-")).resolve()
        self.log_dir = self.run_dir / "logs"
        self.process: subprocess.Popen | None = None

    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.management_port}"

    def write_config(self) -> Path:
        s = self.settings
        lines = [
            f"inference_address=http://127.0.0.1:{s.port}",
            f"management_address=http://127.0.0.1:{s.management_port}",
            f"model_store={Path(s.model_store).resolve()}",
            # Malformed JSON must reach the handler (400), not kill the worker.
            "decode_input_request=false",
            # preload_model=true breaks batching and GPU assignment.
            "preload_model=false",
            f"max_request_size={s.max_request_bytes}",
            f"max_response_size={max(s.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES)}",
            f"default_response_timeout_seconds={s.response_timeout_s}",
            "job_queue_size=1000",
        ]
        path = self.run_dir / "config.properties"
        path.write_text("\n".join(lines) + "\n")
        return path

    def environment(self, threads: int) -> dict[str, str]:
        tmp = self.run_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "TMPDIR": str(tmp), "TEMP": str(tmp),  # pid file and worker sockets: ours alone
            "LOG_LOCATION": str(self.log_dir), "METRICS_LOCATION": str(self.log_dir),
            # MMS forces 1 thread per worker unless these are set.
            "OMP_NUM_THREADS": str(threads),
        })
        env.update(self.settings.extra_env)
        return env

    def start(self, threads: int | None = None, timeout: float = 60.0) -> "LocalMMS":
        """Start Java MMS and wait until its management API answers."""
        import mms

        java = java_command()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        mms_home = Path(mms.__file__).resolve().parent.parent
        cmd = [java, f"-Dmodel_server_home={mms_home}",
               f"-Djava.io.tmpdir={self.run_dir / 'tmp'}",
               "-cp", f".:{mms_home / 'mms' / 'frontend' / '*'}",
               "com.amazonaws.ml.mms.ModelServer",
               "--python", sys.executable, "-f", str(config),
               "-s", str(Path(self.settings.model_store).resolve())]
        stdout = open(self.run_dir / "mms.stdout.log", "wb")
        try:
            self.process = subprocess.Popen(
                cmd, cwd=self.run_dir, env=self.environment(threads or worker_threads(1)),
                stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            stdout.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"MMS exited with {self.process.returncode} at start:\n"
                                  + self.log_tail())
            try:
                self._request("GET", self.management_url + "/models", timeout=2)
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        raise ServerError(f"MMS did not answer on {self.management_url} within {timeout}s:\n"
                          + self.log_tail())

    def register(self, model: ModelSettings, timeout: float = 120.0) -> dict:
        """Register through the management API (the only way batching can be set)."""
        query = urllib.parse.urlencode({
            "url": model.archive, "model_name": model.name, "batch_size": model.batch_size,
            "max_batch_delay": model.max_batch_delay_ms, "initial_workers": model.workers,
            "synchronous": "true", "response_timeout": self.settings.response_timeout_s})
        try:
            self._request("POST", f"{self.management_url}/models?{query}", timeout=timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise ServerError(f"registering {model.archive} failed ({exc.code}): {detail}\n"
                              + self.log_tail()) from exc
        return self.wait_ready(model.name, model.workers, timeout=timeout)

    def model_status(self, name: str) -> dict:
        body = self._request("GET", f"{self.management_url}/models/{name}", timeout=5)
        status = json.loads(body)
        return status[0] if isinstance(status, list) else status

    def wait_ready(self, name: str, workers: int = 1, timeout: float = 120.0) -> dict:
        """Poll the management API until ``workers`` workers are READY."""
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(f"MMS exited with {self.process.returncode}:\n"
                                  + self.log_tail())
            try:
                status = self.model_status(name)
                ready = [w for w in status.get("workers", []) if w.get("status") == "READY"]
                if len(ready) >= workers:
                    return status
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        raise ServerError(f"model {name} has no {workers} READY workers after {timeout}s "
                          f"(status: {status.get('workers')}):\n" + self.log_tail())

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for log in ("mms_log.log", "model_log.log"):
            path = self.log_dir / log
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(text))
        out = self.run_dir / "mms.stdout.log"
        if out.exists():
            parts.append(f"--- {out} ---\n"
                         + "\n".join(out.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Java and its workers by pid (the whole process group)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # workers may outlive Java: the group goes in any case
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def cleanup(self) -> None:
        if self._owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> "LocalMMS":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def _request(method: str, url: str, timeout: float) -> bytes:
        req = urllib.request.Request(url, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()


def serve_model(store: Path, archive: str, name: str, port: int, management_port: int,
                batch_size: int, max_batch_delay_ms: int, workers: int,
                run_dir: Path | None = None) -> LocalMMS:
    """Start MMS and register one model; returns the running server (caller stops it)."""
    server = LocalMMS(ServerSettings(model_store=store, port=port,
                                     management_port=management_port, run_dir=run_dir))
    server.start(threads=worker_threads(workers))
    try:
        server.register(ModelSettings(archive=archive, name=name, batch_size=batch_size,
                                      max_batch_delay_ms=max_batch_delay_ms, workers=workers))
    except BaseException:
        server.stop()
        raise
    return server
