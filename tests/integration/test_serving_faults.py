"""Faults around the service, with the real MMS and loopback stand-ins (issue 9, items 6,
7 and 10): a silent S3, large S3 objects, a full job queue, ports already in use.

Every server is started on 127.0.0.1 and stopped by pid; a stopped (SIGSTOP) handler is
always resumed.
"""
from __future__ import annotations

import base64
import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psutil
import pytest
import requests

from frame_infer.errors import ExitCode
from frame_infer.serving import ports as ports_module
from frame_infer.serving.lifecycle import ServeConfig, ServedModel
from frame_infer.serving.mms import LocalMMS, ModelSettings, ServerError, ServerSettings
from frame_infer.serving.ports import free_port

from ..helpers.images import jpeg
from ..helpers.loopback import JsonHandler, LoopbackHTTPServer
from ..helpers.mms import model_url, running_mms
from ..helpers.s3standin import s3_stand_in, worker_env

pytestmark = pytest.mark.integration
BUCKET = "frames"
MIB = 1024 * 1024
FERPLUS = ModelSettings("ferplus.mar", "ferplus", batch_size=1, max_batch_delay_ms=1,
                        workers=1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def codes(response: requests.Response) -> list:
    return [p.get("error", {}).get("code") for p in response.json()["predictions"]]


def handler_process(server: LocalMMS) -> psutil.Process:
    """The process running the handler: the child of the worker MMS started."""
    java = psutil.Process(server.process.pid)
    (handler,) = [p for p in java.children(recursive=True) if p.ppid() != java.pid]
    return handler


@contextlib.contextmanager
def peak_rss(process: psutil.Process):
    """Polls ``process``'s RSS every 50 ms while the block runs; yields a dict whose
    ``peak`` (bytes) is final when the block ends."""
    seen = {"peak": process.memory_info().rss}
    done = threading.Event()

    def watch():
        while not done.wait(0.05):
            with contextlib.suppress(psutil.Error):
                seen["peak"] = max(seen["peak"], process.memory_info().rss)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


# -- item 6: timeouts ----------------------------------------------------------------------
def test_a_silent_s3_ends_in_s3_error_within_the_deadline_and_the_next_request_is_served(
        model_store, tmp_path):
    """One S3 stand-in never answers, another sends headers and stalls: each becomes an
    s3_error in about the configured deadline (4 s; before: boto3's 60 s read timeout,
    retried), the request's other image is predicted, and a request queued behind it is
    served right after."""
    with s3_stand_in() as s3:
        env = worker_env(s3.url, BUCKET, s3_connect_timeout_s=1, s3_read_timeout_s=1,
                         s3_fetch_deadline_s=4)
        with running_mms(model_store, FERPLUS, run_dir=tmp_path / "mms",
                         extra_env=env) as server:
            url = model_url(server)
            stalled = {"instances": [
                {"id": "silent", "s3": f"s3://{BUCKET}/stall/headers.jpg"},
                {"id": "trickle", "s3": f"s3://{BUCKET}/stall/body.jpg"},
                {"id": "local", "b64": b64(jpeg(3))}]}
            with ThreadPoolExecutor(2) as pool:
                started = time.monotonic()
                first = pool.submit(requests.post, url, json=stalled, timeout=60)
                while not s3.gets and time.monotonic() - started < 30:
                    time.sleep(0.05)  # the worker is now inside the stalled fetch
                second = pool.submit(requests.post, url, data=jpeg(4),
                                     headers={"Content-Type": "image/jpeg"}, timeout=60)
                stalled_answer = first.result()
                stalled_took = time.monotonic() - started
                next_answer = second.result()
                next_took = time.monotonic() - started
    assert stalled_answer.status_code == 200, stalled_answer.text
    assert codes(stalled_answer) == ["s3_error", "s3_error", None]
    for entry in stalled_answer.json()["predictions"][:2]:  # the setting that ended it
        assert re.search(r"s3_fetch_deadline_s|s3_read_timeout_s", entry["error"]["message"])
    assert stalled_took < 30, stalled_took
    assert next_answer.status_code == 200 and codes(next_answer) == [None]
    assert next_took < 40, next_took
    assert s3.gets.get("stall/headers.jpg") and s3.gets.get("stall/body.jpg")


def test_registration_gives_mms_the_response_timeout_in_minutes(tmp_path):
    """MMS multiplies a registration's response_timeout by 60: 120 s must go as 2."""
    registered = []

    class Management(JsonHandler):
        def do_POST(self):
            registered.append(parse_qs(urlparse(self.path).query))
            self.send_json(200, {"status": "registered"})

        def do_GET(self):
            self.send_json(200, [{"modelName": "m", "workers": [{"status": "READY"}]}])

    management = LoopbackHTTPServer(Management)
    management.start()
    try:
        port = management.server.server_address[1]
        for seconds, minutes in ((120, 2), (60, 1), (61, 2), (5, 1)):
            server = LocalMMS(ServerSettings(model_store=tmp_path, management_port=port,
                                             response_timeout_s=seconds, run_dir=tmp_path))
            server.register(ModelSettings("m.mar", "m"), timeout=10)
            assert registered[-1]["response_timeout"] == [str(minutes)], seconds
            # The config file's key is the seconds one (MMS prefers it to the minutes one).
            assert f"default_response_timeout_seconds={seconds}\n" in \
                server.write_config().read_text()
    finally:
        management.stop()


# -- item 7: memory -------------------------------------------------------------------------
def test_s3_objects_are_decoded_as_they_arrive_within_the_byte_budget(model_store, tmp_path):
    """60 references to a 16 MiB object (960 MiB) in one request: the worker holds its
    32 MiB budget of bodies at once, decoding each as it arrives (before: every body until
    all were fetched). Its RSS still grows by what its fetch threads' malloc arenas keep
    (about threads x object size), but not with the number of references."""
    picture = jpeg(5, size=(160, 120))
    big = picture + bytes(16 * MIB)
    objects = {f"big{i}.jpg": big for i in range(60)}  # distinct keys: each one is fetched
    with s3_stand_in({**objects, "small.jpg": picture}) as s3:
        env = worker_env(s3.url, BUCKET, s3_max_bytes_in_flight=32 * MIB,
                         s3_fetch_deadline_s=90, s3_max_bytes_per_request=1024 * MIB)
        with running_mms(model_store, FERPLUS, run_dir=tmp_path / "mms",
                         extra_env=env) as server:
            url = model_url(server)
            warm_up = [{"id": str(i), "b64": b64(picture)} for i in range(40)]
            warm_up.append({"id": "s3", "s3": f"s3://{BUCKET}/small.jpg"})
            assert codes(requests.post(url, json={"instances": warm_up}, timeout=60)) == \
                [None] * 41  # boto3 loaded, batch shapes seen: what follows is the bodies
            handler = handler_process(server)
            before = handler.memory_info().rss
            instances = [{"id": str(i), "s3": f"s3://{BUCKET}/big{i}.jpg"} for i in range(60)]
            instances.append({"id": "local", "b64": b64(picture)})
            with peak_rss(handler) as rss:
                response = requests.post(url, json={"instances": instances}, timeout=120)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert codes(response) == [None] * 61
    assert {p["label"] for p in predictions} == {predictions[-1]["label"]}
    assert sum(n for key, n in s3.gets.items() if key.startswith("big")) == 60
    growth = (rss["peak"] - before) / MIB
    assert growth < 300, f"the worker grew by {growth:.0f} MiB while fetching 960 MiB"


def test_a_full_job_queue_answers_503_and_java_memory_stays_bounded(model_store, tmp_path):
    """A stopped handler, a job queue of 4, 32 concurrent 6.4 MB requests: MMS keeps a
    batch and the queue and answers the rest 503 at once; Java's heap and direct memory
    have limits (before: a queue of 1000 and a quarter of the machine's memory)."""
    body, sent = bytes(6_400_000), 32
    settings = ModelSettings("ferplus.mar", "ferplus", batch_size=8, max_batch_delay_ms=20,
                             workers=1)
    with running_mms(model_store, settings, run_dir=tmp_path / "mms", job_queue_size=4,
                     heap_mb=384) as server:
        java = psutil.Process(server.process.pid)
        assert {"-Xmx384m", "-XX:MaxDirectMemorySize=384m"} <= set(java.cmdline())
        assert "job_queue_size=4\n" in (server.run_dir / "config.properties").read_text()
        url, answers = model_url(server), []

        def send():
            try:
                answer = requests.post(url, data=body, timeout=120,
                                       headers={"Content-Type": "image/jpeg"})
                answers.append((answer.status_code, answer.text))
            except requests.RequestException as exc:
                answers.append((type(exc).__name__, str(exc)))

        handler = handler_process(server)
        threads = [threading.Thread(target=send) for _ in range(sent)]
        with peak_rss(java) as rss:
            handler.suspend()
            try:
                for thread in threads:
                    thread.start()
                deadline = time.monotonic() + 60
                while len(answers) < sent - 4 - 8 and time.monotonic() < deadline:
                    time.sleep(0.05)  # all but the queue and one batch are answered
            finally:
                handler.resume()
            for thread in threads:
                thread.join(120)
        following = requests.post(url, data=jpeg(6), headers={"Content-Type": "image/jpeg"},
                                  timeout=60)
        log = (server.run_dir / "mms.stdout.log").read_text(errors="replace")
    statuses = Counter(status for status, _ in answers)
    assert statuses[503] >= sent - 4 - 8, statuses
    assert set(statuses) <= {200, 503}, statuses
    assert all("job queue" in text for status, text in answers if status == 503)
    assert rss["peak"] < (2 * 384 + 300) * MIB, rss["peak"] / MIB
    assert following.status_code == 200 and codes(following) == [None]
    assert "OutOfMemoryError" not in log


# -- item 10: ports ---------------------------------------------------------------------------
def serve_command(model_store: Path, run_dir: Path, *ports: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "frame_infer.cli", "serve", "--archive",
         str(model_store / "rgb.mar"), "--run-dir", str(run_dir), *ports],
        capture_output=True, text=True, timeout=120)


