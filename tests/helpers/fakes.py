"""Hand-written fakes for unit tests: a ``FakeContext`` with MMS's ``Context`` API.

It mirrors ``mms.context.Context`` (MMS 1.1.11) where the handler touches it, and records
what the handler sets, per request index, so tests can assert each request's answer.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence


class FakeContext:
    """What MMS hands the handler: system properties, request headers, response setters.

    ``headers`` holds one dict per request of the batch, with header names spelled the way
    the client sent them: like MMS, ``get_request_header`` is case-sensitive.
    """

    def __init__(self, headers: Sequence[Mapping[str, Any]] | None = None,
                 model_dir: str = ".", gpu_id: int | None = None, batch_size: int = 1,
                 model_name: str = "model", manifest: dict | None = None):
        self.model_name = model_name
        self.manifest = manifest or {"model": {"modelName": model_name}}
        self._system_properties = {"model_dir": str(model_dir), "gpu_id": gpu_id,
                                   "batch_size": batch_size, "server_name": "MMS",
                                   "server_version": "1.1.11"}
        self.request_headers: list[dict] = [dict(h) for h in (headers or [])]
        self.statuses: dict[int, tuple[int, str]] = {}
        self.content_types: dict[int, str] = {}
        self.response_headers: dict[int, dict[str, str]] = {}
        self.metrics = None

    @classmethod
    def for_content_types(cls, *content_types: str | None, **kwargs) -> "FakeContext":
        """One request per content type (``None``: the request has no Content-Type)."""
        headers = [{} if ct is None else {"Content-Type": ct} for ct in content_types]
        return cls(headers, **kwargs)

    @property
    def system_properties(self) -> dict:
        return self._system_properties

    # -- requests ----------------------------------------------------------------------
    def get_all_request_header(self, idx: int) -> dict:
        return self.request_headers[idx]

    def get_request_header(self, idx: int, key: str):
        return self.request_headers[idx].get(key)

    # -- responses ---------------------------------------------------------------------
    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = (code, phrase)

    def set_response_content_type(self, idx: int, value: str) -> None:
        # The real Context stores it as the 'content-type' response header.
        self.content_types[idx] = value
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx: int) -> str | None:
        return self.response_headers.get(idx, {}).get("content-type")

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.response_headers.setdefault(idx, {})[key] = value

    def get_response_headers(self, idx: int) -> dict:
        return self.response_headers.get(idx, {})

    # -- for assertions ----------------------------------------------------------------
    def status(self, idx: int) -> int | None:
        """The status the handler set for request ``idx``; None when it set none."""
        return self.statuses[idx][0] if idx in self.statuses else None
