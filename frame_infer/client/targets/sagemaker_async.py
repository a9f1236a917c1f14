"""``sagemaker-async:ENDPOINT``: a SageMaker asynchronous endpoint, through S3.

Each request body is uploaded under ``--async-s3`` (one unique key per request),
``invoke_endpoint_async`` queues it, and the answer is polled from the returned
``OutputLocation`` (the container's 200 body) or ``FailureLocation`` (its non-200
body; only returned when the endpoint config has an ``S3FailurePath``). Polling backs
off up to ``max_poll_interval`` and gives up after ``timeout`` seconds with a retryable
``TransportError``, so ``predict``'s retry policy resubmits the request (SageMaker has no
cancel: an earlier invocation may still run, but one still queued expires, since the
request's ``RequestTTLSeconds`` is the same ``timeout``). A failure document is read as
soon as it appears, on the same poll as the output, so a refused request is reported
within one poll interval, not after ``timeout``.

Limits agree with the endpoint template through ``model_handler/wire.py``: bodies up to
``ASYNC_MAX_REQUEST_BYTES`` (the async container's ``max_request_size``; SageMaker itself
takes 1 GB) and ``InvocationTimeoutSeconds`` = ``ASYNC_INVOCATION_TIMEOUT_S`` (the async
container's worker timeout). A container that still answers 413 (``request_too_large``)
makes ``predict`` split the request.
"""
from __future__ import annotations

import math
import time
import uuid

from model_handler.wire import (ASYNC_INVOCATION_TIMEOUT_S, ASYNC_MAX_REQUEST_BYTES, JSON,
                                SAGEMAKER_ASYNC_MAX_REQUEST_BYTES, contract_error, error_body)

from ...errors import InputError
from ...s3 import make_client, parse_s3_uri
from .base import TransportError, parse_answer
from .sagemaker import client_error_answer

DEFAULT_ASYNC_TIMEOUT = 900.0  # seconds from invocation to result, queue time included
REQUEST_TTL_RANGE = (60, 21600)  # what InvokeEndpointAsync accepts for RequestTTLSeconds
# A failure document carries the container's error body, not its status. These codes
# (the serving container's, see docs/API.md) keep their meaning: 413 splits, 500/503 retry.
FAILURE_STATUS = {"request_too_large": 413, "model_unavailable": 503, "internal_error": 500}
MODEL_ERROR_STATUS = 424  # what SageMaker answers synchronously for a model error
_NOT_YET = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = object()


def failure_answer(document: bytes) -> tuple[int, dict]:
    """``(status, body)`` for a failure document written at ``FailureLocation``.

    The container's ``{"error": {"code", "message"}}`` keeps its code; MMS's own errors
    (``{"code": 413, "message": ...}``) keep their status and get the contract's code
    (``model_handler.wire.contract_error``); anything else is a 424 model error with the
    document's text as the message (not retried: the model refused it).
    """
    body = parse_answer(document)
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str) \
            and error["code"] != "bad_response":
        return FAILURE_STATUS.get(error["code"], MODEL_ERROR_STATUS), body
    code = body.get("code")
    if isinstance(code, int) and 400 <= code < 600:  # MMS's own error body
        return code, contract_error(code, body)
    text = document[:500].decode("utf-8", "replace").strip()
    return MODEL_ERROR_STATUS, error_body("async_inference_failed",
                                          text or "empty failure document")


