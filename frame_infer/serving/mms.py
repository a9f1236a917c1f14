"""One MMS server on loopback: its settings, config, Java command, registration, stop by pid.

MMS's own launcher (``multi-model-server --start``) forks Java, writes a pid file into
``$TMPDIR`` and returns 0 even when Java is missing. We start the Java frontend
ourselves, in its own process group, so we own its pid, its temp dir and its logs,
and can always stop it (and its Python workers). :class:`LocalMMS` holds the steps;
their order, the signals and the clean-up belong to ``lifecycle.ServedModel``, the one
way anything in the project runs MMS.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import signal
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
from . import diagnose


MIB = 1024 * 1024
QUEUED_BYTES = 256 * MIB
"""Default bound of the request bodies MMS's job queue may hold (sets ``job_queue_size``)."""
JAVA_OPTIONS = ("-XX:TieredStopAtLevel=1",)
"""The frontend's JIT stops at the C1 compiler: C2 compiling Netty and MMS in the first
runs cost 0.2-0.3 s of CPU per 600 frames, taken from the workers on a small machine;
served throughput rose 3-4% (benchmarks/NOTES.md). ``FRAME_INFER_JAVA_OPTIONS`` adds
options after these (Java's last setting wins: ``-XX:TieredStopAtLevel=4`` restores C2)."""
STARTED_MARKER = "Model server started."
"""What MMS's Java prints to stdout once both its listeners are bound."""


def response_timeout_minutes(seconds: float) -> int:
    """MMS reads a registration's ``response_timeout`` in minutes (it multiplies by 60):
    ``seconds`` rounded up to whole minutes, at least one."""
    return max(1, math.ceil(seconds / 60))


