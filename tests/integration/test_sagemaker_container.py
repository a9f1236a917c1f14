"""The SageMaker entrypoint (``packaging/serve``) run directly, as the image would run it.

No Docker engine runs here, so the script runs as a subprocess against a temp directory
laid out like ``/opt/ml/model`` (a real ``.mar`` from a generated model), bound to
127.0.0.1 on a free port, with its own TMPDIR. Every process group it starts is killed
at the end, and MMS's by its pid as a last resort.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
import time
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import psutil
import pytest
import requests

from frame_infer import deploy
from frame_infer.models import packager, testgen
from frame_infer.client.extract import synthetic_frames
from frame_infer.serving.container import ContainerSettings, find_model, main
from frame_infer.serving.mms import ModelSettings, ServerError
from frame_infer.serving.ports import free_port

from ..helpers.container import SERVE, Container
from ..helpers.dockerignore import context_files
from ..helpers.images import jpeg
from ..helpers.mms import running_mms
from ..helpers.models import RGB_CONFIG

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def opt_ml(tmp_path_factory) -> Path:
    """A folder laid out like SageMaker's /opt/ml: model/rgb.mar (the generated RGB model)."""
    root = tmp_path_factory.mktemp("opt-ml")
    onnx = testgen.write_test_model("rgb", root / "rgb.onnx")
    packager.build_archive(onnx, "rgb", root / "model", config=RGB_CONFIG)
    return root


@pytest.fixture(scope="module")
def container(opt_ml, tmp_path_factory):
    box = Container(opt_ml / "model", tmp_path_factory.mktemp("serve"),
                    FRAME_INFER_BATCH_SIZE="4", FRAME_INFER_MAX_BATCH_DELAY_MS="50",
                    SAGEMAKER_MODEL_SERVER_WORKERS="1")
    try:
        box.ready_line = box.wait_ready()
        yield box
    finally:
        box.stop()


def multipart(count: int, corrupt: int | None = None) -> list:
    frames = synthetic_frames(count, size=(200, 150))
    if corrupt is not None:
        frames[corrupt] = frames[corrupt][:300]
    return [(f"frame_{i:06d}", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(frames)]


def test_ping_is_healthy_once_ready(container):
    response = requests.get(f"{container.url}/ping", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "Healthy", "ready_workers": 1}


def test_invocations_answers_every_image_in_order(container):
    response = requests.post(f"{container.url}/invocations", files=multipart(6, corrupt=3),
                             timeout=120)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["id"] for p in predictions] == [f"frame_{i:06d}" for i in range(6)]
    assert predictions[3]["error"]["code"] == "invalid_image"
    for entry in predictions[:3] + predictions[4:]:
        assert list(entry["probabilities"]) == RGB_CONFIG["labels"]
        assert entry["label"] in RGB_CONFIG["labels"]


def test_registration_uses_the_environment(container):
    """Batch size, delay and workers reach MMS's registration (the management API says so)."""
    management = re.search(r"management (http://127\.0\.0\.1:\d+)", container.ready_line)[1]
    status = requests.get(f"{management}/models/rgb", timeout=10).json()
    status = status[0] if isinstance(status, list) else status
    assert (status["batchSize"], status["maxBatchDelay"]) == (4, 50)
    assert [w["status"] for w in status["workers"]] == ["READY"]


