"""What every target shares: the protocol, transport errors, retry policy, answer parsing.

A target answers ``send(body, content_type) -> (status, json_body)`` and raises
``TransportError`` when no HTTP answer came back. Retrying is the caller's policy
(``RetryPolicy``, applied by ``frame_infer.client.engine``); for SageMaker, botocore's
``standard`` retry mode already retries throttling, transient 5xx and connection errors
of the service itself. The wire contract is docs/API.md.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Protocol

from model_handler.wire import BAD_RESPONSE, error_body

from ...errors import FrameInferError, InputError

RETRYABLE_STATUS = frozenset({404, 408, 429, 500, 502, 503, 504})
"""Statuses retried with backoff. 404 too: MMS answers "Model not found" while a
restarted server registers the model (a wrong model name is diagnosed instead:
``Target.diagnose``)."""


class Target(Protocol):
    """Where requests go. ``max_payload`` is the largest body it takes, in bytes."""

    max_payload: int

    def send(self, body: bytes, content_type: str) -> tuple[int, dict]:
        """POST one request body; ``(HTTP status, JSON body as a dict)``."""

    def describe(self) -> str:
        """The target as the user wrote it (for messages)."""

    # Optional: ``diagnose(status) -> str | None``, asked once when the endpoint answers
    # 404/405 before it has ever answered 200. It raises :class:`EndpointError` when the
    # URL is surely wrong (it names the real cause), or returns a hint for the message.


class TransportError(FrameInferError):
    """No HTTP answer (connection refused/reset, timeout); ``retryable`` says whether
    sending again can help."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class EndpointError(InputError):
    """``--endpoint`` names no model that answers: a management port, a model name the
    server does not serve, a URL without ``/predictions/NAME``. Nothing was predicted;
    the message names the cause and the URL to use."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long a request is retried before its frames get ``request_failed``.

    Two rules, because a wrong URL and a restarting server look alike on the wire
    (connection refused, 404 "Model not found", 503) and differ only in history:

    - until the endpoint has answered once in this run, a request is sent at most
      ``max_attempts`` times (a typo in ``--endpoint`` is reported in seconds);
    - once it has answered, an outage (retryable failures with no answer in between) is
      ridden out for ``outage_budget`` seconds, counted from the outage's first failure
      and shared by every request in flight: an ordinary restart (MMS took ~13 s to
      come back and register its model) costs time, not frames. Past the budget the
      counted rule applies again.
    """

    max_attempts: int = 5
    """Attempts per request, the first one included (the budget may add more)."""
    base_delay: float = 0.25
    max_delay: float = 8.0
    outage_budget: float = 60.0
    """Seconds an outage after the endpoint's first answer is retried through; 0: only
    ``max_attempts`` counts."""
    outage_poll: float = 1.0
    """The longest wait between two attempts while riding out an outage (so a server
    that is back is used within about a second)."""

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
