"""Metrics after real requests: the container's ``/metrics`` and EMF lines, and
``frame-infer serve --metrics-port``, each in front of the real MMS from a real ``.mar``.

Every request is sent one after another (so each is a handler batch of its own) with
known contents: good images, images with known per-image codes, requests refused whole.
The scraped counts and the EMF lines must equal what was sent.
"""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from frame_infer.client.extract import synthetic_frames
from frame_infer.models import packager, testgen
from frame_infer.serving.ports import free_port

from ..helpers.container import Container
from ..helpers.models import RGB_CONFIG
from ..helpers.prometheus import scrape_until, value

pytestmark = pytest.mark.integration
ENDPOINT = "frame-infer-metrics-test"


def parts(count: int, corrupt: tuple[int, ...] = ()) -> list:
    """``count`` JPEG frames as multipart fields; the ``corrupt`` ones cut short."""
    frames = synthetic_frames(count, size=(120, 90))
    return [(f"f{i}", (f"{i}.jpg", data[:300] if i in corrupt else data, "image/jpeg"))
            for i, data in enumerate(frames)]


def send_known_requests(url: str) -> list[int]:
    """The requests both servers get; their statuses, in order. Handler batches: images
    [3, 4, 2, 0, 0]; per-image errors 2 invalid_image + 1 invalid_instance."""
    good = base64.b64encode(synthetic_frames(1, size=(64, 64))[0]).decode()
    answers = [
        requests.post(url, files=parts(3), timeout=60),
        requests.post(url, files=parts(4, corrupt=(1, 3)), timeout=60),
        requests.post(url, json={"instances": [{"id": "a", "b64": good}, {"id": "b"}]},
                      timeout=60),
        requests.post(url, data=b"hello", headers={"Content-Type": "text/plain"}, timeout=60),
        requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"},
                      timeout=60),
        # Over the size limit: refused before any handler sees it.
        requests.post(url, data=bytes(7_000_000), headers={"Content-Type": "image/jpeg"},
                      timeout=60)]
    codes = [[p.get("error", {}).get("code") for p in a.json()["predictions"]]
             for a in answers[:3]]
    assert codes == [[None] * 3, [None, "invalid_image", None, "invalid_image"],
                     [None, "invalid_instance"]]
    return [a.status_code for a in answers]


def assert_handler_figures(samples: dict) -> None:
    """The figures the handler's EMF lines carry, after :func:`send_known_requests`."""
    assert value(samples, "frame_infer_request_images_count") == 5
    assert value(samples, "frame_infer_request_images_sum") == 9
    assert value(samples, "frame_infer_request_images_bucket", le="0.0") == 2
    assert value(samples, "frame_infer_request_images_bucket", le="2.0") == 3
    assert value(samples, "frame_infer_image_errors_total", code="invalid_image") == 2
    assert value(samples, "frame_infer_image_errors_total", code="invalid_instance") == 1
    assert value(samples, "frame_infer_batch_images_count") == 5
    assert value(samples, "frame_infer_batch_images_sum") == 9
    assert value(samples, "frame_infer_inference_seconds_count") == 5
    assert value(samples, "frame_infer_worker_restarts_total") == 0


def handler_process(java_pid: int) -> psutil.Process:
    """The process running the handler: the child of the worker MMS started."""
    java = psutil.Process(java_pid)
    (handler,) = [p for p in java.children(recursive=True) if p.ppid() != java.pid]
    return handler


def kill_handler_and_see_one_restart(java_pid: int, metrics_url: str, invoke) -> dict:
    """SIGKILL the handler; MMS starts it again: the counter says 1, the model answers."""
    handler_process(java_pid).kill()
    samples = scrape_until(metrics_url,
                           lambda s: value(s, "frame_infer_worker_restarts_total") >= 1)
    assert value(samples, "frame_infer_worker_restarts_total") == 1
    deadline = time.monotonic() + 60
    while (answer := invoke()).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert answer.status_code == 200
    return scrape_until(metrics_url, lambda s: value(s, "frame_infer_batch_images_count") >= 6)


@pytest.fixture(scope="module")
def opt_ml(tmp_path_factory):
    root = tmp_path_factory.mktemp("opt-ml")
    onnx = testgen.write_test_model("rgb", root / "rgb.onnx")
    packager.build_archive(onnx, "rgb", root / "model", config=RGB_CONFIG)
    return root


def emf_lines(stdout: str) -> list[dict]:
    """Every container stdout line that is an EMF document; none may hide behind MMS's
    log prefix (CloudWatch would not read it)."""
    assert not re.search(r"^.+\{\"_aws\"", stdout, re.M), "an EMF line kept a prefix"
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]


