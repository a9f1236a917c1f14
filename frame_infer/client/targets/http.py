"""``http://127.0.0.1:8080/predictions/NAME``: local MMS, or any URL speaking docs/API.md.

:meth:`HttpTarget.diagnose` tells a wrong URL from a server that is coming up, using
MMS's management API (``GET /models`` lists the served models): the management port
given as the endpoint, a model name that is not served, a URL without
``/predictions/NAME``.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from model_handler.wire import MMS_MAX_REQUEST_BYTES

from .base import EndpointError, TransportError, parse_answer

MODEL_PATH = re.compile(r"/predictions/([^/]+)/?$")
DEFAULT_MANAGEMENT_PORT = 8081
"""MMS's (and ``frame-infer serve``'s) default management port; the other guess is the
inference port + 1 (``serve``'s default pair is 8080 and 8081)."""


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

    # -- what a 404/405 before any answer means -----------------------------------------
    def served_models(self, port: int | None = None) -> list[str] | None:
        """The model names ``GET /models`` lists on this host at ``port`` (default: the
        endpoint's own port); None when nothing there answers as MMS's management API."""
        parts = urlsplit(self.url)
        netloc = parts.netloc if port is None else f"{parts.hostname}:{port}"
        try:
            response = self._session.get(urlunsplit((parts.scheme, netloc, "/models", "", "")),
                                         timeout=min(self.timeout, 3.0))
            models = response.json()["models"] if response.status_code == 200 else None
            return [str(m["modelName"]) for m in models] if isinstance(models, list) else None
        except (*self._errors, ValueError, KeyError, TypeError):
            return None

    def diagnose(self, status: int) -> str | None:
        """Raise :class:`EndpointError` when the URL surely names no served model; else a
        hint for the ``request_failed`` message (the model may still be registering)."""
        parts = urlsplit(self.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        here = self.served_models()
        if here is not None:
            raise EndpointError(
                f"--endpoint {self.url}: port {parts.port} is MMS's management API (it "
                f"serves {_names(here)}), not its inference API: give the inference port "
                "(`frame-infer serve` prints the URL; MMS's default is 8080)")
        match = MODEL_PATH.search(parts.path)
        served = self._management_models(parts.port)
        if match is None and not parts.path.rstrip("/").endswith("/invocations"):
            use = f"; use {origin}/predictions/{served[0]}" if served else ""
            raise EndpointError(
                f"--endpoint {self.url}: HTTP {status} for path {parts.path!r}: MMS serves "
                f"a model at {origin}/predictions/NAME (served here: {_names(served)}){use}")
        name = match.group(1) if match else None
        if name and served and name not in served:
            raise EndpointError(
                f"--endpoint {self.url}: no model {name!r} is served at {origin} (served: "
                f"{_names(served)}); use --endpoint {origin}/predictions/{served[0]}")
        if name and served is None:
            return (f"MMS at {origin} serves no model {name!r} (yet?): check the name; "
                    "the management API's GET /models lists the served ones")
        return None

    def _management_models(self, port: int | None) -> list[str] | None:
        for guess in dict.fromkeys(p for p in ((port or 0) + 1, DEFAULT_MANAGEMENT_PORT)
                                   if 0 < p < 65536 and p != port):
            served = self.served_models(guess)
            if served is not None:
                return served
        return None

    def close(self) -> None:
        self._session.close()


def _names(models: list[str] | None) -> str:
    if models is None:
        return "unknown: no management API found"
    return ", ".join(models) if models else "no model yet"