def default_job_queue_size(max_request_bytes: int) -> int:
    """As many largest-possible bodies as fit in :data:`QUEUED_BYTES`, at least 8."""
    return max(8, QUEUED_BYTES // max(1, max_request_bytes))


def default_heap_mb(job_queue_size: int, max_request_bytes: int) -> int:
    """Java heap for a full queue: queued bodies live on the heap as byte arrays (and
    once more while a batch is encoded for the worker); 2x the queue's bytes plus 256 MiB
    for MMS itself and the bodies being answered."""
    return 256 + math.ceil(2 * job_queue_size * max_request_bytes / MIB)


def java_command() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise ServerError("java not found: Multi Model Server needs Java 8+; install it "
                          "(Debian: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME")
    return java


@dataclass(frozen=True)
class ServerSettings:
    """One MMS server: where it listens, what it may hold, where its files go."""

    model_store: Path
    """Folder holding the ``.mar`` files (MMS's ``model_store``)."""
    port: int = 8080
    """Inference port on 127.0.0.1 (1-32767: MMS rejects higher numbers)."""
    management_port: int = 8081
    """Management API port on 127.0.0.1; unauthenticated, so loopback only."""
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest request body MMS accepts (413 above); responses may be as large."""
    response_timeout_s: int = 120
    """How long a worker may take for one batch before MMS gives up on it (and restarts
    it). MMS counts whole minutes: registration rounds this up to the next minute."""
    job_queue_size: int | None = None
    """Requests MMS queues per model besides the batch a worker runs; a request that finds
    it full gets 503 at once. None: :func:`default_job_queue_size` (40 for the default
    6,553,500-byte limit)."""
    heap_mb: int | None = None
    """Java heap limit (``-Xmx``) in MiB; queued bodies live there. None:
    :func:`default_heap_mb` of the queue size (756 MiB by default)."""
    run_dir: Path | None = None
    """Temp dir, logs and config of this server; a new temp folder when None."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """Environment for Java and its workers on top of ours (``FRAME_INFER_*`` settings)."""


@dataclass(frozen=True)
class ModelSettings:
    """One model registered through the management API (the only way to set batching)."""

    archive: str
    """File name of the .mar inside the model store (or a URL MMS accepts)."""
    name: str
    """Model name on the server: the NAME in ``/predictions/NAME``."""
    batch_size: int = 8
    """MMS's server-side batch: requests aggregated into one handler call."""
    max_batch_delay_ms: int = 20
    """Milliseconds MMS waits to fill a batch."""
    workers: int = 1
    """Handler processes, each with the model loaded once."""


def worker_threads(workers: int) -> int:
    """Threads per worker so that all workers together use every core once."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class LocalMMS:
    """One MMS server process on loopback, started and stopped by ``lifecycle.ServedModel``."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self._owns_run_dir = settings.run_dir is None
        self.run_dir = Path(settings.run_dir
                            or tempfile.mkdtemp(prefix="frame-infer-mms-")).resolve()
        self.log_dir = self.run_dir / "logs"
        self.process: subprocess.Popen | None = None
        self._log_start = 0

    @property
    def job_queue_size(self) -> int:
        s = self.settings
        return s.job_queue_size or default_job_queue_size(s.max_request_bytes)

    @property
    def heap_mb(self) -> int:
        s = self.settings
        return s.heap_mb or default_heap_mb(self.job_queue_size, s.max_request_bytes)

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
            f"job_queue_size={self.job_queue_size}",
        ]
        path = self.run_dir / "config.properties"
        path.write_text("\n".join(lines) + "\n")
        return path

    def environment(self, threads: int) -> dict[str, str]:
        tmp = self.run_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        # MMS_CONFIG_FILE would make Java ignore our config (addresses included).
        env = {k: v for k, v in os.environ.items() if k != "MMS_CONFIG_FILE"}
        env.update({
            "TMPDIR": str(tmp), "TEMP": str(tmp),  # pid file and worker sockets: ours alone
            "LOG_LOCATION": str(self.log_dir), "METRICS_LOCATION": str(self.log_dir),
            # MMS forces 1 thread per worker unless these are set.
            "OMP_NUM_THREADS": str(threads),
        })
        # MXNet's OpenMP threads (libgomp) otherwise spin between batches: serving face
        # crops as they trickle in, an idle 2-thread worker burnt 12.4 s of CPU for 0.5 s
        # of inference, taking a core from the client on the same machine; back-to-back
        # batches ran as fast either way (benchmarks/NOTES.md). An operator's own setting
        # wins.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env.update(self.settings.extra_env)
        return env

    def command(self, config: Path) -> list[str]:
        """The Java command line: MMS's frontend with bounded memory.

        Queued bodies live on the heap (``-Xmx``); bodies still arriving live in Netty's
        direct buffers, bounded here to the same size (Java's own default, made explicit):
        Java's RSS stays under about twice ``heap_mb`` plus 300 MiB. Past the direct bound
        MMS answers 507 or drops the connection instead of growing."""
        import mms

        mms_home = Path(mms.__file__).resolve().parent.parent
        operator = {**os.environ, **self.settings.extra_env}.get("FRAME_INFER_JAVA_OPTIONS", "")
        return [java_command(), *JAVA_OPTIONS, *shlex.split(operator), f"-Xmx{self.heap_mb}m",
                f"-XX:MaxDirectMemorySize={self.heap_mb}m",
                f"-Dmodel_server_home={mms_home}",
                f"-Djava.io.tmpdir={self.run_dir / 'tmp'}",
                "-cp", f".:{mms_home / 'mms' / 'frontend' / '*'}",
                "com.amazonaws.ml.mms.ModelServer",
                "--python", sys.executable, "-f", str(config),
                "-s", str(Path(self.settings.model_store).resolve())]

    @property
    def stdout_log(self) -> Path:
        """Java's console (stdout and stderr): MMS's log lines, access log included."""
        return self.run_dir / "mms.stdout.log"

    def spawn(self, threads: int) -> subprocess.Popen:
        """Start Java MMS in a process group of its own (``threads``: OpenMP threads per
        worker) and return at once; :meth:`wait_started` waits for it."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = self.command(self.write_config())
        # Appended: a restarted server (ServedModel.restart) continues the console its
        # followers read; wait_started looks for the marker past this point only.
        self._log_start = self.stdout_log.stat().st_size if self.stdout_log.exists() else 0
        with open(self.stdout_log, "ab") as stdout:
            self.process = subprocess.Popen(
                cmd, cwd=self.run_dir, env=self.environment(threads),
                stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        return self.process

    def wait_started(self, timeout: float = 60.0) -> None:
        """Return once *this* server has bound both ports and answers.

        A management API answering is not enough (another server may hold the port): Java
        must have printed that it bound both listeners, and still be running."""
        stdout_path = self.stdout_log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process is not None else None
                self.stop()
                taken = diagnose.unbound_port(stdout_path, self.settings.management_port)
                if taken:
                    self.cleanup()  # nothing worth keeping: the reason is the whole story
                    raise ServerError(taken)
                raise ServerError(f"MMS exited with {code} at start: "
                                  f"{diagnose.last_line(stdout_path)}; details: {stdout_path}")
            if STARTED_MARKER.encode() in stdout_path.read_bytes()[self._log_start:]:
                try:
                    self._request("GET", self.management_url + "/models", timeout=2)
                    self._request("GET", self.inference_url + "/ping", timeout=2)
                    return
                except (OSError, urllib.error.URLError):
                    pass
            time.sleep(0.1)
        raise ServerError(f"MMS did not answer on {self.management_url} within {timeout}s; "
                          f"details: {stdout_path}")

    def register(self, model: ModelSettings, timeout: float = 120.0) -> dict:
        """Register through the management API (the only way batching can be set)."""
        query = urllib.parse.urlencode({
            "url": model.archive, "model_name": model.name, "batch_size": model.batch_size,
            "max_batch_delay": model.max_batch_delay_ms, "initial_workers": model.workers,
            "synchronous": "true",
            "response_timeout": response_timeout_minutes(self.settings.response_timeout_s)})
        try:
            self._request("POST", f"{self.management_url}/models?{query}", timeout=timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise diagnose.registration_error(model.archive, model.name, exc.code, detail,
                                              self.log_dir) from exc
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
                raise ServerError(f"MMS exited with {self.process.returncode} while model "
                                  f"{name} was loading; {self.failure_detail()}")
            try:
                status = self.model_status(name)
                ready = [w for w in status.get("workers", []) if w.get("status") == "READY"]
                if len(ready) >= workers:
                    return status
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        raise ServerError(f"model {name} has no {workers} READY workers after {timeout}s "
                          f"(status: {status.get('workers')}); {self.failure_detail()}")

    def failure_detail(self) -> str:
        """The worker's last error, if it printed one, and where the whole log is."""
        cause = diagnose.worker_cause(self.log_dir)
        where = f"details: {self.log_dir / diagnose.MMS_LOG}"
        return f"the worker's error: {cause}; {where}" if cause else where

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.log_dir / "mms_log.log", self.log_dir / "model_log.log",
                     self.run_dir / "mms.stdout.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Java and its workers by pid (the whole process group): SIGTERM, up to
        ``timeout`` seconds for Java to exit, then SIGKILL for whatever is left."""
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
        """Remove the run dir, if this server made it (``ServerSettings.run_dir`` None)."""
        if self._owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    @staticmethod
    def _request(method: str, url: str, timeout: float) -> bytes:
        req = urllib.request.Request(url, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()

