"""What every target shares: the protocol, transport errors, retry policy, answer parsing.

A target answers ``send(body, content_type) -> (status, json_body)`` and raises
``TransportError`` when no HTTP answer came back. Retrying is the caller's policy
(``RetryPolicy``, applied by ``frame_infer.client.predict``); for SageMaker, botocore's
``standard`` retry mode already retries throttling, transient 5xx and connection errors
of the service itself. The wire contract is docs/API.md.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Protocol

from model_handler.wire import BAD_RESPONSE, error_body

from ...errors import FrameInferError

RETRYABLE_STATUS = frozenset({404, 408, 429, 500, 502, 503, 504})
"""Statuses retried with backoff. 404 too: MMS answers "Model not found" while a
restarted server registers the model (a wrong model name fails after the retries)."""


class Target(Protocol):
    """Where requests go. ``max_payload`` is the largest body it takes, in bytes."""

    max_payload: int

    def send(self, body: bytes, content_type: str) -> tuple[int, dict]:
        """POST one request body; ``(HTTP status, JSON body as a dict)``."""

    def describe(self) -> str:
        """The target as the user wrote it (for messages)."""


class TransportError(FrameInferError):
    """No HTTP answer (connection refused/reset, timeout); ``retryable`` says whether
    sending again can help."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is sent before its frames get ``request_failed``."""

    max_attempts: int = 5
    """Attempts per request, the first one included."""
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff (attempt 1 is the first retry)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))


def parse_answer(data: bytes) -> dict:
    """A response body as a dict; anything that is not a JSON object becomes an error
    body with the code ``bad_response`` (docs/API.md, "Client-side codes")."""
    try:
        value = json.loads(data or b"{}")
        return value if isinstance(value, dict) else error_body(BAD_RESPONSE,
                                                                str(value)[:200])
    except ValueError:
        text = data[:200].decode("utf-8", "replace") if data else ""
        return error_body(BAD_RESPONSE, f"not JSON: {text!r}")
