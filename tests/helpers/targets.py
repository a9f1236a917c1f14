"""A hand-written fake target for unit tests of the predictor: no server, no network.

``FakeTarget`` speaks the target protocol (``max_payload``, ``send``, ``describe``). It
decodes the multipart body the client sends (one part per frame, named by its id; see
``payload.multipart_body``), records every call thread-safely, and answers each call with
a scripted *behaviour*: a callable ``behaviour(call) -> (status, body)`` that may also
raise ``TransportError``. The behaviours below cover what real endpoints do: a healthy
200 with one prediction per part, error statuses, connection failures, 413 over a size.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from frame_infer.client.options import PredictOptions
from frame_infer.client.targets.base import RetryPolicy, TransportError

from .rows import LABELS

Answer = tuple[int, dict]
Behaviour = Callable[["Call"], Answer]

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_NAME = re.compile(rb'name="([^"]*)"')


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """``(part name, part bytes)`` of a multipart/form-data body, in body order.

    Just enough of RFC 7578 for the client's bodies: the boundary comes from
    ``content_type``, each part is ``--boundary CRLF headers CRLF CRLF data CRLF``.
    """
    match = _BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/form-data") or not match:
        raise ValueError(f"not a multipart/form-data type: {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    chunks = body.split(delimiter)
    if chunks[0] != b"" or not chunks[-1].startswith(b"--"):
        raise ValueError("body does not start with the boundary or lacks the closing one")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ValueError("part not framed by CRLF")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        name = _NAME.search(head)
        if not sep or not name:
            raise ValueError(f"part without headers or name: {head[:80]!r}")
        parts.append((name.group(1).decode(), data))
    return parts


def parse_body(body: bytes, content_type: str) -> list[tuple[str, bytes | None]]:
    """``(frame id, bytes)`` per frame of a request: multipart bytes, or by-reference JSON
    (``{"instances": [{"id", "s3"}]}``, bytes None)."""
    if content_type == "application/json":
        return [(i["id"], None) for i in json.loads(body)["instances"]]
    return parse_multipart(body, content_type)


@dataclass
class Call:
    """One ``send``: what the client sent and what the fake answered."""

    number: int
    """1-based, in the order calls reached the fake."""
    ids: list[str]
    """Frame ids of the body's parts, in body order."""
    sizes: list[int | None]
    """Bytes of each part (None for by-reference instances)."""
    body_size: int
    status: int | None = None
    """The status answered; None while in flight or when the behaviour raised."""
    raised: BaseException | None = None

    @property
    def parts(self) -> int:
        return len(self.ids)


def prediction(frame_id: str) -> dict:
    """The fake model's answer entry for ``frame_id``: deterministic, a different label per
    index (``frame_000003`` -> ``LABELS[3]``), probabilities summing to 1."""
    index = int(frame_id.split("_")[1])  # frame_000003 and its faces frame_000003_face0
    label = LABELS[index % len(LABELS)]
    rest = round(0.2 / (len(LABELS) - 1), 6)
    probabilities = {lb: (1.0 - rest * (len(LABELS) - 1) if lb == label else rest)
                     for lb in LABELS}
    return {"id": frame_id, "label": label, "score": probabilities[label],
            "probabilities": probabilities}


def predicted_row(frame) -> dict:
    """The row the client should write for ``frame`` (a ``FrameRef``) answered by ``ok``."""
    entry = prediction(frame.id)
    return {"index": frame.index, "id": frame.id, "timestamp": frame.timestamp,
            "label": entry["label"], "score": entry["score"],
            "probabilities": entry["probabilities"]}


def options(batch_size=8, concurrency=1, attempts=3, resize_to=None, budget=0.0,
            **more) -> PredictOptions:
    """Options that never sleep between attempts and show no progress bar. Frames go as
    stored unless ``resize_to`` says otherwise: the fakes' answers name no model input,
    and the "auto" mode's small first request is tested on its own. ``budget`` is the
    retry policy's ``outage_budget`` (0: attempts are only counted)."""
    return PredictOptions(batch_size=batch_size, concurrency=concurrency, progress=False,
                          retry=RetryPolicy(max_attempts=attempts, base_delay=0,
                                            max_delay=0, outage_budget=budget),
                          resize_to=resize_to, **more)


# -- behaviours ------------------------------------------------------------------------
def ok(drop: Iterable[str] = (), errors: Mapping[str, dict] | None = None,
       model: dict | None = None) -> Behaviour:
    """200 with one prediction per part; no entry at all for ids in ``drop``; a per-image
    ``{"id", "error": ...}`` entry for ids in ``errors``; ``model`` as the answer's model
    block (none by default: the client then never learns the model's input)."""
    dropped, errors = set(drop), dict(errors or {})

    def answer(call: Call) -> Answer:
        entries = [{"id": i, "error": errors[i]} if i in errors else prediction(i)
                   for i in call.ids if i not in dropped]
        return 200, {"predictions": entries, **({"model": model} if model else {})}
    return answer