def java_running_in(run_dir: Path) -> list[int]:
    """Pids of processes whose command line names ``run_dir`` (an MMS started there)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(str(run_dir) in part for part in proc.info["cmdline"] or ()):
            found.append(proc.info["pid"])
    return found


@contextlib.contextmanager
def socket_listening():
    """A plain socket listening on a free loopback port (nothing answers); yields the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_refuses_a_port_in_use_in_one_line_and_starts_nothing(model_store, tmp_path):
    with socket_listening() as taken:
        free = str(free_port())
        for ports, what in ((["--port", str(taken), "--management-port", free], "inference"),
                            (["--port", free, "--management-port", str(taken)],
                             "management")):
            run_dir = tmp_path / what
            result = serve_command(model_store, run_dir, *ports)
            assert result.returncode == ExitCode.ENVIRONMENT
            assert result.stderr.splitlines() == [
                f"frame-infer serve: error: {what} port {taken} on 127.0.0.1 is already in "
                f"use; stop what listens there or choose another with "
                f"--{'port' if what == 'inference' else 'management-port'}"]
            assert "serving" not in result.stdout
            assert not java_running_in(run_dir) and not run_dir.exists()


def test_serve_refuses_ports_mms_rejects_before_starting(model_store, tmp_path):
    result = serve_command(model_store, tmp_path / "run", "--port", "40000")
    assert result.returncode == 2
    assert "--port: 40000 is not in 1-32767: MMS 1.1.11 rejects higher port numbers" \
        in result.stderr
    assert not (tmp_path / "run").exists()


