"""``sagemaker:ENDPOINT``: a real-time SageMaker endpoint through boto3's ``invoke_endpoint``."""
from __future__ import annotations

from model_handler.wire import JSON, SAGEMAKER_MAX_REQUEST_BYTES, error_body

from ...s3 import make_client
from .base import TransportError, parse_answer


def client_error_answer(exc) -> tuple[int, dict]:
    """``(status, body)`` for a botocore ``ClientError`` of the runtime API itself."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
    return status, error_body(error.get("Code", "sagemaker_error"),
                              error.get("Message", str(exc)))


class SageMakerTarget:
    """``invoke_endpoint`` with the request body; the container's answer passed through."""

    def __init__(self, endpoint_name: str, client=None, endpoint_url: str | None = None,
                 max_attempts: int = 5, pool_size: int = 16,
                 max_payload: int = SAGEMAKER_MAX_REQUEST_BYTES):
        from botocore.config import Config

        self.endpoint_name = endpoint_name
        self.max_payload = max_payload
        config = Config(retries={"mode": "standard", "max_attempts": max_attempts},
                        max_pool_connections=pool_size, read_timeout=120)
        self._client = client or make_client("sagemaker-runtime", endpoint_url, config=config)

    def send(self, body: bytes, content_type: str) -> tuple[int, dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.invoke_endpoint(EndpointName=self.endpoint_name, Body=body,
                                                    ContentType=content_type, Accept=JSON)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ModelError":
                # The container answered non-200: its status and body are passed through.
                status = int(exc.response.get("OriginalStatusCode", 500))
                return status, parse_answer((exc.response.get("OriginalMessage") or "").encode())
            return client_error_answer(exc)
        except BotoCoreError as exc:
            # botocore has already retried connection errors (standard mode).
            raise TransportError(f"sagemaker:{self.endpoint_name}: {exc}") from exc
        return 200, parse_answer(response["Body"].read())

    def describe(self) -> str:
        return f"sagemaker:{self.endpoint_name}"
