"""``predict`` against a SageMaker asynchronous endpoint, with real boto3 over HTTP: the
request bodies and results live on the loopback S3 server (moto), the model is the real
MMS, and SageMaker's async runtime API is a loopback proxy (the one part that cannot
run here)."""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from frame_infer.errors import ExitCode
from frame_infer import cli
from model_handler.wire import ASYNC_INVOCATION_TIMEOUT_S
from frame_infer.client.targets.sagemaker_async import AsyncSageMakerTarget, failure_answer
from frame_infer.client.predict import PredictOptions, predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import HttpTarget, RetryPolicy

from ..helpers.aws import s3_client_with_bucket, sagemaker_client
from ..helpers.frames import write_frames
from ..helpers.loopback import JsonHandler, StandIn
from ..helpers.mms import model_url
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration
BUCKET = "async-bucket"
OUTPUT = f"s3://{BUCKET}/async-out"
FAILURES = f"s3://{BUCKET}/async-failures"
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture()
def s3(aws_env):
    return s3_client_with_bucket(BUCKET)


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


class AsyncSageMakerProxy(StandIn):
    """Stands in for SageMaker's asynchronous runtime API, the one part that cannot run here.

    ``POST /endpoints/{name}/async-invocations`` (what botocore sends for
    ``invoke_endpoint_async``: the input in ``X-Amzn-SageMaker-InputLocation``, the body's
    type in ``X-Amzn-SageMaker-Content-Type``) is answered 202 with
    ``X-Amzn-SageMaker-OutputLocation``, ``X-Amzn-SageMaker-FailureLocation`` and the
    ``InferenceId``; then, in a background thread, the input is read from the loopback S3
    server, posted to the real MMS, and its answer written to S3: a 200 body as
    ``{id}.out`` under the output path, any other as ``{id}-error.out`` under the failure
    path. That queue-and-write is all AWS would do differently; signing, headers, S3 and
    retries are boto3's own. Test switches: ``failure_document`` replaces the model's
    answer with a failure, ``max_body`` answers bigger inputs like the serving container's
    front does (413 ``request_too_large``), ``drop`` never writes a result.
    """

    def __init__(self, mms_url: str, model_name: str, s3_client, failure_document=None,
                 max_body: int | None = None, drop: bool = False):
        self.calls, self.signed, self.requests, self.faults = 0, 0, [], []
        self.failure_document, self.max_body, self.drop = failure_document, max_body, drop
        self._mms, self._model, self._s3 = mms_url, model_name, s3_client
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(JsonHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                match = re.fullmatch(r"/endpoints/([^/]+)/async-invocations", self.path)
                if not match:
                    return self.send_json(404, {"message": f"no route {self.path}"},
                                          {"x-amzn-ErrorType": "UnknownOperationException"})
                headers = {k.lower(): v for k, v in self.headers.items()}
                with proxy._lock:
                    proxy.calls += 1
                    proxy.signed += headers.get("authorization", "").startswith(
                        "AWS4-HMAC-SHA256")
                    proxy.requests.append(headers)
                input_location = headers.get("x-amzn-sagemaker-inputlocation", "")
                if not input_location.startswith("s3://"):
                    return self.send_json(400, {"message": "InputLocation must be an S3 URI"},
                                          {"x-amzn-ErrorType": "ValidationError"})
                inference_id = headers.get("x-amzn-sagemaker-inference-id") or str(uuid.uuid4())
                output = f"{OUTPUT}/{inference_id}.out"
                failure = f"{FAILURES}/{inference_id}-error.out"
                if not proxy.drop:
                    worker = threading.Thread(target=proxy.process, daemon=True, args=(
                        input_location, headers.get("x-amzn-sagemaker-content-type", ""),
                        output, failure))
                    proxy._workers.append(worker)
                    worker.start()
                self.send_json(202, {"InferenceId": inference_id},
                               {"X-Amzn-SageMaker-OutputLocation": output,
                                "X-Amzn-SageMaker-FailureLocation": failure})

        self.serve(Handler)

    def process(self, input_location: str, content_type: str, output: str, failure: str):
        """What the endpoint does with a queued request: model answer -> S3."""
        try:
            self._process(input_location, content_type, output, failure)
        except Exception as exc:  # a fault of the test rig: fail fast, not by timeout
            self.faults.append(repr(exc))
            bucket, key = split_uri(failure)
            self._s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(
                {"error": {"code": "proxy_fault", "message": repr(exc)}}).encode())

    def _process(self, input_location: str, content_type: str, output: str, failure: str):
        bucket, key = split_uri(input_location)
        body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if self.failure_document is not None:
            status, answer = 500, self.failure_document
        elif self.max_body is not None and len(body) > self.max_body:
            status, answer = 413, json.dumps({"error": {
                "code": "request_too_large", "message": f"body of {len(body)} bytes"}}).encode()
        else:
            request = urllib.request.Request(
                f"{self._mms}/predictions/{self._model}", data=body, method="POST",
                headers={"Content-Type": content_type})
            try:
                with urllib.request.urlopen(request, timeout=60) as resp:
                    status, answer = resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, exc.read()
        bucket, key = split_uri(output if status == 200 else failure)
        self._s3.put_object(Bucket=bucket, Key=key, Body=answer)

    def __exit__(self, *exc):
        super().__exit__(*exc)
        for worker in self._workers:
            worker.join(timeout=60)