def test_another_server_on_the_management_port_is_never_taken_for_ours(model_store, tmp_path,
                                                                       monkeypatch):
    """The port check passes (the port is taken after it, say): MMS then fails to bind,
    and start() says so in one line instead of registering on the server that answers."""
    calls = []

    class OtherServer(JsonHandler):  # answers like an MMS with a READY model
        def do_GET(self):
            calls.append(("GET", self.path))
            self.send_json(200, [{"modelName": "rgb", "workers": [{"status": "READY"}]}])

        def do_POST(self):
            calls.append(("POST", self.path))
            self.send_json(200, {"status": "registered"})

    other = LoopbackHTTPServer(OtherServer)
    other.start()
    monkeypatch.setattr(ports_module, "port_in_use", lambda port, host="127.0.0.1": False)
    taken = other.server.server_address[1]
    served = ServedModel(ServeConfig(
        ServerSettings(model_store=model_store, port=free_port(), management_port=taken,
                       run_dir=tmp_path / "mms"), (ModelSettings("rgb.mar", "rgb"),)))
    try:
        with pytest.raises(ServerError) as raised:
            with served:
                pass
    finally:
        other.stop()
    message = str(raised.value)
    assert message == (f"management port {taken} on 127.0.0.1 is already in use (MMS could "
                       "not bind it); stop what listens there or choose another port")
    assert served.server.process is None and not java_running_in(tmp_path / "mms")
    assert not [c for c in calls if c[0] == "POST"]


