"""A loopback stand-in for SageMaker Batch Transform, the part that cannot run here.

The client's SageMaker API calls (``--sagemaker-endpoint-url``) reach this server, which
forwards every one of them unchanged to moto's server (the job API: models, jobs, their
validation and storage) and adds what moto does not do: moto marks a transform job
Completed at once and runs nothing. Here, after moto accepted ``CreateTransformJob``, a
worker does what the service does:

- lists the input objects under ``S3Uri`` (on moto's S3) and splits them over
  ``InstanceCount`` instances (object ``i`` to instance ``i % N``: with ``SplitType``
  None every object is one record and never split);
- each instance asks its container ``GET /execution-parameters`` once, then posts each of
  its objects to ``POST /invocations`` with the job's ``ContentType`` and ``Accept``,
  at most ``MaxConcurrentTransforms`` at once (the job's value, else the container's);
  an object over ``MaxPayloadInMB`` is a failed record, never sent;
- a 200 answer is written as ``<key relative to S3Uri>.out`` under ``S3OutputPath``; any
  other answer writes nothing and the job ends Failed ("ClientError: See job logs for more
  information", as AWS says), the other records still written.

``DescribeTransformJob`` answers moto's description with the worker's status:
InProgress while it runs, then Completed or Failed. The "instances" are threads posting
to real container fronts (``containers[i % len(containers)]``); retries of failed
records (``InvocationsMaxRetries``) and CloudWatch logs are not modelled. Test switches:
``fail_keys`` answers those objects' records with a 500 without posting them, and
``hold`` (an Event) makes every instance wait after ``hold_after`` records until it is set.
"""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .loopback import JsonHandler, StandIn

MIB = 1024 * 1024
FAILURE_REASON = "ClientError: See job logs for more information"


@dataclass
class JobRun:
    """What the worker did for one job; tests assert on it."""

    request: dict
    status: str = "InProgress"
    handshakes: dict[int, dict] = field(default_factory=dict)
    """Instance -> its container's /execution-parameters answer."""
    shares: dict[int, list[str]] = field(default_factory=dict)
    """Instance -> the input keys it was given."""
    records: list[dict] = field(default_factory=list)
    """One per posted object: instance, key, status, content_type, accept, size."""
    failures: list[str] = field(default_factory=list)
    max_in_flight: dict[int, int] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


