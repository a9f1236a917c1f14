"""``http://127.0.0.1:8080/predictions/NAME``: local MMS, or any URL speaking docs/API.md."""
from __future__ import annotations

from model_handler.wire import MMS_MAX_REQUEST_BYTES

from .base import TransportError, parse_answer


class HttpTarget:
    """POSTs each body to ``url`` over a pooled ``requests`` session."""

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
        # Every failure to get a whole answer: refused, reset, timed out, or a body cut
        # short (ChunkedEncodingError) -- all worth sending again.
        self._errors = (requests.RequestException,)

    def send(self, body: bytes, content_type: str) -> tuple[int, dict]:
        try:
            response = self._session.post(self.url, data=body, timeout=self.timeout,
                                          headers={"Content-Type": content_type})
        except self._errors as exc:
            raise TransportError(f"{self.url}: {exc}") from exc
        return response.status_code, parse_answer(response.content)

    def describe(self) -> str:
        return self.url

    def close(self) -> None:
        self._session.close()
