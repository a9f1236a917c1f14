"""SIGTERM and SIGINT at any moment of MMS's life leave nothing behind (issue 18, part 3).

`frame-infer serve` and the container entrypoint run as subprocesses against the real MMS
(Java) and a real .mar; each signal is sent at a moment found by polling (Java's pid
exists; its workers exist, before any is READY), never after a blind sleep. Afterwards
neither Java, its process group nor its workers exist and both ports are free. The
in-process tests drive ``ServedModel`` itself: a failing block, a signal during start-up
and one while serving.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from frame_infer.serving.lifecycle import ServeConfig, ServedModel, Stopped
from frame_infer.serving.mms import ModelSettings, ServerSettings
from frame_infer.serving.ports import free_port, port_in_use

from ..helpers.container import Container

pytestmark = pytest.mark.integration
MODEL_SERVER = "com.amazonaws.ml.mms.ModelServer"


def poll(condition, timeout: float, what: str, interval: float = 0.01):
    """``condition()``'s first true value, polled every ``interval`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what} within {timeout}s")


def java_of(parent: int) -> psutil.Process | None:
    """The MMS frontend among ``parent``'s children, once it runs Java."""
    try:
        for child in psutil.Process(parent).children():
            if MODEL_SERVER in child.cmdline():
                return child
    except psutil.Error:  # a child that just ended, or the parent itself
        pass
    return None


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return all(gone(p.pid) for p in psutil.process_iter() if _pgid(p.pid) == pgid)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def assert_nothing_left(java: int, workers: list[int], *ports: int) -> None:
    """Java, its process group and its workers ended; the ports are free."""
    poll(lambda: gone(java), 30, f"Java ({java}) not ended")
    poll(lambda: group_gone(java), 30, f"Java's process group ({java}) not ended")
    for worker in workers:
        poll(lambda: gone(worker), 30, f"worker {worker} not ended")
    for port in ports:
        poll(lambda: not port_in_use(port), 10, f"port {port} still bound")


class Serve:
    """`frame-infer serve` as a subprocess in its own session, on free ports."""

    def __init__(self, store: Path, work: Path, archive: str = "rgb.mar"):
        self.port, self.management_port, self.work = free_port(), free_port(), work
        work.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAME_INFER_")}
        with open(work / "out", "wb") as out, open(work / "err", "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "frame_infer.cli", "serve", "--model-store",
                 str(store), "--archive", archive, "--port", str(self.port),
                 "--management-port", str(self.management_port)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)

    def out(self) -> str:
        return (self.work / "out").read_text(errors="replace")

    def err(self) -> str:
        return (self.work / "err").read_text(errors="replace")

    def java(self) -> psutil.Process:
        """Java, as soon as it exists (serve must not have served yet)."""
        java = poll(lambda: java_of(self.proc.pid) or self.proc.poll() is not None, 60,
                    "no Java started")
        assert java is not True, f"serve exited with {self.proc.returncode}: {self.err()}"
        return java

    def kill(self) -> None:
        """The last resort: whatever is left of serve's session."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def run_dir_of(java: psutil.Process) -> Path:
    """The run dir, from Java's ``-Djava.io.tmpdir=RUN/tmp``."""
    (tmp,) = [a.split("=", 1)[1] for a in java.cmdline() if a.startswith("-Djava.io.tmpdir=")]
    return Path(tmp).parent


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_java_starts_stops_it_and_frees_both_ports(model_store, tmp_path,
                                                                   signum):
    """Before: SIGTERM here left Java running, holding both ports (SIGINT was clean)."""
    serve = Serve(model_store, tmp_path)
    try:
        java = serve.java()
        run_dir = run_dir_of(java)
        serve.proc.send_signal(signum)
        code = serve.proc.wait(60)
    finally:
        serve.kill()
    assert "serving" not in serve.out()
    assert code == 130, serve.err()
    assert "frame-infer serve: interrupted." in serve.err()
    assert_nothing_left(java.pid, [], serve.port, serve.management_port)
    assert not run_dir.exists()  # a stop that was asked for: its temp folder goes