def test_front_rejects_oversized_bodies_and_unknown_paths(container):
    response = requests.post(f"{container.url}/invocations", data=b"\0" * 7_000_000,
                             headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert requests.get(f"{container.url}/nothing/here", timeout=10).status_code == 404
    # The front serves /predictions/NAME too (as `frame-infer serve` does): GET is a 405.
    response = requests.get(f"{container.url}/predictions/rgb", timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    response = requests.post(f"{container.url}/invocations", data=b"x",
                             headers={"Content-Type": "text/plain"}, timeout=60)
    assert response.status_code == 415  # the handler's answer, passed through


def test_deploy_smoke_test_through_boto3(container):
    """deploy.smoke_test via boto3's InvokeEndpoint, against the real entrypoint behind a
    loopback shim that maps SageMaker's /endpoints/NAME/invocations to /invocations."""
    class Shim(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = urllib.request.Request(
                f"{container.url}/invocations", data=body,
                headers={"Content-Type": self.headers["Content-Type"]})
            with urllib.request.urlopen(request, timeout=120) as answer:
                data, status = answer.read(), answer.status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    shim = ThreadingHTTPServer(("127.0.0.1", free_port()), Shim)
    threading.Thread(target=shim.serve_forever, daemon=True).start()
    try:
        runtime = boto3.client("sagemaker-runtime", region_name="us-east-1",
                               endpoint_url=f"http://127.0.0.1:{shim.server_address[1]}",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        result = deploy.smoke_test(runtime, "frame-infer-test", images=4)
    finally:
        shim.shutdown()
        shim.server_close()
    assert result["images"] == 4 and len(result["labels"]) == 4


def test_unpacked_model_and_sigterm(opt_ml, tmp_path):
    """/opt/ml/model may be the unpacked archive itself; SIGTERM stops serve and MMS."""
    model_dir = tmp_path / "opt" / "ml" / "model"
    with zipfile.ZipFile(opt_ml / "model" / "rgb.mar") as archive:
        archive.extractall(model_dir)
    assert (model_dir / "MAR-INF" / "MANIFEST.json").is_file()
    box = Container(model_dir, tmp_path / "serve")
    try:
        assert "model rgb at http://127.0.0.1:" in box.wait_ready()
        response = requests.post(f"{box.url}/invocations", files=multipart(2), timeout=120)
        assert response.status_code == 200 and len(response.json()["predictions"]) == 2
        mms_pid = box.mms_pid()
        os.killpg(box.proc.pid, signal.SIGTERM)
        assert box.proc.wait(60) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(mms_pid, 0)
    finally:
        box.stop()


def test_broken_model_exits_nonzero_with_the_cause(tmp_path):
    """Labels of the wrong count (from the environment: `package` refuses them itself): no
    worker gets READY, serve exits 1 and says why."""
    onnx = testgen.write_test_model("rgb", tmp_path / "rgb.onnx")
    packager.build_archive(onnx, "broken", tmp_path / "opt" / "ml" / "model")
    started = time.monotonic()
    box = Container(tmp_path / "opt" / "ml" / "model", tmp_path / "serve",
                    FRAME_INFER_STARTUP_TIMEOUT_S="90", FRAME_INFER_LABELS="a,b,c")
    try:
        code = box.proc.wait(120)
    finally:
        box.stop()
    assert code == 1
    assert time.monotonic() - started < 90 + 20
    first = box.stderr().splitlines()[0]
    assert "model broken from" in first and "did not become ready" in first
    assert "5 outputs but the config lists 3 labels" in first
    assert "ready:" not in box.stdout()


def test_startup_deadline_is_enforced(opt_ml, tmp_path):
    """A deadline shorter than any start: serve kills MMS and exits 1 at the deadline."""
    box = Container(opt_ml / "model", tmp_path / "serve", FRAME_INFER_STARTUP_TIMEOUT_S="0.5")
    try:
        code = box.proc.wait(60)
    finally:
        box.stop()
    assert code == 1
    assert "no READY worker within 0.5s (FRAME_INFER_STARTUP_TIMEOUT_S)" in box.stderr()


def test_mms_alone_routes_invocations_only_to_startup_models(opt_ml):
    """Why the entrypoint has a front: MMS 1.1.11's /invocations ignores a model registered
    through the management API (the only way to set batching) and asks for model_name."""
    with running_mms(opt_ml / "model", ModelSettings("rgb.mar", "rgb", batch_size=4, workers=1),
                     cleanup=True) as mms:
        response = requests.post(f"{mms.inference_url}/invocations", files=multipart(1),
                                 timeout=60)
    assert response.status_code == 400
    assert "model_name is required" in response.json()["message"]


def test_find_model_layouts(tmp_path, opt_ml):
    mar_dir = opt_ml / "model"
    assert find_model(mar_dir) == (mar_dir.resolve(), "rgb.mar", "rgb")
    nested = tmp_path / "nested"
    with zipfile.ZipFile(mar_dir / "rgb.mar") as archive:
        archive.extractall(nested / "rgb")
    assert find_model(nested) == (nested.resolve(), "rgb", "rgb")
    (nested / "other.mar").write_bytes(b"x")
    with pytest.raises(ServerError, match="exactly one .mar"):
        find_model(nested)
    with pytest.raises(ServerError, match="does not exist"):
        find_model(tmp_path / "missing")


def test_settings_from_environment(monkeypatch, capsys):
    settings = ContainerSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2",
                                               "SAGEMAKER_BIND_TO_PORT": "9090",
                                               "FRAME_INFER_BATCH_SIZE": ""})
    assert (settings.workers, settings.port, settings.batch_size) == (2, 9090, 8)
    assert settings.host == "0.0.0.0" and settings.model_dir == Path("/opt/ml/model")
    monkeypatch.setenv("FRAME_INFER_BATCH_SIZE", "eight")
    assert main(["serve"]) == 2
    assert "FRAME_INFER_BATCH_SIZE='eight' is not int" in capsys.readouterr().err


def test_dockerfile_follows_the_contract():
    text = (ROOT / "packaging" / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert [line for line in lines if line.startswith("FROM")] == ["FROM python:3.11-slim"]
    assert "openjdk-17-jre-headless" in text and "-c /constraints.txt" in text
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/serve"]' in text
    assert os.access(SERVE, os.X_OK)
    # It runs as an unprivileged user: the last USER comes after the last RUN.
    users = [i for i, line in enumerate(lines) if line.startswith("USER ")]
    runs = [i for i, line in enumerate(lines) if line.startswith("RUN ")]
    assert users and users[-1] > runs[-1]
    assert lines[users[-1]].split()[1] not in ("root", "0", "0:0")
    assert re.search(rf"useradd .*{lines[users[-1]].split()[1]}", text.replace("\\\n", " "))


def test_docker_build_context_holds_only_what_the_image_copies():
    """The repository's .dockerignore: the context carries the COPY sources (nothing else
    the build needs) and none of .venv, build, .git or tests (~1 GB otherwise)."""
    files = context_files(ROOT)
    copied = [part for line in (ROOT / "packaging" / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") for part in line.split()[1:-1]]
    assert set(copied) == {"constraints.txt", "setup.cfg", "pyproject.toml", "README.md",
                           "model_handler", "frame_infer", "packaging/serve"}
    for source in copied:
        assert source in files or any(f.startswith(source + "/") for f in files), source
    assert "model_handler/service.py" in files and "frame_infer/serving/mms.py" in files
    for left_out in (".venv/", "build/", ".git/", "tests/", "benchmarks/", "infra/"):
        assert not [f for f in files if f.startswith(left_out)], left_out
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    size = sum((ROOT / f).stat().st_size for f in files)
    assert size < 5_000_000, size


def test_the_management_api_stays_inside_the_container(container):
    """MMS listens on loopback only, the front forwards nothing of the management API
    (registering a .mar from a URL, scaling to 0), and the model is unchanged after."""
    management = re.search(r"management (http://127\.0\.0\.1:(\d+))", container.ready_line)
    inference = re.search(r"MMS pid \d+ on http://127\.0\.0\.1:(\d+)", container.stdout())
    java = psutil.Process(container.mms_pid())
    listening = [c.laddr for c in java.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert {a.ip.removeprefix("::ffff:") for a in listening} == {"127.0.0.1"}  # v4 on v6
    assert sorted(a.port for a in listening) == sorted(
        [int(management[2]), int(inference[1])])
    assert container.port not in {a.port for a in listening}
    attempts = [("POST", "/models?url=https://example.com/evil.mar&initial_workers=1"),
                ("PUT", "/models/rgb?min_worker=0&synchronous=true"), ("DELETE", "/models/rgb"),
                ("GET", "/models"), ("GET", "/models/rgb"), ("OPTIONS", "/"),
                ("POST", "/invocations/../models?url=evil.mar")]
    for method, path in attempts:
        answer = requests.request(method, container.url + path, timeout=10)
        assert answer.status_code in (404, 405, 501), (method, path, answer.status_code)
    proxy = http.client.HTTPConnection("127.0.0.1", container.port, timeout=10)
    try:  # an absolute URI (a proxy request) is not followed either
        proxy.request("GET", f"{management[1]}/models")
        assert proxy.getresponse().status == 404
    finally:
        proxy.close()
    models = requests.get(f"{management[1]}/models", timeout=10).json()["models"]
    assert [m["modelName"] for m in models] == ["rgb"]
    status = requests.get(f"{management[1]}/models/rgb", timeout=10).json()
    status = status[0] if isinstance(status, list) else status
    assert [w["status"] for w in status["workers"]] == ["READY"]


def test_front_answers_503_when_the_model_server_is_full(opt_ml, tmp_path):
    """Job queue 2 + a batch of 2: the front forwards at most 4 requests at once and
    answers the rest 503 server_busy at once (reading their bodies, keeping none); then all
    is well. (A long batch delay makes MMS wait for a full batch: it then holds 4. While
    its worker thread has not yet taken the batch from the queue MMS holds one fewer, and a
    forwarded request may get MMS's own 503, "Consider increasing job queue size": the
    front then passes it on as model_unavailable and frees the slot.)"""
    box = Container(opt_ml / "model", tmp_path / "serve", FRAME_INFER_JOB_QUEUE_SIZE="2",
                    FRAME_INFER_BATCH_SIZE="2", FRAME_INFER_MAX_BATCH_DELAY_MS="5000",
                    FRAME_INFER_JAVA_HEAP_MB="256",
                    FRAME_INFER_JAVA_OPTIONS="-Dframe.infer.probe=yes")
    try:
        assert "job queue 2, Java heap 256 MiB" in box.wait_ready()
        java = psutil.Process(box.mms_pid())
        jvm = java.cmdline()
        assert "-Xmx256m" in jvm and "-Dframe.infer.probe=yes" in jvm
        assert jvm.index("-Dframe.infer.probe=yes") > jvm.index("-XX:TieredStopAtLevel=1")
        (handler,) = [p for p in java.children(recursive=True) if p.ppid() != java.pid]
        body, sent, answers = jpeg(7) + bytes(1_000_000), 12, []

        def send():
            answer = requests.post(f"{box.url}/invocations", data=body, timeout=120,
                                   headers={"Content-Type": "image/jpeg"})
            answers.append((answer.status_code, answer.json()))

        threads = [threading.Thread(target=send) for _ in range(sent)]
        handler.suspend()
        try:
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(answers) < sent - 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            while_stopped = list(answers)
        finally:
            handler.resume()
        for thread in threads:
            thread.join(120)
        following = requests.post(f"{box.url}/invocations", data=jpeg(8), timeout=60,
                                  headers={"Content-Type": "image/jpeg"})
    finally:
        box.stop()

    def busy(status, body) -> bool:
        code, message = body["error"]["code"], body["error"]["message"]
        return status == 503 and (
            (code == "server_busy" and "4 requests are already in flight" in message)
            or (code == "model_unavailable" and "job queue" in message))

    assert len(while_stopped) >= sent - 4 and all(busy(*a) for a in while_stopped)
    predicted = [b for s, b in answers if s == 200]
    assert len(answers) == sent and 2 <= len(predicted) <= 4  # never more than 4 held
    assert all(busy(s, b) for s, b in answers if s != 200)
    assert all("label" in b["predictions"][0] for b in predicted)
    assert following.status_code == 200 and "label" in following.json()["predictions"][0]


def _ping(url: str) -> tuple[int, dict]:
    response = requests.get(f"{url}/ping", timeout=10)
    return response.status_code, response.json()


def test_a_ready_worker_that_cannot_serve_makes_the_front_restart_mms(opt_ml, tmp_path):
    """MMS 1.1.11: scaling the model to 0 workers and back leaves a worker READY with no
    process behind it; requests then hang. The front's probe notices within its timeout,
    /ping says 503 Unhealthy with the reason, and the front restarts MMS: /ping is
    Healthy again and /invocations answers (before: /invocations never answered again)."""
    box = Container(opt_ml / "model", tmp_path / "serve", FRAME_INFER_PROBE_INTERVAL_S="1",
                    FRAME_INFER_PROBE_TIMEOUT_S="3")
    try:
        ready = box.wait_ready()
        management = re.search(r"management (http://127\.0\.0\.1:\d+)", ready)[1]
        assert _ping(box.url)[0] == 200
        for url, method in ((f"{management}/models/rgb?min_worker=0&synchronous=true", "PUT"),
                            (f"{management}/models/rgb?min_worker=1&synchronous=false", "PUT")):
            assert requests.request(method, url, timeout=30).status_code in (200, 202)
        broken = time.monotonic()
        deadline = broken + 30
        status, body = _ping(box.url)
        while status == 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # polling /ping as SageMaker does
            status, body = _ping(box.url)
        unhealthy = (status, body)
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # polling /ping until the restarted MMS answers
            status, body = _ping(box.url)
        healthy_after = time.monotonic() - broken
        answer = requests.post(f"{box.url}/invocations", data=jpeg(3), timeout=30,
                               headers={"Content-Type": "image/jpeg"})
    finally:
        box.stop()
    assert unhealthy[0] == 503 and unhealthy[1]["status"] == "Unhealthy"
    assert "the model does not answer" in unhealthy[1]["reason"]
    assert status == 200 and healthy_after < 30
    assert answer.status_code == 200 and "label" in answer.json()["predictions"][0]
    assert "restarting MMS" in box.stderr() and "MMS restarted in" in box.stderr()


def test_front_gives_mms_errors_the_contract_body():
    """MMS's own answers ({code, type, message}, or an empty 413) leave the front as
    {"error": {"code", "message"}}; the service's own error bodies are kept."""
    from frame_infer.serving.front import FrontHandler

    mms_503 = json.dumps({"code": 503, "type": "ServiceUnavailableException",
                          "message": "No worker is available"}).encode()
    assert json.loads(FrontHandler._as_contract(503, mms_503)) == {"error": {
        "code": "model_unavailable",
        "message": "No worker is available (ServiceUnavailableException)"}}
    assert json.loads(FrontHandler._as_contract(413, b""))["error"]["code"] == \
        "request_too_large"
    own = json.dumps({"error": {"code": "no_images", "message": "empty"}}).encode()
    assert json.loads(FrontHandler._as_contract(400, own)) == json.loads(own)
    assert json.loads(FrontHandler._as_contract(502, b"<html>bad gateway</html>")) == {
        "error": {"code": "http_502", "message": "<html>bad gateway</html>"}}
