"""The front's own checks, without MMS: multipart framing, bodies, MMS's errors, health."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from frame_infer.serving.framing import multipart_problem
from frame_infer.serving.front import Body, BodyBudget, FrontHandler, Health, FrontSettings
from frame_infer.serving.metrics import ServingMetrics

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
CT = "multipart/form-data; boundary=xx"


def part(name="a", extra=b"", disposition=True, data=b"\x89PNG...") -> bytes:
    head = (b'Content-Disposition: form-data; name="' + name.encode() + b'"; filename="a.png"'
            b"\r\n" if disposition else b"")
    return b"--xx\r\n" + head + b"Content-Type: image/png\r\n" + extra + b"\r\n" + data + b"\r\n"


@pytest.mark.parametrize("body, code, words", [
    (part(extra=b"Content-Transfer-Encoding: base64\r\n") + b"--xx--\r\n",
     "invalid_multipart", "Content-Transfer-Encoding 'base64'"),
    (part(disposition=False) + b"--xx--\r\n", "invalid_multipart", "no Content-Disposition"),
    (part("a") + part("b"), "invalid_multipart", "without its closing boundary"),
    (part("a") + part("a") + b"--xx--\r\n", "duplicate_id", "'a' is used by more"),
    (b"nothing of the kind", "invalid_multipart", "no part delimited by --xx"),
])
def test_framing_faults_mms_turns_into_java_500s_or_lost_parts_are_named(body, code, words):
    """Before the front, MMS answered the first two with 500 and a raw Java error, dropped
    the last part of the third silently and kept one part of the fourth."""
    found = multipart_problem(body, CT)
    assert found is not None and found[0] == code and words in found[1], found


def test_well_framed_bodies_and_other_types_pass():
    good = b"preamble\r\n" + part("a") + part("b", extra=b"Content-Transfer-Encoding: binary\r\n")
    assert multipart_problem(good + b"--xx--\r\n", CT) is None
    assert multipart_problem(good + b"--xx--", CT.upper().replace("XX", "xx")) is None
    assert multipart_problem(b"\xff\xd8 jpeg bytes", "image/jpeg") is None
    assert multipart_problem(b"x", "multipart/form-data")[1].startswith("Content-Type")


def test_bodies_past_the_memory_budget_go_to_a_temp_file(tmp_path):
    import io

    budget = BodyBudget(10)
    small, large = Body(8, budget, tmp_path), Body(8, budget, tmp_path)
    assert small.in_memory and not large.in_memory
    small.receive(io.BytesIO(b"12345678"))
    large.receive(io.BytesIO(b"abcdefgh"))
    assert bytes(small.view()) == b"12345678" and large.view()[:] == b"abcdefgh"
    assert large.source().read() == b"abcdefgh"
    with pytest.raises(ConnectionError, match="3 bytes less"):
        Body(8, budget, tmp_path).receive(io.BytesIO(b"12345"))
    small.close()
    large.close()
    assert Body(10, budget, tmp_path).in_memory  # the budget came back


class FakeFront:
    def __init__(self, ready: int):
        self.ready = ready
        self.max_in_flight = 48
        self.mms = type("M", (), {"job_queue_size": 40})()
        self.health = type("H", (), {"worker_died": lambda self: None})()

    def ready_workers(self) -> int:
        return self.ready


@pytest.mark.parametrize("ready, code, words", [
    (1, "server_busy", "queue is full"), (0, "model_unavailable", "no live worker")])
def test_mms_no_worker_is_available_is_said_as_its_real_cause(ready, code, words):
    """MMS answers "No worker is available … Consider increasing job queue size" both when
    its queue is full and when no worker lives; with a READY worker it is the queue."""
    handler = FrontHandler.__new__(FrontHandler)
    handler.server = FakeFront(ready)
    mms = json.dumps({"code": 503, "type": "ServiceUnavailableException", "message":
                      "No worker is available to serve request for model: m. Consider "
                      "increasing job queue size."}).encode()
    error = json.loads(handler._mms_error(503, mms))["error"]
    assert error["code"] == code and words in error["message"]


class FakeServed:
    name = "m"

    def __init__(self):
        self.restarted = 0
        self.stopping = __import__("threading").Event()
        self.server = type("S", (), {"settings": type("T", (), {"port": 1})()})()

    def restart(self, grace_s=2.0):
        self.restarted += 1


def test_health_restarts_mms_when_mms_keeps_failing_to_reach_a_dead_worker():
    """The old defect 4: a worker READY with no process, MMS retrying its socket forever.
    A second retry logged with nothing answered (the reconnect failed): MMS is restarted
    at once."""
    metrics, served = ServingMetrics(), FakeServed()
    health = Health(served, FrontSettings(restart_after_s=60), metrics)
    health.probe = lambda timeout=None: None  # nothing answers
    clock = [100.0]
    health._clock = lambda: clock[0]
    health.last_ok = 99.0
    for _ in range(2):
        metrics.worker_retries += 1
        clock[0] += 1
        health.check()
    assert served.restarted == 1 and "failed 2 times to reconnect" in health.failure


def test_health_leaves_mms_alone_when_a_restarted_worker_answers():
    metrics, served = ServingMetrics(), FakeServed()
    health = Health(served, FrontSettings(restart_after_s=2), metrics)
    health.probe = lambda timeout=None: health.succeeded()
    metrics.worker_retries += 1
    health.check()  # suspect: a probe goes
    health._prober.join(5)
    health.check()
    assert served.restarted == 0 and health.failure is None and health._suspect_since is None


def test_sigterm_ends_a_handler_process_at_once():
    """MMS 1.1.11's handler removed its listener's socket on SIGTERM and lived on; after any
    crash MMS then retried that socket forever (the container's defect 4)."""
    code = textwrap.dedent("""
        import os, signal, sys, time
        from model_handler.service import exit_on_sigterm
        signal.signal(signal.SIGTERM, lambda *a: None)  # what MMS's start_worker installs
        exit_on_sigterm()
        print("ready", flush=True)
        time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == b"ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
