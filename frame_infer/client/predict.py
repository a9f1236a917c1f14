"""``predict``: frames -> multi-image requests -> endpoint, many in flight, nothing lost.

Frames are packed into requests under the endpoint's payload limit, sent by
``concurrency`` threads, retried with backoff on throttling, 404, 5xx and transport
errors, split in half on 413, and every frame ends with exactly one row: its
prediction or its error. Only the service's answer for an image is final; a rerun
sends every other frame again (``journal``). Results are journaled as they arrive (resumable) and
written in frame order at the end.

In face mode (frames extracted with faces) the unit is a face: each crop is sent as its
own image and gets its own row (``face``, ``box``); a frame without a face is not sent
and gets one row with ``"face": null`` and no label.
"""
from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from model_handler.wire import contract_error, error_body

from ..errors import InputError
from .journal import WHOLE_FRAME, Journal, is_final
from .options import PredictOptions
from .payload import Request, TooLarge, pack
from .sources import FrameReader, FrameRef, local_frames, s3_frames
from .targets import RETRYABLE_STATUS, TransportError, make_target


@dataclass
class PredictSummary:
    frames: int
    """Rows: frames, or in face mode faces plus frames without a face."""
    predicted: int
    errors: int
    """Frames whose row is an error (per-image or whole-request)."""
    skipped: int
    """Frames that already had a final result from an earlier run."""
    unfinished: int
    """Frames without a final row (their request failed as a whole): a rerun sends them."""
    first_failure: str | None
    """The message of the first such frame: why they could not be sent."""
    requests: int
    seconds: float
    output: Path | None
    error_codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Error code -> (frames with it, one sample message), most frequent first."""
    no_face: int = 0
    """Face mode: frames without a face (their row has ``"face": null``, no label)."""
    faces_mode: bool = False
    """True when the rows are faces (frames extracted with faces)."""

    @property
    def complete(self) -> bool:
        """True when every row has a prediction (or, in face mode, says "no face")."""
        return self.output is not None and self.predicted + self.no_face == self.frames


def _error_rows(frames: list[FrameRef], code: str, message: str) -> list[dict]:
    return [{**f.row(), **error_body(code, message)} for f in frames]


def too_large_rows(item: TooLarge, limit: int, fix: str) -> list[dict]:
    """The ``frame_too_large`` row of a frame that fits in no request under ``limit``."""
    return _error_rows([item.frame], "frame_too_large",
                       f"{item.size} bytes cannot fit under the {limit}-byte request limit: "
                       f"{fix}")


def _prediction(entry: dict) -> dict | None:
    """``label``, ``score``, ``probabilities`` of a well-formed entry; None otherwise."""
    try:
        probabilities = {str(k): float(v) for k, v in entry["probabilities"].items()}
        return {"label": str(entry["label"]), "score": float(entry["score"]),
                "probabilities": probabilities}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def rows_from_response(frames: list[FrameRef], body: dict) -> list[dict]:
    """Match a 200 answer's entries to the request's frames by id.

    A frame without an entry, or with an entry that is neither a prediction nor an
    error object, gets ``bad_response`` (not final: a rerun sends it again).
    """
    entries = body.get("predictions") if isinstance(body, dict) else None
    by_id = {p.get("id"): p for p in entries if isinstance(p, dict)} \
        if isinstance(entries, list) else {}
    rows = []
    for frame in frames:
        entry = by_id.get(frame.id)
        row = frame.row()
        if entry is None:
            row.update(error_body("request_failed", "the response had no entry for this frame"))
        elif isinstance(entry.get("error"), dict) and isinstance(entry["error"].get("code"), str):
            row["error"] = {"code": entry["error"]["code"],
                            "message": str(entry["error"].get("message", ""))}
        elif (prediction := _prediction(entry)) is not None:
            row.update(prediction)
        else:
            row.update(error_body("bad_response", f"malformed entry: {str(entry)[:200]}"))
        rows.append(row)
    return rows


class Predictor:
    """Sends requests to ``target`` and records one row per frame in ``journal``.

    Whole-request failures are retried with backoff (throttling, 404 while a model is
    being registered, 5xx, transport errors); other statuses are recorded at once. No
    whole-request failure is final: a rerun sends those frames again. After
    ``give_up_after`` requests in a row have failed every attempt, the rest are recorded
    as ``request_failed`` without sending (a wrong URL must not take minutes to report).
    """

    def __init__(self, target, journal, options: PredictOptions, give_up_after: int | None = None,
                 on_answer=None):
        """``journal`` is anything with ``record(rows)``: a :class:`Journal`, or memory;
        ``on_answer(body)`` sees every 200 answer (the reader learns the model's input)."""
        self.on_answer = on_answer
        self.target = target
        self.journal = journal
        self.options = options
        self.requests_sent = 0
        self.give_up_after = give_up_after or 2 * options.concurrency + 2
        self._failed_in_a_row = 0
        self._last_failure = ""
        self._count_lock = threading.Lock()

    def _settle(self, ok: bool, failure: str = "") -> None:
        with self._count_lock:
            self._failed_in_a_row = 0 if ok else self._failed_in_a_row + 1
            if failure:
                self._last_failure = failure

    def send(self, request: Request) -> None:
        """Send one request (retrying, splitting on 413) and journal its frames' rows."""
        with self._count_lock:
            gave_up = self._failed_in_a_row >= self.give_up_after
            last_failure = self._last_failure
        if gave_up:
            self.journal.record(_error_rows(
                request.frames, "request_failed",
                f"not sent: the last {self.give_up_after} requests to "
                f"{self.target.describe()} failed ({last_failure}); fix that and rerun the "
                "same command to send these frames"))
            return
        body, content_type = request.encode()
        policy = self.options.retry
        last, attempts = "no attempt made", 0
        for attempt in range(policy.max_attempts):
            if attempt:
                time.sleep(policy.delay(attempt))
            attempts += 1
            with self._count_lock:
                self.requests_sent += 1
            try:
                status, answer = self.target.send(body, content_type)
            except TransportError as exc:
                last = str(exc)
                if not exc.retryable:
                    break
                continue
            if status == 200:
                self._settle(True)
                if self.on_answer is not None:
                    self.on_answer(answer)
                self.journal.record(rows_from_response(request.frames, answer))
                return
            if status == 413 and len(request.frames) > 1:
                self._settle(True)  # the endpoint answered; the halves go through it
                for half in request.halves():
                    self.send(half)
                return
            error = contract_error(status, answer)["error"]
            last = f"HTTP {status}: {error['message']}"
            if status not in RETRYABLE_STATUS:
                self._settle(True)  # an answer, not an outage: no reason to stop sending
                self.journal.record(_error_rows(request.frames, error["code"],
                                                f"{last} (from {self.target.describe()})"))
                return
        self._settle(False, last)
        plural = "s" if attempts != 1 else ""
        self.journal.record(_error_rows(
            request.frames, "request_failed",
            f"{self.target.describe()} failed after {attempts} attempt{plural}: {last}; "
            "rerun the same command to retry these frames"))


def _error_codes(rows: list[dict]) -> dict[str, tuple[int, str]]:
    counts: dict[str, list] = {}
    for row in rows:
        if "error" in row:
            error = row["error"]
            code = str(error.get("code")) if isinstance(error, dict) else "error"
            entry = counts.setdefault(code, [0, str(error.get("message", ""))
                                             if isinstance(error, dict) else str(error)])
            entry[0] += 1
    return {code: (n, sample) for code, (n, sample)
            in sorted(counts.items(), key=lambda item: -item[1][0])}


def predict(frames: Iterable[FrameRef], target, out_dir: Path | str, options: PredictOptions,
            reader: FrameReader | None = None) -> PredictSummary:
    """Predict every frame without a final result in ``out_dir``'s journal (with
    ``options.retry_errors``, every frame without a prediction)."""
    from tqdm import tqdm

    started = time.monotonic()
    journal = Journal(out_dir)
    reader = reader or FrameReader(resize_to=options.resize_to)
    predictor = Predictor(target, journal, options, on_answer=reader.learn)
    read = None if options.by_reference else reader.read
    keys: list[tuple] = []
    skipped = 0

    def done(key) -> bool:
        return journal.done(key, retry_errors=options.retry_errors)

    def pending():
        # Lazily: ``frames`` may be a stream that is still being extracted.
        nonlocal skipped
        for frame in frames:
            keys.append(frame.key)
            journal.check_file(frame.key, frame.file, frame.id)
            if done(frame.key):
                skipped += 1
            elif not frame.sendable:  # no face in this frame: its row says so, nothing sent
                journal.record([frame.row()])
                bar.update(1)
            elif options.by_reference and not frame.s3_uri:
                raise InputError(f"--by-reference needs frames in S3, {frame.id} is local: "
                                 "predict from an s3:// prefix")
            else:
                yield frame

    total = (sum(not done(f.key) for f in frames)
             if isinstance(frames, (list, tuple)) else None)
    # Off when stderr is not a terminal: a log file gets no carriage-return lines.
    bar = tqdm(total=total, unit="frame", desc="predict",
               disable=not (options.progress and sys.stderr.isatty()))
    in_flight, first = set(), True
    with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        try:
            for item in pack(pending(), read, options.batch_size, target.max_payload,
                             first_size=reader.first_request_size):
                if isinstance(item, TooLarge):
                    journal.record(too_large_rows(item, target.max_payload,
                                                  "use --model-input WxH or --by-reference"))
                    bar.update(1)
                    continue
                # Bounded look-ahead: read frames only as fast as requests complete.
                while len(in_flight) >= 2 * options.concurrency:
                    _drain(wait(in_flight, return_when=FIRST_COMPLETED).done, in_flight, bar)
                future = pool.submit(predictor.send, item)
                future.frames = len(item.frames)
                in_flight.add(future)
                if first and reader.learning:
                    # Its answer names the model's input: the frames after it go shrunk.
                    _drain(wait(in_flight).done, in_flight, bar)
                first = False
            while in_flight:
                _drain(wait(in_flight, return_when=FIRST_COMPLETED).done, in_flight, bar)
        except BaseException:
            for future in in_flight:
                future.cancel()
            bar.close()
            raise
    bar.close()
    output = journal.write_ordered(keys) if all(k in journal.rows for k in keys) else None
    rows = [journal.rows[k] for k in keys if k in journal.rows]
    errors = sum("error" in r for r in rows)
    no_face = sum("face" in r and r["face"] is None for r in rows)
    unfinished = len(keys) - sum(journal.done(k) for k in keys)
    failure = next((r["error"]["message"] for r in rows if not is_final(r)), None)
    return PredictSummary(frames=len(keys), predicted=len(rows) - errors - no_face,
                          errors=errors, skipped=skipped, unfinished=unfinished,
                          first_failure=failure, requests=predictor.requests_sent,
                          seconds=time.monotonic() - started, output=output,
                          error_codes=_error_codes(rows), no_face=no_face,
                          faces_mode=any(k[1] != WHOLE_FRAME for k in keys))


def _drain(done, in_flight: set, bar) -> None:
    for future in done:
        in_flight.discard(future)
        future.result()  # a bug in send() must surface, not vanish
        bar.update(future.frames)


def load_frames(source: str, fps: float, s3_client_factory) -> tuple[list[FrameRef], object]:
    if source.startswith("s3://"):
        client = s3_client_factory()
        return s3_frames(source, client, fps), client
    return local_frames(source, fps), None


def run_predict(source: str, out: Path | str, endpoint: str,
                options: PredictOptions = PredictOptions(),
                frames: Iterable[FrameRef] | None = None, target=None) -> PredictSummary:
    """Predict every frame of ``source`` (a frames folder or ``s3://`` prefix) into ``out``.

    ``frames`` replaces the listing of ``source`` (e.g. a stream still being extracted);
    ``target`` replaces the one ``endpoint`` names (tests, a shared connection pool).
    """
    from ..s3 import make_client

    if frames is None:
        frames, s3 = load_frames(source, options.fps,
                                 lambda: make_client("s3", options.s3_endpoint_url))
    else:
        s3 = None
    target = target or make_target(endpoint, options)
    return predict(frames, target, out, options, FrameReader(s3, options.resize_to))
