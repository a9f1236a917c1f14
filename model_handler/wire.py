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
ASYNC_MAX_REQUEST_BYTES = 1024 ** 3
"""SageMaker asynchronous inference payload limit (the body is an S3 object)."""


def error_body(code: str, message: str) -> dict:
    """The body of every error the service answers: ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}

IMAGE_ERROR_CODES = frozenset({"invalid_image", "image_too_large", "invalid_instance",
                               "s3_forbidden", "s3_not_found", "s3_error"})
"""Per-image codes: the service's answer for that one image (docs/API.md). The client
treats only these (and predictions) as final; whole-request failures are sent again."""


S3_SCHEME = "s3://"


def split_s3_uri(uri: object) -> tuple[str, str] | None:
    """``"s3://bucket/some/key"`` -> ``("bucket", "some/key")``; None when ``uri`` is not a
    string starting with ``s3://``. Bucket or key may be empty: callers say what they need
    (an object's key for ``s3`` instances, a prefix for the client's locations)."""
    if not isinstance(uri, str) or not uri.startswith(S3_SCHEME):
        return None
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    return bucket, key
