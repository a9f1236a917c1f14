"""The SageMaker serving container for tests, two ways.

- :class:`Container`: the entrypoint (``packaging/serve``) as a subprocess, signals and all.
- :func:`running_front`: the same code the image runs (``serving.container.start_model`` +
  ``serving.container.serving_front``) in this process, without the entrypoint's exit
  codes (``test_sagemaker_container.py`` covers those): MMS from the real ``.mar`` on
  loopback, the front on a free loopback port.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from frame_infer.serving.container import ContainerSettings, serving_front, start_model
from frame_infer.serving.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "packaging" / "serve"


class Container:
    """``serve`` as a subprocess in its own process group; ``stop`` always cleans up.

    Its TMPDIR is a short new folder: MMS's worker sockets live there, and a Unix socket
    path may not exceed 107 bytes (pytest's tmp_path names can).
    """

    def __init__(self, model_dir: Path, work: Path, **env: str):
        self.port, self.work = free_port(), work
        work.mkdir(parents=True, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="fism-")
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("FRAME_INFER_", "SAGEMAKER_"))}
        env = {**base, "TMPDIR": self.tmp, "FRAME_INFER_BIND_HOST": "127.0.0.1",
               "FRAME_INFER_STARTUP_TIMEOUT_S": "120", **env}
        with open(work / "stdout.log", "wb") as out, open(work / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(SERVE), "serve", "--model-dir", str(model_dir),
                 "--port", str(self.port)],
                env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return (self.work / "stdout.log").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.work / "stderr.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = 180) -> str:
        """The entrypoint's ``ready:`` line; fails with its output if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = re.search(r"^frame-infer serve: ready: .*$", self.stdout(), re.M)
            if ready:
                return ready.group(0)
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited with {self.proc.returncode}:\n{self.stderr()}")
            time.sleep(0.2)
        pytest.fail(f"serve not ready after {timeout}s:\n{self.stdout()}\n{self.stderr()}")

    def mms_pid(self) -> int | None:
        return int(found[1]) if (found := re.search(r"MMS pid (\d+)", self.stdout())) else None

    def stop(self) -> int | None:
        """SIGTERM (serve stops MMS), then SIGKILL for whatever is left; the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        for group in (self.proc.pid, self.mms_pid()):
            try:
                if group:
                    os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        return self.proc.wait()


@contextlib.contextmanager
def running_front(model_dir: Path, **settings) -> Iterator[str]:
    """Serve the one model in ``model_dir`` as the container does; yield the front's URL
    (``/ping``, ``/execution-parameters``, ``/invocations``). MMS is stopped by pid at the
    end, however the block ends."""
    config = ContainerSettings(model_dir=Path(model_dir), host="127.0.0.1", port=free_port(),
                               startup_timeout_s=120, **settings)
    with start_model(config) as served, serving_front(config, served):
        yield f"http://{config.host}:{config.port}"