def objects(s3, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def make_target(proxy, s3, prefix: str, **kwargs) -> AsyncSageMakerTarget:
    return AsyncSageMakerTarget("ferplus-async", f"s3://{BUCKET}/{prefix}",
                                runtime=sagemaker_client(proxy.url), s3=s3,
                                poll_interval=0.05, max_poll_interval=0.5, **kwargs)


def test_async_endpoint_end_to_end_through_the_cli(s3, mms, tmp_path, capsys):
    """``frame-infer predict --endpoint sagemaker-async:...``: frame order, a corrupt frame
    in place (and exit 1, naming it), the same answers as the real-time path, inputs
    cleaned up, outputs kept."""
    write_frames(tmp_path / "frames", 23, corrupt=(9,))
    with AsyncSageMakerProxy(mms.inference_url, "ferplus", s3) as proxy:
        code = cli.main([
            "predict", str(tmp_path / "frames"), "--out", str(tmp_path / "out"),
            "--endpoint", "sagemaker-async:ferplus-async", "--async-s3",
            f"s3://{BUCKET}/async-in/run1", "--sagemaker-endpoint-url", proxy.url,
            "--async-timeout", "30", "--frames-per-request", "8", "--concurrency", "2"])
    assert proxy.faults == [] and code == ExitCode.IMAGE_ERRORS  # one invalid frame
    assert "1 frame invalid_image: " in capsys.readouterr().err
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(23))
    assert [r["id"] for r in rows] == [f"frame_{i:06d}" for i in range(23)]
    assert rows[9]["error"]["code"] == "invalid_image"
    assert all("label" in r for i, r in enumerate(rows) if i != 9)
    # One frame alone (its answer names the model's input), then ceil(22 / 8); every call
    # SigV4-signed.
    assert proxy.calls == proxy.signed == 1 + 3
    for headers in proxy.requests:
        assert headers["x-amzn-sagemaker-content-type"].startswith("multipart/form-data")
        assert headers["x-amzn-sagemaker-accept"] == "application/json"
        assert headers["x-amzn-sagemaker-inputlocation"].startswith(
            f"s3://{BUCKET}/async-in/run1/")
    assert objects(s3, "async-in/run1/") == []  # request bodies removed once answered
    assert len(objects(s3, "async-out/")) >= 3
    direct = predict(local_frames(tmp_path / "frames"),
                     HttpTarget(model_url(mms)), tmp_path / "direct",
                     PredictOptions(batch_size=8, progress=False))
    assert direct.predicted == 22
    for a, b in zip(rows, read_rows(tmp_path / "direct")):
        assert a.get("label") == b.get("label")
        if "score" in a:
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def test_failure_documents_become_per_frame_errors(s3, mms, tmp_path):
    """A failure written at FailureLocation: its error code on every frame, not retried in
    the run (a whole-request refusal: a rerun sends the frames again); a real container
    refusal (415) comes back the same way."""
    write_frames(tmp_path / "frames", 6)
    document = json.dumps({"error": {"code": "invalid_request",
                                     "message": "forced by the test"}}).encode()
    with AsyncSageMakerProxy(mms.inference_url, "ferplus", s3,
                             failure_document=document) as proxy:
        summary = predict(local_frames(tmp_path / "frames"), make_target(proxy, s3, "fail"),
                          tmp_path / "out",
                          PredictOptions(batch_size=4, progress=False, retry=FAST_RETRY,
                                         resize_to=None))
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(6))
    assert [r["error"]["code"] for r in rows] == ["invalid_request"] * 6
    assert all("forced by the test" in r["error"]["message"] for r in rows)
    assert (summary.errors, summary.unfinished, proxy.calls) == (6, 6, 2)
    with AsyncSageMakerProxy(mms.inference_url, "ferplus", s3) as proxy:
        status, body = make_target(proxy, s3, "fail").send(b"hello", "text/plain")
    assert status == 424 and body["error"]["code"] == "unsupported_content_type"
    # How documents map: 413 splits, 5xx retry, unknown text is a model error.
    assert failure_answer(b'{"error": {"code": "request_too_large", "message": "x"}}')[0] == 413
    assert failure_answer(b'{"error": {"code": "internal_error", "message": "x"}}')[0] == 500
    assert failure_answer(b'{"code": 503, "type": "ServiceUnavailableException",'
                          b' "message": "no worker"}') == (503, {"error": {
                              "code": "model_unavailable",
                              "message": "no worker (ServiceUnavailableException)"}})
    assert failure_answer(b"Received server error (500) from model") == (424, {"error": {
        "code": "async_inference_failed", "message": "Received server error (500) from model"}})


