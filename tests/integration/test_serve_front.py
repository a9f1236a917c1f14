"""`frame-infer serve` puts the front before MMS (issue 21): what raw MMS got wrong, each
checked against the real command, MMS on an internal port behind it."""
from __future__ import annotations

import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from frame_infer.serving.ports import free_port

from ..helpers.images import jpeg

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(model_store, tmp_path_factory):
    """`frame-infer serve` of ferplus.mar on free ports; yields (url, its output file)."""
    port, management = free_port(), free_port()
    log = tmp_path_factory.mktemp("serve-front") / "serve.log"
    out = open(log, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "frame_infer.cli", "serve", "--model-store", str(model_store),
         "--archive", "ferplus.mar", "--port", str(port), "--management-port",
         str(management), "--batch-size", "4", "--max-batch-delay", "10"],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while b"Ctrl-C stops" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # polling for the "serving" line
        yield f"http://127.0.0.1:{port}", log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
        out.close()


def error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def post(url: str, data: bytes, content_type: str, timeout: float = 60) -> requests.Response:
    return requests.post(url, data=data, headers={"Content-Type": content_type},
                         timeout=timeout)


def test_mms_listens_behind_the_front_on_an_internal_port(served):
    url, log = served
    line = log.read_text()
    internal = int(re.search(r"on internal port (\d+)", line)[1])
    assert internal != int(url.rsplit(":", 1)[1])
    answer = post(f"{url}/predictions/ferplus", jpeg(1), "image/jpeg")
    assert answer.status_code == 200 and "label" in answer.json()["predictions"][0]
    assert requests.get(f"{url}/ping", timeout=10).json()["status"] == "Healthy"


def test_raw_mms_errors_are_contract_errors_now(served):
    """Before (raw MMS): GET of the predictions URL was a 415, a body over the limit a 413
    with an empty body, a wrong model name MMS's bare 404."""
    url, _ = served
    answer = requests.get(f"{url}/predictions/ferplus", timeout=10)
    assert error(answer) == (405, "method_not_allowed") and answer.headers["Allow"] == "POST"
    answer = post(f"{url}/predictions/ferplus", bytes(7_000_000), "image/jpeg")
    assert error(answer) == (413, "request_too_large")
    assert "6553500" in answer.json()["error"]["message"]
    answer = post(f"{url}/predictions/fer", jpeg(1), "image/jpeg")
    assert error(answer) == (404, "model_not_found")
    assert "served: ferplus" in answer.json()["error"]["message"]
    # Not MMS's management API: the client's wrong-endpoint diagnosis looks for it there.
    assert error(requests.get(f"{url}/models", timeout=10)) == (404, "not_found")


@pytest.mark.parametrize("extra, disposition, close, code", [
    (b"Content-Transfer-Encoding: base64\r\n", True, True, "invalid_multipart"),
    (b"", False, True, "invalid_multipart"),
    (b"", True, False, "invalid_multipart"),
])
def test_multipart_framing_mms_gets_wrong_is_a_400(served, extra, disposition, close, code):
    """Before: a part with Content-Transfer-Encoding: base64, or without
    Content-Disposition, got 500 with MMS's raw Java error; a body without its closing
    boundary was answered for its first parts only (the last one silently dropped)."""
    url, _ = served
    image = jpeg(2)
    head = b'Content-Disposition: form-data; name="a"; filename="a.jpg"\r\n' if disposition \
        else b""
    body = (b"--xx\r\n" + head + b"Content-Type: image/jpeg\r\n" + extra + b"\r\n" + image +
            b"\r\n--xx\r\n" + b'Content-Disposition: form-data; name="b"; filename="b.jpg"'
            b"\r\nContent-Type: image/jpeg\r\n\r\n" + image + b"\r\n" +
            (b"--xx--\r\n" if close else b""))
    answer = post(f"{url}/predictions/ferplus", body, "multipart/form-data; boundary=xx")
    assert error(answer) == (400, code), answer.text


def test_half_uploaded_connections_do_not_make_good_requests_busy(served):
    """Before (the container's front): 100 connections that sent half a 6.4 MB body and
    stalled made every good request get 503 server_busy while they were held (a slow
    upload counted as in flight). Now a body takes a slot only once it is whole."""
    url, _ = served
    host, port = url.removeprefix("http://").split(":")
    held = []
    try:
        for _ in range(100):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(b"POST /predictions/ferplus HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: image/jpeg\r\nContent-Length: 6400000\r\n\r\n"
                         + bytes(3_200_000))
            held.append(sock)
        answers = [post(f"{url}/predictions/ferplus", jpeg(i), "image/jpeg", timeout=30)
                   for i in range(5)]
    finally:
        for sock in held:
            sock.close()
    assert [a.status_code for a in answers] == [200] * 5


def _processes(log: Path):
    java = psutil.Process(int(re.search(r"MMS pid (\d+)", log.read_text())[1]))
    handlers = [p for p in java.children(recursive=True) if p.ppid() != java.pid]
    return java, handlers


def _first_200_after(url: str, since: float, limit: float = 30.0) -> float | None:
    while time.monotonic() - since < limit:
        try:
            if post(f"{url}/predictions/ferplus", jpeg(4), "image/jpeg",
                    timeout=2).status_code == 200:
                return time.monotonic() - since
        except requests.RequestException:
            pass
        time.sleep(0.2)  # polling as a retrying client does
    return None


def test_a_worker_mms_cannot_reach_again_is_recovered_by_the_front_within_10s(served):
    """The container's defect 4, made certain: the worker's socket is gone (what MMS's own
    SIGTERM handler did) and the handler is killed; MMS retries that socket forever with
    the worker READY. The front sees MMS's retries and restarts MMS (before: no answer
    again, ever)."""
    url, log = served
    java, (handler,) = _processes(log)
    run_dir = Path(re.search(r"logs in (\S+);", log.read_text())[1]).parent
    for path in glob.glob(str(run_dir / "tmp" / ".mms.sock.*")):
        if not path.endswith(".lock"):
            os.remove(path)
    killed = time.monotonic()
    handler.kill()
    took = _first_200_after(url, killed)
    assert took is not None and took <= 10, (took, log.read_text()[-3000:])
    assert "restarting MMS" in log.read_text()
    assert not java.is_running() or java.status() == psutil.STATUS_ZOMBIE  # a new Java
    assert requests.get(f"{url}/ping", timeout=10).json()["status"] == "Healthy"