def test_sigterm_during_registration_stops_java_and_its_workers(model_store, tmp_path):
    """Java answers and its worker processes run, no worker is READY yet: SIGTERM."""
    serve = Serve(model_store, tmp_path)
    try:
        java = serve.java()

        def registering() -> list[int]:
            workers = [p.pid for p in java.children(recursive=True)]
            listening = port_in_use(serve.management_port)
            return workers if workers and listening and "serving" not in serve.out() else []
        workers = poll(registering, 60, "no worker process started")
        serve.proc.send_signal(signal.SIGTERM)
        code = serve.proc.wait(60)
    finally:
        serve.kill()
    assert "serving" not in serve.out(), "READY before the signal: not during registration"
    assert code == 130, serve.err()
    assert_nothing_left(java.pid, workers, serve.port, serve.management_port)


def test_container_sigterm_before_ready_exits_143_with_nothing_left(model_store, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(model_store / "rgb.mar", model_dir / "rgb.mar")
    box = Container(model_dir, tmp_path / "serve")
    try:
        java = poll(lambda: box.mms_pid() or box.proc.poll() is not None, 60, "no MMS pid")
        assert java is not True, box.stderr()
        ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", box.stdout())]
        workers = [p.pid for p in psutil.Process(java).children(recursive=True)]
        os.killpg(box.proc.pid, signal.SIGTERM)
        code = box.proc.wait(60)
    finally:
        box.stop()
    assert "ready:" not in box.stdout()
    assert code == 128 + signal.SIGTERM
    assert_nothing_left(java, workers, *ports, box.port)


# -- in this process --------------------------------------------------------------------
def config(store: Path, *models: ModelSettings, **serve) -> ServeConfig:
    return ServeConfig(ServerSettings(model_store=store, port=free_port(),
                                      management_port=free_port()), models, threads=1,
                       **serve)


def handlers() -> dict:
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def test_a_failing_block_stops_mms_and_restores_the_signal_handlers(model_store):
    before = handlers()
    served = ServedModel(config(model_store))
    with pytest.raises(RuntimeError, match="the block failed"):
        with served:
            java, settings = served.server.process.pid, served.server.settings
            assert handlers() != before  # SIGTERM and SIGINT are the server's meanwhile
            raise RuntimeError("the block failed")
    assert handlers() == before
    assert served.server.process is None and served.stopping.is_set()
    assert served.server.run_dir.is_dir()  # a failure keeps the logs ("clean-stop")
    assert_nothing_left(java, [], settings.port, settings.management_port)


def test_sigterm_in_process_during_start_up_unwinds_through_the_block(model_store):
    """The signal arrives while start() waits for Java: Stopped leaves ``with``, the block
    never runs, MMS is stopped and its temp run dir removed."""
    served, seen = ServedModel(config(model_store)), {}

    def signal_once_java_exists():
        process = poll(lambda: served.server and served.server.process, 60, "no Java")
        seen["java"] = process.pid
        os.kill(os.getpid(), signal.SIGTERM)
    sender = threading.Thread(target=signal_once_java_exists, daemon=True)
    before = handlers()
    sender.start()
    with pytest.raises(Stopped) as stopped:
        with served:
            pytest.fail("the block ran")
    sender.join(10)
    assert stopped.value.signum == signal.SIGTERM and not served.ready
    assert handlers() == before
    assert not served.server.run_dir.exists()
    settings = served.server.settings
    assert_nothing_left(seen["java"], [], settings.port, settings.management_port)


def test_a_signal_while_serving_ends_wait_and_the_model_was_ready(model_store):
    ferplus = ModelSettings("ferplus.mar", "ferplus", batch_size=1, workers=1)
    with ServedModel(config(model_store, ferplus)) as served:
        java = served.server.process.pid
        workers = [p.pid for p in psutil.Process(java).children(recursive=True)]
        assert workers and served.ready and served.registered_s > 0
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        assert served.wait() is True  # a stop that was asked for
    settings = served.server.settings
    assert_nothing_left(java, workers, settings.port, settings.management_port)
