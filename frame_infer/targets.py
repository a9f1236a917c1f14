"""Where requests go: local MMS over HTTP, or a SageMaker endpoint through boto3.

Both answer ``send(body, content_type) -> (status, json_body)`` and raise
``TransportError`` when no HTTP answer came back. Retrying is the caller's policy
(``RetryPolicy``); for SageMaker, botocore's ``standard`` retry mode already retries
throttling, transient 5xx and connection errors of the service itself.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass

MMS_MAX_REQUEST_BYTES = 6_553_500
SAGEMAKER_MAX_REQUEST_BYTES = 6 * 1024 * 1024
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class TransportError(Exception):
    """No HTTP answer (connection refused/reset, timeout)."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff (attempt 1 is the first retry)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))


def _json(data: bytes) -> dict:
    try:
        value = json.loads(data or b"{}")
        return value if isinstance(value, dict) else {"error": {"code": "bad_response",
                                                                "message": str(value)[:200]}}
    except ValueError:
        text = data[:200].decode("utf-8", "replace") if data else ""
        return {"error": {"code": "bad_response", "message": f"not JSON: {text!r}"}}


class HttpTarget:
    """``http://127.0.0.1:8080/predictions/NAME`` (or any URL speaking the API)."""

    def __init__(self, url: str, max_payload: int = MMS_MAX_REQUEST_BYTES,
                 timeout: float = 60.0, pool_size: int = 16):
        import requests
        from requests.adapters import HTTPAdapter

        self.url = url
        self.max_payload = max_payload
        self.timeout = timeout
        self._session = requests.Session()
        self._session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=pool_size))
        self._session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=pool_size))
        self._errors = (requests.ConnectionError, requests.Timeout)

    def send(self, body: bytes, content_type: str) -> tuple[int, dict]:
        try:
            response = self._session.post(self.url, data=body, timeout=self.timeout,
                                          headers={"Content-Type": content_type})
        except self._errors as exc:
            raise TransportError(f"{self.url}: {exc}") from exc
        return response.status_code, _json(response.content)

    def describe(self) -> str:
        return self.url


class SageMakerTarget:
    """``sagemaker:ENDPOINT``: boto3 ``sagemaker-runtime`` ``invoke_endpoint``."""

    def __init__(self, endpoint_name: str, client=None, endpoint_url: str | None = None,
                 max_attempts: int = 5, pool_size: int = 16,
                 max_payload: int = SAGEMAKER_MAX_REQUEST_BYTES):
        from botocore.config import Config

        from .s3util import make_client

        self.endpoint_name = endpoint_name
        self.max_payload = max_payload
        config = Config(retries={"mode": "standard", "max_attempts": max_attempts},
                        max_pool_connections=pool_size, read_timeout=120)
        self._client = client or make_client("sagemaker-runtime", endpoint_url, config=config)

    def send(self, body: bytes, content_type: str) -> tuple[int, dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.invoke_endpoint(EndpointName=self.endpoint_name, Body=body,
                                                    ContentType=content_type,
                                                    Accept="application/json")
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ModelError":
                # The container answered non-200: its status and body are passed through.
                status = int(exc.response.get("OriginalStatusCode", 500))
                return status, _json((exc.response.get("OriginalMessage") or "").encode())
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            return status, {"error": {"code": error.get("Code", "sagemaker_error"),
                                      "message": error.get("Message", str(exc))}}
        except BotoCoreError as exc:
            # botocore has already retried connection errors (standard mode).
            raise TransportError(f"sagemaker:{self.endpoint_name}: {exc}") from exc
        return 200, _json(response["Body"].read())

    def describe(self) -> str:
        return f"sagemaker:{self.endpoint_name}"


def make_target(spec: str, endpoint_url: str | None = None, max_payload: int | None = None,
                pool_size: int = 16, max_attempts: int = 5, timeout: float = 60.0,
                async_s3: str | None = None, async_timeout: float | None = None,
                s3_endpoint_url: str | None = None):
    """``http(s)://...`` -> HttpTarget; ``sagemaker:NAME`` -> SageMakerTarget;
    ``sagemaker-async:NAME`` -> AsyncSageMakerTarget (request bodies go to ``async_s3``)."""
    if spec.startswith("sagemaker-async:") and spec.partition(":")[2]:
        from .async_target import ASYNC_MAX_REQUEST_BYTES, DEFAULT_ASYNC_TIMEOUT, \
            AsyncSageMakerTarget

        if not async_s3:
            raise ValueError(f"--endpoint {spec!r} needs --async-s3 s3://BUCKET/PREFIX: "
                             "asynchronous endpoints read request bodies from S3")
        if async_timeout is None:
            async_timeout = DEFAULT_ASYNC_TIMEOUT
        return AsyncSageMakerTarget(spec.partition(":")[2], async_s3, timeout=async_timeout,
                                    endpoint_url=endpoint_url, s3_endpoint_url=s3_endpoint_url,
                                    max_attempts=max_attempts, pool_size=pool_size,
                                    max_payload=max_payload or ASYNC_MAX_REQUEST_BYTES)
    if spec.startswith(("http://", "https://")):
        return HttpTarget(spec, max_payload or MMS_MAX_REQUEST_BYTES, timeout=timeout,
                          pool_size=pool_size)
    if spec.startswith("sagemaker:") and spec.partition(":")[2]:
        return SageMakerTarget(spec.partition(":")[2], endpoint_url=endpoint_url,
                               max_attempts=max_attempts, pool_size=pool_size,
                               max_payload=max_payload or SAGEMAKER_MAX_REQUEST_BYTES)
    raise ValueError(f"--endpoint {spec!r}: use http://HOST:PORT/predictions/NAME (local MMS), "
                     "sagemaker:ENDPOINT_NAME or sagemaker-async:ENDPOINT_NAME")