def test_ports_are_checked_before_java_starts():
    with pytest.raises(ServerError, match=re.escape("inference and management ports are "
                                                    "both 20001")):
        ports_module.check_ports(20001, 20001)
    with pytest.raises(ServerError, match="management port 40000 is not in 1-32767"):
        ports_module.check_ports(20001, 40000)


def test_queue_and_heap_follow_the_request_limit_unless_given(tmp_path):
    """256 MiB of the largest bodies queued; the heap holds that twice plus 256 MiB."""
    def server(**settings) -> LocalMMS:
        return LocalMMS(ServerSettings(model_store=tmp_path, run_dir=tmp_path, **settings))

    default = server()
    assert (default.job_queue_size, default.heap_mb) == (40, 756)
    small = server(max_request_bytes=1024 * 1024)
    assert (small.job_queue_size, small.heap_mb) == (256, 768)
    given = server(job_queue_size=10, heap_mb=300)
    assert (given.job_queue_size, given.heap_mb) == (10, 300)
    assert server(max_request_bytes=512 * MIB).job_queue_size == 8  # never below 8


def test_sigterm_then_sigkill_to_the_handler_is_recovered_by_mms_itself(model_store,
                                                                        tmp_path):
    """Issue 21, defect 4: SIGTERM then SIGKILL to the handler process. MMS's own SIGTERM
    handler removed the listener's socket, so MMS retried it forever and no request was
    answered again (the container's /invocations never answered within 45 s). The
    service's handler now exits on SIGTERM: MMS reconnects and forks a new handler."""
    with running_mms(model_store, FERPLUS, run_dir=tmp_path / "mms") as server:
        url = model_url(server)
        assert requests.post(url, data=jpeg(1), headers={"Content-Type": "image/jpeg"},
                             timeout=60).status_code == 200
        handler = handler_process(server)
        killed = time.monotonic()
        handler.terminate()
        time.sleep(0.5)
        if handler.is_running():
            handler.kill()
        recovered = None
        while time.monotonic() - killed < 30:
            try:
                answer = requests.post(url, data=jpeg(2), timeout=2,
                                       headers={"Content-Type": "image/jpeg"})
                if answer.status_code == 200:
                    recovered = time.monotonic() - killed
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)  # polling as a retrying client does
    assert recovered is not None and recovered < 10, recovered
