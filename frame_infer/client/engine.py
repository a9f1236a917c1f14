"""The send engine: items -> multi-image requests -> a target -> one row per item, in a sink.

Every way of predicting goes through :meth:`Engine.run`: ``frame-infer predict`` and
``run`` (the sink is the journal on disk), ``Client.predict`` (the sink is memory).
It owns, in this order:

1. skipping what needs no sending (``wanted``) and writing the row of a faceless frame
   (and the ``frame_missing`` row of a file that is gone);
2. packing under the target's payload limit (``payload.Packer``); an item that fits in
   no request gets ``frame_too_large``;
3. the first request while the model's input is being learnt: it goes alone, and its
   answer (``FrameReader.learn``) makes every later frame go shrunk;
4. bounded submission: at most ``2 x concurrency`` requests in flight, so frames are read
   only as fast as answers come back;
5. retries with backoff on throttling, 404 while a model registers, 5xx and transport
   errors: counted (``RetryPolicy.max_attempts``) until the endpoint has answered once,
   then for ``RetryPolicy.outage_budget`` seconds per outage (a server restart is ridden
   out); a 404/405 before any answer is diagnosed by the target (``diagnose``: the
   management port, a model that is not served, no ``/predictions/NAME``), which stops
   the run with an ``EndpointError`` naming the cause; a 413 splits a request in half; a
   request that fails every attempt gives its items ``request_failed`` (not final: a
   rerun sends them again); after ``give_up_after`` such requests in a row the rest are
   not sent (a wrong URL must not take minutes to report);
6. draining: an error in the loop cancels what has not started and is raised.
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterable

from model_handler.wire import (BAD_RESPONSE, FRAME_TOO_LARGE, REQUEST_FAILED, contract_error,
                                error_body)

from .items import Item
from .journal import row_key
from .options import PredictOptions
from .payload import Packer, Request, TooLarge
from .sources import FrameReader
from .summary import FRAME_MISSING
from .targets import RETRYABLE_STATUS, EndpointError, TransportError


def error_rows(items: list[Item], code: str, message: str) -> list[dict]:
    return [{**item.row(), **error_body(code, message)} for item in items]


def too_large_row(too_large: TooLarge, limit: int, fix: str) -> dict:
    """The ``frame_too_large`` row of an item that fits in no request under ``limit``."""
    return error_rows([too_large.item], FRAME_TOO_LARGE,
                      f"{too_large.size} bytes cannot fit under the {limit}-byte request "
                      f"limit: {fix}")[0]


def _prediction(entry: dict) -> dict | None:
    """``label``, ``score``, ``probabilities`` of a well-formed entry; None otherwise
    (NaN and infinities included: they are not JSON, and not a probability)."""
    try:
        probabilities = {str(k): float(v) for k, v in entry["probabilities"].items()}
        score = float(entry["score"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not all(math.isfinite(v) for v in (score, *probabilities.values())):
        return None
    return {"label": str(entry["label"]), "score": score, "probabilities": probabilities}


def rows_from_response(items: list[Item], body: dict) -> list[dict]:
    """Match a 200 answer's entries to the request's items by id.

    An item without an entry gets ``request_failed``, one whose entry is neither a
    prediction nor an error object ``bad_response`` (neither is final: a rerun sends it
    again).
    """
    entries = body.get("predictions") if isinstance(body, dict) else None
    by_id = {p.get("id"): p for p in entries if isinstance(p, dict)} \
        if isinstance(entries, list) else {}
    rows = []
    for item in items:
        entry = by_id.get(item.id)
        row = item.row()
        if entry is None:
            row.update(error_body(REQUEST_FAILED, "the response had no entry for this frame"))
        elif isinstance(entry.get("error"), dict) and isinstance(entry["error"].get("code"), str):
            row["error"] = {"code": entry["error"]["code"],
                            "message": str(entry["error"].get("message", ""))}
        elif (prediction := _prediction(entry)) is not None:
            row.update(prediction)
        else:
            row.update(error_body(BAD_RESPONSE, f"malformed entry: {str(entry)[:200]}"))
        rows.append(row)
    return rows


class Rows:
    """A sink in memory: the rows by item key (``Client.predict``)."""

    def __init__(self):
        self.rows: dict[tuple, dict] = {}
        self._lock = threading.Lock()

    def record(self, rows: list[dict]) -> None:
        with self._lock:
            for row in rows:
                self.rows[row_key(row)] = row


@dataclass
class Sent:
    """What one :meth:`Engine.run` did."""

    keys: list[tuple]
    """The key of every item it was given, in order (sent, skipped or faceless)."""
    skipped: int
    """Items ``wanted`` declined (they had a final row already)."""
    requests: int
    """HTTP requests made, retries included."""
    answered: int
    """Requests the target answered with 200."""
    failed: int
    """Requests that failed as a whole after every attempt (or were not sent)."""
    gave_up: bool
    """True when ``give_up_after`` failed requests in a row stopped the sending."""

    @property
    def unreachable(self) -> bool:
        """The endpoint never answered a request and some failed as a whole: an
        environment problem (down, wrong URL), not a per-image one."""
        return self.gave_up or (self.failed > 0 and self.answered == 0)


class Engine:
    """Sends items to ``target`` and records exactly one row per item in ``sink``.

    ``sink`` is anything with ``record(rows)``: a :class:`~.journal.Journal`, or
    :class:`Rows`. ``progress(n)`` is told of every ``n`` items finished.
    ``too_large_fix`` ends the message of a ``frame_too_large`` row.
    """

    def __init__(self, target, sink, options: PredictOptions, reader: FrameReader,
                 progress: Callable[[int], None] | None = None,
                 too_large_fix: str = "use --model-input WxH or --by-reference",
                 give_up_after: int | None = None):
        self.target, self.sink, self.options, self.reader = target, sink, options, reader
        self.progress = progress or (lambda n: None)
        self.too_large_fix = too_large_fix
        self.give_up_after = give_up_after or 2 * options.concurrency + 2
        self._lock = threading.Lock()
        self._requests = self._answered = self._failed = self._failed_in_a_row = 0
        self._last_failure = ""
        self._outage_since: float | None = None
        """monotonic time of the first retryable failure since the last answer."""
        self._diagnosis_lock = threading.Lock()
        self._diagnosis: tuple | EndpointError | None = None

    # -- the loop ----------------------------------------------------------------------
    def run(self, items: Iterable[Item], read: Callable[[Item], bytes] | None,
            wanted: Callable[[Item], bool] | None = None) -> Sent:
        """Send every item ``wanted`` accepts (all by default); ``read(item)`` gives its
        bytes, None sends S3 references. Returns when every row is recorded."""
        packer = Packer(self.options.batch_size, self.target.max_payload, read is None,
                        first_size=self.reader.first_request_size)
        keys: list[tuple] = []
        skipped = 0
        in_flight: set = set()
        first = [True]
        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            try:
                for item in items:  # may be a stream still being extracted
                    keys.append(item.key)
                    if wanted is not None and not wanted(item):
                        skipped += 1
                    elif not item.sendable:  # a faceless frame: its row says so
                        self.sink.record([item.row()])
                        self.progress(1)
                    else:
                        try:
                            data = None if read is None else read(item)
                        except FileNotFoundError:  # the manifest names a file that is gone
                            self.sink.record(error_rows(
                                [item], FRAME_MISSING, f"{item.path} is missing: extract the "
                                "frames again (`run --re-extract`, or `extract`)"))
                            self.progress(1)
                            continue
                        for ready in packer.add(item, data):
                            self._dispatch(ready, pool, in_flight, first)
                for ready in packer.flush():
                    self._dispatch(ready, pool, in_flight, first)
                while in_flight:
                    self._drain(wait(in_flight, return_when=FIRST_COMPLETED).done, in_flight)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        with self._lock:
            return Sent(keys=keys, skipped=skipped, requests=self._requests,
                        answered=self._answered, failed=self._failed,
                        gave_up=self._failed_in_a_row >= self.give_up_after)

    def _dispatch(self, ready: Request | TooLarge, pool, in_flight: set, first: list) -> None:
        if isinstance(ready, TooLarge):
            self.sink.record([too_large_row(ready, self.target.max_payload,
                                            self.too_large_fix)])
            self.progress(1)
            return
        # Bounded look-ahead: read frames only as fast as requests complete.
        while len(in_flight) >= 2 * self.options.concurrency:
            self._drain(wait(in_flight, return_when=FIRST_COMPLETED).done, in_flight)
        future = pool.submit(self.send, ready)
        future.items = len(ready.items)
        in_flight.add(future)
        if first[0] and self.reader.learning:
            # Its answer names the model's input: the frames after it go shrunk.
            self._drain(wait(in_flight).done, in_flight)
        first[0] = False

    def _drain(self, done, in_flight: set) -> None:
        for future in done:
            in_flight.discard(future)
            future.result()  # a bug in send() must surface, not vanish
            self.progress(future.items)

    # -- one request ---------------------------------------------------------------------
    def _settle(self, answered: bool, failure: str = "") -> None:
        with self._lock:
            if answered:
                self._outage_since = None
            self._failed_in_a_row = 0 if answered else self._failed_in_a_row + 1
            if not answered:
                self._failed += 1
            if failure:
                self._last_failure = failure

    def send(self, request: Request) -> None:
        """Send one request (retrying, splitting on 413) and record its items' rows."""
        with self._lock:
            gave_up = self._failed_in_a_row >= self.give_up_after
            last_failure = self._last_failure
        if gave_up:
            with self._lock:
                self._failed += 1
            self.sink.record(error_rows(
                request.items, REQUEST_FAILED,
                f"not sent: the last {self.give_up_after} requests to "
                f"{self.target.describe()} failed ({last_failure}); fix that and rerun the "
                "same command to send these frames"))
            return
        body, content_type = request.encode()
        policy = self.options.retry
        last, attempts = "no attempt made", 0
        while attempts == 0 or self._again(policy, attempts):
            if attempts:
                time.sleep(self._pause(policy, attempts))
            attempts += 1
            with self._lock:
                self._requests += 1
            try:
                status, answer = self.target.send(body, content_type)
            except TransportError as exc:
                last = str(exc)
                if not exc.retryable:
                    break
                self._outage()
                continue
            if status == 200:
                with self._lock:
                    self._answered += 1
                self._settle(True)
                self.reader.learn(answer)
                self.sink.record(rows_from_response(request.items, answer))
                return
            if status == 413 and len(request.items) > 1:
                self._settle(True)  # the endpoint answered; the halves go through it
                for half in request.halves():
                    self.send(half)
                return
            error = contract_error(status, answer)["error"]
            last = f"HTTP {status}: {error['message']}"
            if status in (404, 405) and (hint := self._diagnose(status)):
                last = f"{last} ({hint})"
            if status not in RETRYABLE_STATUS:
                self._settle(True)  # an answer, not an outage: no reason to stop sending
                self.sink.record(error_rows(request.items, error["code"],
                                            f"{last} (from {self.target.describe()})"))
                return
            self._outage()
        self._settle(False, last)
        with self._lock:
            since = self._outage_since
        plural = "s" if attempts != 1 else ""
        over = (f" over {time.monotonic() - since:.0f}s" if since is not None and
                time.monotonic() - since >= 1 else "")
        self.sink.record(error_rows(
            request.items, REQUEST_FAILED,
            f"{self.target.describe()} failed after {attempts} attempt{plural}{over}: "
            f"{last}; rerun the same command to retry these frames"))

    # -- outages and wrong URLs ----------------------------------------------------------
    def _outage(self) -> None:
        """A retryable failure: start the outage clock unless it runs already."""
        with self._lock:
            if self._outage_since is None:
                self._outage_since = time.monotonic()

    def _riding(self, policy) -> bool:
        """True while an outage after the endpoint's first answer is within the budget."""
        with self._lock:
            return (self._answered > 0 and self._outage_since is not None and
                    time.monotonic() - self._outage_since < policy.outage_budget)

    def _again(self, policy, attempts: int) -> bool:
        return attempts < policy.max_attempts or self._riding(policy)

    def _pause(self, policy, attempts: int) -> float:
        delay = policy.delay(attempts)
        if attempts >= policy.max_attempts:  # riding out: poll, do not back off further
            delay = min(max(delay, 0.05), policy.outage_poll)
        return delay

    def _diagnose(self, status: int) -> str | None:
        """Once, when the endpoint answers 404/405 before any 200: the target's reading of
        it (``EndpointError`` when the URL is surely wrong, raised to stop the run)."""
        diagnose = getattr(self.target, "diagnose", None)
        with self._lock:
            if self._answered or diagnose is None:
                return None
        with self._diagnosis_lock:
            if self._diagnosis is None:
                try:
                    self._diagnosis = (diagnose(status) or "",)
                except EndpointError as exc:
                    self._diagnosis = exc
            if isinstance(self._diagnosis, EndpointError):
                raise self._diagnosis
            return self._diagnosis[0] or None
