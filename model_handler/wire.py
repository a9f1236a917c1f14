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