def test_container_413_through_a_failure_document_splits_the_request(s3, mms, tmp_path):
    """1 GB fits an async request, the container's limit may not: 413 halves, none lost."""
    sizes = [f.size for f in write_frames(tmp_path / "frames", 8)]
    limit = sum(sorted(sizes)[-3:]) + 2_000  # any 3 frames fit, 4 may not
    with AsyncSageMakerProxy(mms.inference_url, "ferplus", s3, max_body=limit) as proxy:
        summary = predict(local_frames(tmp_path / "frames"), make_target(proxy, s3, "split"),
                          tmp_path / "out", PredictOptions(batch_size=8, progress=False,
                                                           resize_to=None))  # shrunk: all fit
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(8))
    assert summary.predicted == 8 and proxy.calls == 1 + 2 + 4  # 8 -> 4 + 4 -> 2 + 2 + 2 + 2


def test_output_that_never_appears_is_retried_then_request_failed(s3, mms, tmp_path):
    """No result within --async-timeout: resubmitted per the retry policy, then
    ``request_failed`` rows that a rerun (here with a working endpoint) completes."""
    write_frames(tmp_path / "frames", 5)
    frames = local_frames(tmp_path / "frames")
    options = PredictOptions(batch_size=5, progress=False, retry=FAST_RETRY, resize_to=None)
    with AsyncSageMakerProxy(mms.inference_url, "ferplus", s3, drop=True) as proxy:
        summary = predict(frames, make_target(proxy, s3, "lost", timeout=0.3),
                          tmp_path / "out", options)
    assert proxy.calls == FAST_RETRY.max_attempts
    assert summary.unfinished == 5
    failed = read_rows(tmp_path / "out")
    assert [r["error"]["code"] for r in failed] == ["request_failed"] * 5
    assert "no result at s3://" in failed[0]["error"]["message"]
    with AsyncSageMakerProxy(mms.inference_url, "ferplus", s3) as proxy:
        rerun = predict(frames, make_target(proxy, s3, "lost", timeout=30), tmp_path / "out",
                        options)
    assert (rerun.predicted, rerun.unfinished, proxy.calls) == (5, 0, 1)
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(5)) and all("label" in r for r in rows)


def test_failure_is_reported_promptly_and_the_call_carries_the_time_limits(s3, mms, tmp_path):
    """A failure document (SageMaker's own text here) comes back as soon as it is written,
    not after the 120 s timeout; every call sends InvocationTimeoutSeconds = the async
    container's worker timeout and RequestTTLSeconds = the client's timeout."""
    document = (b"Received server error (500) from primary with message "
                b"\"model failed\". See the endpoint's CloudWatch logs.")
    write_frames(tmp_path / "frames", 3)
    with AsyncSageMakerProxy(mms.inference_url, "ferplus", s3,
                             failure_document=document) as proxy:
        target = make_target(proxy, s3, "prompt", timeout=120)
        started = time.monotonic()
        summary = predict(local_frames(tmp_path / "frames"), target, tmp_path / "out",
                          PredictOptions(batch_size=3, progress=False, retry=FAST_RETRY,
                                         resize_to=None))
        elapsed = time.monotonic() - started
    assert proxy.faults == [] and elapsed < 10
    assert (summary.errors, proxy.calls) == (3, 1)  # a model error: not retried
    rows = read_rows(tmp_path / "out")
    assert {r["error"]["code"] for r in rows} == {"async_inference_failed"}
    assert all("model failed" in r["error"]["message"] for r in rows)
    headers, = proxy.requests
    assert headers["x-amzn-sagemaker-invocationtimeoutseconds"] == \
        str(ASYNC_INVOCATION_TIMEOUT_S)
    assert headers["x-amzn-sagemaker-requestttlseconds"] == "120"