def test_container_metrics_and_emf_lines_match_the_requests(opt_ml, tmp_path):
    box = Container(opt_ml / "model", tmp_path / "serve", FRAME_INFER_BATCH_SIZE="4",
                    FRAME_INFER_MAX_BATCH_DELAY_MS="20", FRAME_INFER_ENDPOINT_NAME=ENDPOINT,
                    FRAME_INFER_PROBE_INTERVAL_S="3600")  # no probe batches in the counts
    try:
        box.wait_ready()
        invocations, metrics = f"{box.url}/invocations", f"{box.url}/metrics"
        assert send_known_requests(invocations) == [200, 200, 200, 415, 400, 413]
        samples = scrape_until(
            metrics, lambda s: value(s, "frame_infer_batch_images_count") >= 5)
        assert {labels: n for (name, labels), n in samples.items()
                if name == "frame_infer_requests_total"} == {
            (("status", "200"),): 3, (("status", "400"),): 1, (("status", "413"),): 1,
            (("status", "415"),): 1}
        assert value(samples, "frame_infer_request_seconds_count") == 6
        assert value(samples, "frame_infer_health_probes_total") == 0
        assert_handler_figures(samples)
        records = emf_lines(box.stdout())
        after = kill_handler_and_see_one_restart(
            box.mms_pid(), metrics,
            lambda: requests.post(invocations, files=parts(1), timeout=60))
    finally:
        box.stop()
    assert value(after, "frame_infer_batch_images_count") == 6
    assert value(after, "frame_infer_requests_total", status="200") >= 4
    assert [r["Images"] for r in records] == [3, 4, 2, 0, 0]
    assert [r["ImageErrors"] for r in records] == [0, 2, 1, 0, 0]
    assert [r["Requests"] for r in records] == [1] * 5
    assert [r["RequestStatuses"] for r in records] == [
        {"200": 1}, {"200": 1}, {"200": 1}, {"415": 1}, {"400": 1}]
    assert records[1]["ImageErrorCodes"] == {"invalid_image": 2}
    for record in records:
        assert record["EndpointName"] == ENDPOINT
        assert record["_aws"]["CloudWatchMetrics"] == [{
            "Namespace": "FrameInfer", "Dimensions": [["EndpointName"]],
            "Metrics": [{"Name": "Images", "Unit": "Count"},
                        {"Name": "ImageErrors", "Unit": "Count"},
                        {"Name": "Requests", "Unit": "Count"},
                        {"Name": "InferenceLatency", "Unit": "Milliseconds"}]}]
        assert abs(record["_aws"]["Timestamp"] / 1000 - time.time()) < 600
    assert all(r["InferenceLatency"] > 0 for r in records[:3])


def test_serve_metrics_port_exposes_the_same_figures(tmp_path):
    store = tmp_path / "store"
    onnx = testgen.write_test_model("rgb", tmp_path / "rgb.onnx")
    packager.build_archive(onnx, "rgb", store, config=RGB_CONFIG)
    port, management, metrics_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAME_INFER_")}
    out = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "frame_infer.cli", "serve", "--model-store", str(store),
         "--archive", "rgb.mar", "--port", str(port), "--management-port", str(management),
         "--metrics-port", str(metrics_port), "--batch-size", "4", "--run-dir",
         str(tmp_path / "run")], stdout=out, stderr=subprocess.STDOUT, env=env,
        stdin=subprocess.DEVNULL, start_new_session=True)
    metrics, url = (f"http://127.0.0.1:{metrics_port}/metrics",
                    f"http://127.0.0.1:{port}/predictions/rgb")
    try:
        deadline = time.monotonic() + 120
        while b"metrics at http" not in (tmp_path / "serve.log").read_bytes():
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        assert send_known_requests(url) == [200, 200, 200, 415, 400, 413]
        samples = scrape_until(metrics, lambda s: (
            value(s, "frame_infer_batch_images_count") >= 5
            and value(s, "frame_infer_request_seconds_count") >= 6))
        java_pid = int(re.search(rb"MMS pid (\d+)", (tmp_path / "serve.log").read_bytes())[1])
        after = kill_handler_and_see_one_restart(
            java_pid, metrics, lambda: requests.post(url, files=parts(1), timeout=60))
        listening = {c.laddr for c in psutil.Process(proc.pid).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(60)
        out.close()
    # The front before MMS answers and counts every request, its own 413 included (raw
    # MMS wrote no access-log line for it: Netty answered before MMS's handlers saw it).
    assert {labels: n for (name, labels), n in samples.items()
            if name == "frame_infer_requests_total"} == {
        (("status", "200"),): 3, (("status", "400"),): 1, (("status", "413"),): 1,
        (("status", "415"),): 1}
    assert value(samples, "frame_infer_request_seconds_count") == 6
    assert_handler_figures(samples)
    assert value(after, "frame_infer_batch_images_count") == 6
    assert {(a.ip, a.port) for a in listening} == {("127.0.0.1", metrics_port),
                                                   ("127.0.0.1", port)}  # + the front
    assert code == 0
