"""The contract's shared helpers in model_handler/wire.py."""
from __future__ import annotations

import pytest

from model_handler.wire import contract_error, split_s3_uri


@pytest.mark.parametrize("status, body, code, fragment", [
    (404, {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: x"},
     "model_not_found", "Model not found: x (ModelNotFoundException)"),
    (503, {"code": 503, "type": "ServiceUnavailableException", "message": "No worker"},
     "model_unavailable", "No worker"),
    (500, {"code": 500, "type": "InternalServerException", "message": "Worker died."},
     "internal_error", "Worker died."),
    (413, None, "request_too_large", "max_request_size"),
    (413, {}, "request_too_large", "max_request_size"),
    (418, None, "http_418", "HTTP 418 with no details"),
    (400, {"error": {"code": "too_many_images", "message": "at most 2"}}, "too_many_images",
     "at most 2"),
])
def test_mms_errors_become_the_contracts_error_body(status, body, code, fragment):
    error = contract_error(status, body)["error"]
    assert error["code"] == code and fragment in error["message"]
    assert set(error) == {"code", "message"}


@pytest.mark.parametrize("uri, parts", [
    ("s3://bucket/a/b.jpg", ("bucket", "a/b.jpg")), ("s3://bucket", ("bucket", "")),
    ("s3:///key", ("", "key")), ("S3://bucket/k", None), ("bucket/k", None), (None, None),
    (7, None)])
def test_split_s3_uri(uri, parts):
    assert split_s3_uri(uri) == parts
