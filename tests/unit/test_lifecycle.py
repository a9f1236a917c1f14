"""``ServedModel``'s clean-up at every moment, against a stand-in for MMS's Java frontend
(``tests/helpers/fake_mms.py``): a failing block, SIGTERM while Java starts and while a
model registers, the start-up deadline, checks that start nothing, the metrics thread,
and handlers left alone outside the main thread. The real MMS is in
tests/integration/test_serve_signals.py."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from frame_infer.errors import FrameInferError, ServerError
from frame_infer.serving.lifecycle import (MetricsSettings, ServeConfig, ServedModel,
                                           StartupTimeout, Stopped)
from frame_infer.serving.mms import ModelSettings, ServerSettings
from frame_infer.serving.ports import free_port, port_in_use

from ..helpers.fake_mms import fake_java_home

MODEL = ModelSettings("m.mar", "m", workers=1)


@pytest.fixture()
def java(tmp_path, monkeypatch) -> Path:
    """The stand-in as JAVA_HOME; returns the folder its hold files go in."""
    monkeypatch.setenv("JAVA_HOME", str(fake_java_home(tmp_path)))
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "m.mar").write_bytes(b"zip")
    return tmp_path


def config(folder: Path, *models: ModelSettings, **serve) -> ServeConfig:
    return ServeConfig(ServerSettings(model_store=folder / "store", port=free_port(),
                                      management_port=free_port()), models, threads=1,
                       **serve)


def handlers() -> dict:
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def ended(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)  # polling: the group was killed, the kernel reaps it
    return False


def nothing_left(served: ServedModel, *pids: int) -> bool:
    settings = served.server.settings
    return (served.server.process is None and all(ended(pid) for pid in pids)
            and not port_in_use(settings.port) and not port_in_use(settings.management_port))


def signal_when(condition, signum: int = signal.SIGTERM) -> threading.Thread:
    """A thread sending ``signum`` to this process once ``condition()`` holds (polled)."""
    def run():
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signum)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def java_of(served: ServedModel):
    return served.server is not None and served.server.process


def test_a_failing_block_stops_java_and_its_workers_and_restores_the_handlers(java):
    before = handlers()
    served = ServedModel(config(java, MODEL))
    with pytest.raises(RuntimeError, match="the block failed"):
        with served:
            assert handlers() != before
            pids = [served.server.process.pid] + [
                p.pid for p in psutil.Process(served.server.process.pid).children()]
            assert len(pids) == 2  # Java and the worker its registration started
            raise RuntimeError("the block failed")
    assert handlers() == before and served.stopping.is_set()
    assert nothing_left(served, *pids)
    assert served.server.run_dir.is_dir()  # after a failure the logs stay ("clean-stop")


def test_the_run_dir_goes_after_a_clean_stop_and_always_when_asked(java):
    with ServedModel(config(java)) as served:
        pass
    assert not served.server.run_dir.exists()
    with pytest.raises(RuntimeError):
        with ServedModel(config(java, remove_run_dir="always")) as served:
            raise RuntimeError
    assert not served.server.run_dir.exists()


def test_sigterm_while_java_starts_unwinds_through_the_block(java):
    (java / "hold-start").touch()  # Java runs but never says it started
    served, before = ServedModel(config(java, MODEL)), handlers()
    sender = signal_when(lambda: java_of(served))
    with pytest.raises(Stopped) as stopped:
        with served:
            pytest.fail("the block ran")
    sender.join(10)
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143
    assert isinstance(stopped.value, KeyboardInterrupt)  # Ctrl-C's handling applies
    assert not served.ready and handlers() == before
    assert nothing_left(served) and not served.server.run_dir.exists()


def test_sigint_during_registration_stops_java_and_the_worker_it_started(java):
    (java / "hold-register").touch()  # the registration call does not answer
    served, seen = ServedModel(config(java, MODEL)), []

    def registering() -> bool:
        process = java_of(served)
        if process:
            seen[:] = [process.pid] + [p.pid for p in psutil.Process(process.pid).children()]
        return len(seen) == 2
    sender = signal_when(registering, signal.SIGINT)
    with pytest.raises(Stopped) as stopped:
        with served:
            pytest.fail("the block ran")
    sender.join(10)
    assert stopped.value.signum == signal.SIGINT
    assert nothing_left(served, *seen)


def test_the_start_up_deadline_kills_java_and_says_so(java):
    (java / "hold-start").touch()
    served = ServedModel(config(java, MODEL, startup_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(StartupTimeout, match="^no READY worker within 0.5s$"):
        served.start()
    assert time.monotonic() - started < 10
    assert "Model server started." not in served.failure_log  # read before the clean-up
    assert nothing_left(served)


def test_a_failed_start_raises_the_cause_itself_with_its_exit_code(java, monkeypatch):
    """The cause's class says what to fix (the CLI maps it to an exit code): start() must
    not hide it behind an error of its own."""
    class Refused(ServerError):
        exit_code = 42

    def refuse(self, model, timeout):
        raise Refused("no such model")
    monkeypatch.setattr("frame_infer.serving.mms.LocalMMS.register", refuse)
    served = ServedModel(config(java, MODEL))
    with pytest.raises(Refused, match="^no such model$"):
        served.start()
    assert "Model server started." in served.failure_log  # Java's console, kept for callers
    assert nothing_left(served) and served.server.run_dir.is_dir()  # the logs stay


def test_a_signal_while_serving_ends_wait_and_the_stop_is_clean(java):
    with ServedModel(config(java, MODEL)) as served:
        java_pid = served.server.process.pid
        assert served.ready and served.name == "m"
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        assert served.wait() is True
    assert nothing_left(served, java_pid) and not served.server.run_dir.exists()


def test_wait_says_when_mms_exits_by_itself_and_the_logs_stay(java):
    with ServedModel(config(java)) as served:
        os.killpg(served.server.process.pid, signal.SIGKILL)
        assert served.wait() is False and served.failed
    assert served.server.run_dir.is_dir()


def test_checks_that_fail_start_nothing_and_touch_no_handler(java):
    before, refused = handlers(), []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        busy = ServeConfig(ServerSettings(model_store=java / "store", port=free_port(),
                                          management_port=taken.getsockname()[1]))
        metrics = config(java, metrics=MetricsSettings(port=taken.getsockname()[1]))
        for settings, message in ((busy, "management port .* is already in use"),
                                  (metrics, "metrics port .* --metrics-port")):
            refused.append(ServedModel(settings))
            with pytest.raises(ServerError, match=message):
                refused[-1].start()
    refused.append(ServedModel(config(java, ModelSettings("other.mar", "other"))))
    with pytest.raises(FrameInferError, match="not in the model store"):
        refused[-1].start()
    assert handlers() == before
    assert all(served.server is None for served in refused)  # no run dir, no Java


def test_the_metrics_exporter_serves_while_the_block_runs(java):
    port = free_port()
    with ServedModel(config(java, metrics=MetricsSettings(port=port))) as served:
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200 and b"frame_infer_requests" in answer.content
        assert served.metrics is not None
    assert not port_in_use(port)


def test_outside_the_main_thread_no_handler_is_installed(java):
    before, seen = handlers(), {}

    def serve():
        with ServedModel(config(java)) as served:
            seen["during"] = handlers()
            served.request_stop()
            seen["waited"] = served.wait()
    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(30)
    assert seen == {"during": before, "waited": True} and handlers() == before


def test_restart_brings_java_back_on_the_same_ports_and_wait_does_not_end(java):
    """The front's supervisor restarts MMS through the lifecycle: a new Java on the same
    ports, the model registered again, the console log continued; wait() sees no exit."""
    with ServedModel(config(java, MODEL)) as served:
        first = served.server.process.pid
        ended_early = []
        waiter = threading.Thread(target=lambda: ended_early.append(served.wait()))
        waiter.start()
        served.restart(grace_s=0)
        second = served.server.process.pid
        assert second != first and ended(first)
        assert served.restarts == 1 and served.server.model_status("m")["workers"]
        log = served.server.stdout_log.read_text()
        assert log.count("Model server started.") == 2  # appended, not truncated
        time.sleep(1.5)
        assert waiter.is_alive() and not ended_early  # a restart is not MMS exiting
        served.request_stop()
        waiter.join(10)
    assert ended_early == [True] and nothing_left(served, first, second)
