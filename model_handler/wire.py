"""Constants of the wire contract (docs/API.md), shared by the service and the client.

This module imports nothing: the client (``frame_infer``) reads its limits and content
types from here, so the two sides cannot drift apart.
"""
from __future__ import annotations

JPEG = "image/jpeg"
PNG = "image/png"
X_IMAGE = "application/x-image"
MULTIPART = "multipart/form-data"
JSON = "application/json"
NPY = "application/x-npy"

MMS_MAX_REQUEST_BYTES = 6_553_500
"""MMS's default ``max_request_size``: a larger body gets 413 with an empty body."""
SAGEMAKER_MAX_REQUEST_BYTES = 6 * 1024 * 1024
"""SageMaker real-time ``InvokeEndpoint`` payload limit."""
SAGEMAKER_ASYNC_MAX_REQUEST_BYTES = 1024 ** 3
"""SageMaker asynchronous inference payload limit (the body is an S3 object)."""
ASYNC_MAX_REQUEST_BYTES = 100 * 1024 ** 2
"""Request body limit of an asynchronous deployment, one number for both sides: the
endpoint template's ``FRAME_INFER_MAX_REQUEST_BYTES`` for async (the container front's and
MMS's ``max_request_size``) and the async client's default payload limit. Below
SageMaker's 1 GB because MMS keeps every queued body on the Java heap (heap = 2 x queue x
limit + 256 MiB: 1.8 GiB at this limit, 16 GiB at 1 GB)."""
ASYNC_INVOCATION_TIMEOUT_S = 900
"""Seconds one async request may run: the template's ``SAGEMAKER_MODEL_SERVER_TIMEOUT``
for async (the worker timeout) and the ``InvocationTimeoutSeconds`` the client sends
(SageMaker's default; its maximum is 3600)."""


def error_body(code: str, message: str) -> dict:
    """The body of every error the service answers: ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


# MMS's own error answers ({"code": <status>, "type": "...Exception", "message": "..."}, or
# an empty body for 413) in the contract's terms. The container front and the client
# both present them as {"error": {"code", "message"}} with these codes.
MMS_STATUS_CODES = {400: "bad_request", 404: "model_not_found", 413: "request_too_large",
                    500: "internal_error", 503: "model_unavailable", 507: "model_unavailable"}
MMS_EMPTY_MESSAGES = {413: "the request body is over the server's max_request_size: send "
                           "fewer or smaller images per request"}


def contract_error(status: int, body: object) -> dict:
    """``body`` (a parsed JSON answer, or None) of a non-200 answer as the contract's
    error body: the service's own ``{"error": ...}`` is kept; MMS's
    ``{"code", "type", "message"}`` and empty bodies are translated."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict) \
            and isinstance(body["error"].get("code"), str):
        return {"error": {"code": body["error"]["code"],
                          "message": str(body["error"].get("message", ""))}}
    code = MMS_STATUS_CODES.get(status, f"http_{status}")
    if isinstance(body, dict) and body.get("message"):
        kind = f" ({body['type']})" if body.get("type") else ""
        return error_body(code, f"{body['message']}{kind}")
    return error_body(code, MMS_EMPTY_MESSAGES.get(status, f"HTTP {status} with no details"))


INVALID_IMAGE = "invalid_image"
IMAGE_TOO_LARGE = "image_too_large"
INVALID_INSTANCE = "invalid_instance"
S3_FORBIDDEN = "s3_forbidden"
S3_NOT_FOUND = "s3_not_found"
S3_ERROR = "s3_error"
INVALID_OUTPUT = "invalid_output"
"""The model's output for the image holds NaN or Inf (JSON cannot carry them)."""
IMAGE_ERROR_CODES = frozenset({INVALID_IMAGE, IMAGE_TOO_LARGE, INVALID_INSTANCE,
                               S3_FORBIDDEN, S3_NOT_FOUND, S3_ERROR, INVALID_OUTPUT})
"""Per-image codes: the service's answer for that one image (docs/API.md). The client
treats only these (and predictions) as final; whole-request failures are sent again."""

S3_SLOW = "s3_slow"
"""Whole request, 503: its S3 objects were not fetched while other requests of the same
MMS batch waited (``s3_shared_wait_s``); safe to retry."""

REQUEST_FAILED = "request_failed"
"""Client-side: the item's request failed as a whole after every attempt (or its answer
had no entry for it); a rerun sends it again."""
BAD_RESPONSE = "bad_response"
"""Client-side: the endpoint answered something that is not this contract's JSON."""
FRAME_TOO_LARGE = "frame_too_large"
"""Client-side: the frame fits in no request under the endpoint's payload limit."""
TRANSFORM_FAILED = "transform_failed"
"""Client-side: the Batch Transform job wrote no output for the frame's shard."""


S3_SCHEME = "s3://"


def split_s3_uri(uri: object) -> tuple[str, str] | None:
    """``"s3://bucket/some/key"`` -> ``("bucket", "some/key")``; None when ``uri`` is not a
    string starting with ``s3://``. Bucket or key may be empty: callers say what they need
    (an object's key for ``s3`` instances, a prefix for the client's locations)."""
    if not isinstance(uri, str) or not uri.startswith(S3_SCHEME):
        return None
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    return bucket, key