class BatchTransformStandIn(StandIn):
    def __init__(self, moto_url: str, containers: list[str], s3, sagemaker,
                 fail_keys: tuple[str, ...] = (), hold: threading.Event | None = None,
                 hold_after: int = 0):
        self.moto_url, self.containers, self.s3, self.sagemaker = moto_url, containers, s3, \
            sagemaker
        self.fail_keys, self.hold, self.hold_after = set(fail_keys), hold, hold_after
        self.jobs: dict[str, JobRun] = {}
        self.operations: list[str] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                stand_in.operations.append(operation)
                request = json.loads(body or b"{}")
                if operation == "CreateTransformJob" and not stand_in.model_exists(request):
                    return self.send_json(400, {
                        "__type": "ValidationException",
                        "message": f"Could not find model \"{request.get('ModelName')}\"."})
                status, answer = stand_in.forward(body, dict(self.headers))
                if status == 200 and operation == "CreateTransformJob":
                    stand_in.start(request)
                elif status == 200 and operation == "DescribeTransformJob":
                    answer = stand_in.patch(answer)
                self.send_json(status, answer)

        self.serve(Handler)

    def failures(self) -> dict[str, list[str]]:
        """Job name -> why its records failed (for assertion messages)."""
        return {name: job.failures for name, job in self.jobs.items()}

    # -- the job API: moto's, with the worker's status -------------------------------
    def forward(self, body: bytes, headers: dict) -> tuple[int, bytes]:
        keep = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(self.moto_url + "/", data=body, headers=keep,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def model_exists(self, request: dict) -> bool:
        """AWS refuses a job whose model does not exist; moto does not check."""
        try:
            self.sagemaker.describe_model(ModelName=request.get("ModelName", ""))
            return True
        except self.sagemaker.exceptions.ClientError:
            return False

    def patch(self, answer: bytes) -> bytes:
        doc = json.loads(answer)
        job = self.jobs.get(doc.get("TransformJobName"))
        if job is not None:
            doc["TransformJobStatus"] = job.status
            if job.status == "Failed":
                doc["FailureReason"] = FAILURE_REASON
        return json.dumps(doc).encode()

    # -- the worker ------------------------------------------------------------------
    def start(self, request: dict) -> None:
        job = JobRun(request)
        self.jobs[request["TransformJobName"]] = job
        threading.Thread(target=self._run, args=(job,), daemon=True).start()

    def _run(self, job: JobRun) -> None:
        try:
            source = job.request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
            bucket, prefix = _split(source)
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix)
            keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
            count = job.request["TransformResources"]["InstanceCount"]
            job.shares = {i: keys[i::count] for i in range(count)}
            instances = [threading.Thread(target=self._guarded, args=(job, i, share, prefix))
                         for i, share in job.shares.items()]
            for thread in instances:
                thread.start()
            for thread in instances:
                thread.join()
        except Exception as exc:  # a fault of the rig: the job fails loudly, not by timeout
            job.failures.append(f"stand-in fault: {exc!r}")
        job.status = "Failed" if job.failures else "Completed"
        job.done.set()

    def _guarded(self, job: JobRun, number: int, keys: list[str], prefix: str) -> None:
        try:
            self._instance(job, number, keys, prefix)
        except Exception as exc:  # a fault of the rig: the job fails loudly, not by timeout
            job.failures.append(f"stand-in fault on instance {number}: {exc!r}")

    def _instance(self, job: JobRun, number: int, keys: list[str], prefix: str) -> None:
        url = self.containers[number % len(self.containers)]
        with urllib.request.urlopen(f"{url}/execution-parameters", timeout=10) as resp:
            params = json.loads(resp.read())
        job.handshakes[number] = params
        concurrent = job.request.get("MaxConcurrentTransforms") or \
            params["MaxConcurrentTransforms"]
        max_mb = job.request.get("MaxPayloadInMB") or params["MaxPayloadInMB"]
        in_flight = [0]
        job.max_in_flight[number] = 0

        def record(position_key):
            position, key = position_key
            if self.hold is not None and position >= self.hold_after:
                self.hold.wait()
            with self._lock:
                in_flight[0] += 1
                job.max_in_flight[number] = max(job.max_in_flight[number], in_flight[0])
            try:
                self._record(job, number, url, key, prefix, max_mb)
            finally:
                with self._lock:
                    in_flight[0] -= 1
        with ThreadPoolExecutor(max_workers=concurrent) as pool:
            list(pool.map(record, enumerate(keys)))

    def _record(self, job: JobRun, number: int, url: str, key: str, prefix: str,
                max_mb: int) -> None:
        bucket, _ = _split(job.request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        content_type = job.request["TransformInput"].get("ContentType", "")
        accept = job.request["TransformOutput"].get("Accept", "")
        if len(data) > max_mb * MIB:
            job.failures.append(f"{key}: {len(data)} bytes exceed MaxPayloadInMB {max_mb}")
            return
        if key.rsplit("/", 1)[-1] in self.fail_keys:
            status, answer = 500, b'{"error": {"code": "internal_error", "message": "test"}}'
        else:
            request = urllib.request.Request(f"{url}/invocations", data=data, method="POST",
                                             headers={"Content-Type": content_type,
                                                      "Accept": accept})
            try:
                with urllib.request.urlopen(request, timeout=120) as resp:
                    status, answer = resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, exc.read()
        with self._lock:
            job.records.append({"instance": number, "key": key, "status": status,
                                "content_type": content_type, "accept": accept,
                                "size": len(data)})
        if status != 200:
            job.failures.append(f"{key}: HTTP {status}: {answer[:200]!r}")
            return
        out_bucket, out_prefix = _split(job.request["TransformOutput"]["S3OutputPath"])
        relative = key[len(prefix):].lstrip("/")
        self.s3.put_object(Bucket=out_bucket, Key=f"{out_prefix.rstrip('/')}/{relative}.out",
                           Body=answer)