class AsyncSageMakerTarget:
    """``sagemaker-async:ENDPOINT``: ``invoke_endpoint_async`` with S3 input, polled output."""

    def __init__(self, endpoint_name: str, s3_uri: str, timeout: float = DEFAULT_ASYNC_TIMEOUT,
                 runtime=None, s3=None, endpoint_url: str | None = None,
                 s3_endpoint_url: str | None = None, max_attempts: int = 5,
                 pool_size: int = 16, max_payload: int = ASYNC_MAX_REQUEST_BYTES,
                 poll_interval: float = 0.5, max_poll_interval: float = 10.0):
        from botocore.config import Config

        if timeout <= 0:
            raise InputError(f"--async-timeout {timeout}: give a number of seconds above 0")
        if max_payload > SAGEMAKER_ASYNC_MAX_REQUEST_BYTES:
            raise InputError(f"--max-payload {max_payload}: SageMaker asynchronous inference "
                             f"takes at most {SAGEMAKER_ASYNC_MAX_REQUEST_BYTES} bytes (1 GB) "
                             "per request; give a smaller value")
        self.endpoint_name = endpoint_name
        self.location = parse_s3_uri(s3_uri)
        self.timeout = timeout
        low, high = REQUEST_TTL_RANGE
        self.request_ttl = min(high, max(low, math.ceil(timeout)))
        self.max_payload = max_payload
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        config = Config(retries={"mode": "standard", "max_attempts": max_attempts},
                        max_pool_connections=pool_size, read_timeout=120)
        self._runtime = runtime or make_client("sagemaker-runtime", endpoint_url, config=config)
        self._s3 = s3 or make_client("s3", s3_endpoint_url, config=config)

    def send(self, body: bytes, content_type: str) -> tuple[int, dict]:
        """Upload, invoke, poll: ``(status, json_body)`` of the container's answer."""
        from botocore.exceptions import BotoCoreError, ClientError

        inference_id = uuid.uuid4().hex
        key = self.location.key(f"{inference_id}.request")
        try:  # the body's type travels in the invocation's ContentType, not on the object
            self._s3.put_object(Bucket=self.location.bucket, Key=key, Body=body)
        except (BotoCoreError, ClientError) as exc:
            # Wrong bucket or no permission: not for the endpoint to judge; a rerun retries.
            raise TransportError(f"uploading the request to s3://{self.location.bucket}/"
                                 f"{key}: {exc}", retryable=False) from exc
        try:
            response = self._runtime.invoke_endpoint_async(
                EndpointName=self.endpoint_name, InferenceId=inference_id,
                InputLocation=f"s3://{self.location.bucket}/{key}",
                ContentType=content_type, Accept=JSON,
                InvocationTimeoutSeconds=ASYNC_INVOCATION_TIMEOUT_S,
                RequestTTLSeconds=self.request_ttl)
        except ClientError as exc:
            self._delete(key)
            return client_error_answer(exc)
        except BotoCoreError as exc:
            self._delete(key)
            raise TransportError(f"{self.describe()}: {exc}") from exc
        answer = self._poll(response.get("OutputLocation"), response.get("FailureLocation"))
        self._delete(key)
        return answer

    def _poll(self, output: str | None, failure: str | None) -> tuple[int, dict]:
        if not output:
            raise TransportError(f"{self.describe()}: no OutputLocation in the answer",
                                 retryable=False)
        deadline = time.monotonic() + self.timeout
        delay, denied = self.poll_interval, False
        while True:
            for uri, is_output in ((output, True), (failure, False)):
                if not uri:
                    continue
                found = self._get(uri)
                if found is _DENIED:
                    denied = True
                elif found is not None:
                    return (200, parse_answer(found)) if is_output else failure_answer(found)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                hint = ("; S3 denied access (no s3:GetObject/ListBucket on the output path?)"
                        if denied else "")
                raise TransportError(f"{self.describe()}: no result at {output} within "
                                     f"{self.timeout:g}s{hint}", retryable=True)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, self.max_poll_interval)

    def _get(self, uri: str):
        """The object's bytes; None while it does not exist; ``_DENIED`` when refused
        (S3 also answers 403 for a missing key without ListBucket)."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = parse_s3_uri(uri)
        try:
            return self._s3.get_object(Bucket=where.bucket, Key=where.prefix)["Body"].read()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_YET:
                return None
            if code in ("AccessDenied", "403"):
                return _DENIED
            raise TransportError(f"reading {uri}: {exc}", retryable=False) from exc
        except BotoCoreError as exc:
            raise TransportError(f"reading {uri}: {exc}") from exc

    def _delete(self, key: str) -> None:
        """Remove a request body once answered (best effort: lifecycle rules may do it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3.delete_object(Bucket=self.location.bucket, Key=key)
        except (BotoCoreError, ClientError):
            pass

    def describe(self) -> str:
        """``sagemaker-async:ENDPOINT`` (for messages)."""
        return f"sagemaker-async:{self.endpoint_name}"