def status(code: int, body: dict | None = None) -> Behaviour:
    """Answer ``code`` with ``body`` (default: MMS's own error body for that status)."""
    def answer(call: Call) -> Answer:
        return code, body if body is not None else mms_error(code)
    return answer


def mms_error(code: int, message: str | None = None) -> dict:
    """MMS's error body, ``{"code", "type", "message"}`` (docs/API.md, "Errors from MMS
    itself"); MMS's 413 has an empty body, which targets parse to ``{}``."""
    if code == 413:
        return {}
    types = {404: ("ModelNotFoundException", "Model not found: ferplus"),
             503: ("ServiceUnavailableException",
                   "No worker is available to serve request for model: ferplus. "
                   "Consider increasing job queue size."),
             500: ("InternalServerException", "Worker died.")}
    kind, default = types.get(code, ("HttpException", f"status {code}"))
    return {"code": code, "type": kind, "message": message or default}


def fail(message: str = "connection refused", retryable: bool = True) -> Behaviour:
    """Raise ``TransportError`` (no HTTP answer)."""
    def answer(call: Call) -> Answer:
        raise TransportError(f"fake://model: {message}", retryable=retryable)
    return answer


def too_large_over(max_parts: int, then: Behaviour | None = None,
                   body: dict | None = None) -> Behaviour:
    """413 (MMS's empty body, or ``body``) for a call with more than ``max_parts`` parts;
    otherwise ``then`` (default ``ok()``)."""
    then = then or ok()

    def answer(call: Call) -> Answer:
        if call.parts > max_parts:
            return 413, dict(body) if body is not None else {}
        return then(call)
    return answer


def too_large_with(frame_id: str, then: Behaviour | None = None,
                   body: dict | None = None) -> Behaviour:
    """413 for any call whose body holds ``frame_id`` (that frame alone is over the
    server's limit); otherwise ``then`` (default ``ok()``)."""
    then = then or ok()

    def answer(call: Call) -> Answer:
        if frame_id in call.ids:
            return 413, dict(body) if body is not None else {}
        return then(call)
    return answer


def together(barrier: threading.Barrier, then: Behaviour | None = None) -> Behaviour:
    """Wait until ``barrier.parties`` calls are inside ``send`` at once, then ``then``.

    The barrier's own timeout bounds the wait: if the client never has that many calls in
    flight, ``threading.BrokenBarrierError`` escapes ``send`` (not a ``TransportError``),
    so ``predict`` fails fast instead of hanging.
    """
    then = then or ok()

    def answer(call: Call) -> Answer:
        barrier.wait()
        return then(call)
    return answer


class FakeTarget:
    """A scripted target that records every call.

    ``script`` is either a sequence of behaviours, used one per call in call order (then
    ``default`` for every call after it), or a callable ``script(call) -> behaviour``
    chosen per call (e.g. by ``call.number`` or ``call.ids``).
    """

    def __init__(self, script: Sequence[Behaviour] | Callable[[Call], Behaviour] = (),
                 default: Behaviour | None = None, max_payload: int = 10**8,
                 name: str = "fake://model"):
        self.max_payload = max_payload
        self.script = script
        self.default = default or ok()
        self.name = name
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.name

    def send(self, body: bytes, content_type: str) -> Answer:
        parts = parse_body(body, content_type)
        with self._lock:
            call = Call(number=len(self.calls) + 1, ids=[name for name, _ in parts],
                        sizes=[None if data is None else len(data) for _, data in parts],
                        body_size=len(body))
            self.calls.append(call)
            behaviour = self._behaviour(call)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            code, answer = behaviour(call)
        except BaseException as exc:
            call.raised = exc
            raise
        else:
            call.status = code
            # A copy: the client must not depend on the fake keeping its objects.
            return code, json.loads(json.dumps(answer))
        finally:
            with self._lock:
                self.in_flight -= 1

    def _behaviour(self, call: Call) -> Behaviour:
        if callable(self.script):
            return self.script(call)
        if call.number <= len(self.script):
            return self.script[call.number - 1]
        return self.default

    # -- for assertions ----------------------------------------------------------------
    @property
    def sent_ids(self) -> list[str]:
        """Every frame id of every call, in call order (repeats included)."""
        return [i for call in self.calls for i in call.ids]

    def answered(self, code: int) -> list[Call]:
        """The calls answered with status ``code``."""
        return [c for c in self.calls if c.status == code]
