"""``predict``: frames -> multi-image requests -> endpoint, many in flight, nothing lost.

Frames are packed into requests under the endpoint's payload limit, sent by
``concurrency`` threads, retried with backoff on throttling, 5xx and connection
errors, split in half on 413, and every frame ends with exactly one row: its
prediction or its error. Results are journaled as they arrive (resumable) and
written in frame order at the end.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from model_handler.wire import error_body

from ..errors import InputError
from .journal import Journal, is_final
from .options import PredictOptions
from .payload import Request, TooLarge, pack
from .sources import FrameReader, FrameRef, local_frames, s3_frames
from .targets import RETRYABLE_STATUS, TransportError, make_target


@dataclass
class PredictSummary:
    frames: int
    predicted: int
    errors: int
    skipped: int
    """Frames that already had a final result from an earlier run."""
    unfinished: int
    """Frames whose request failed after every retry: a rerun retries them."""
    first_failure: str | None
    """The message of the first such frame: why they could not be sent."""
    requests: int
    seconds: float
    output: Path | None


def _error_rows(frames: list[FrameRef], code: str, message: str) -> list[dict]:
    return [{"index": f.index, "id": f.id, "timestamp": f.timestamp,
             **error_body(code, message)} for f in frames]


def rows_from_response(frames: list[FrameRef], body: dict) -> list[dict]:
    """Match the response's predictions to the request's frames by id."""
    by_id = {p.get("id"): p for p in body.get("predictions", []) if isinstance(p, dict)}
    rows = []
    for frame in frames:
        entry = by_id.get(frame.id)
        row = {"index": frame.index, "id": frame.id, "timestamp": frame.timestamp}
        if entry is None:
            row["error"] = {"code": "request_failed",
                            "message": "the response had no entry for this frame"}
        elif "error" in entry:
            row["error"] = entry["error"]
        else:
            row.update(label=entry["label"], score=entry["score"],
                       probabilities=entry["probabilities"])
        rows.append(row)
    return rows


class Predictor:
    """Sends requests to ``target`` and records one row per frame in ``journal``."""

    def __init__(self, target, journal, options: PredictOptions):
        """``journal`` is anything with ``record(rows)``: a :class:`Journal`, or memory."""
        self.target = target
        self.journal = journal
        self.options = options
        self.requests_sent = 0
        self._count_lock = threading.Lock()

    def send(self, request: Request) -> None:
        """Send one request (retrying, splitting on 413) and journal its frames' rows."""
        body, content_type = request.encode()
        policy = self.options.retry
        last = "no attempt made"
        for attempt in range(policy.max_attempts):
            if attempt:
                time.sleep(policy.delay(attempt))
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
                self.journal.record(rows_from_response(request.frames, answer))
                return
            if status == 413 and len(request.frames) > 1:
                for half in request.halves():
                    self.send(half)
                return
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            last = f"HTTP {status}: {error.get('message', answer)}"
            if status not in RETRYABLE_STATUS:
                code = error.get("code") or f"http_{status}"
                self.journal.record(_error_rows(request.frames, code, last))
                return
        self.journal.record(_error_rows(
            request.frames, "request_failed",
            f"{self.target.describe()} failed after {policy.max_attempts} attempts: {last}; "
            "rerun the same command to retry these frames"))


def predict(frames: Iterable[FrameRef], target, out_dir: Path | str, options: PredictOptions,
            reader: FrameReader | None = None) -> PredictSummary:
    """Predict every frame without a final result in ``out_dir``'s journal."""
    from tqdm import tqdm

    started = time.monotonic()
    journal = Journal(out_dir)
    predictor = Predictor(target, journal, options)
    read = None if options.by_reference else (reader or FrameReader()).read
    indices: list[int] = []
    skipped = 0

    def pending():
        # Lazily: ``frames`` may be a stream that is still being extracted.
        nonlocal skipped
        for frame in frames:
            indices.append(frame.index)
            if journal.done(frame.index):
                skipped += 1
            elif options.by_reference and not frame.s3_uri:
                raise InputError(f"--by-reference needs frames in S3, {frame.id} is local: "
                                 "predict from an s3:// prefix")
            else:
                yield frame

    total = (sum(not journal.done(f.index) for f in frames)
             if isinstance(frames, (list, tuple)) else None)
    bar = tqdm(total=total, unit="frame", desc="predict", disable=not options.progress)
    in_flight = set()
    with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        try:
            for item in pack(pending(), read, options.batch_size, target.max_payload):
                if isinstance(item, TooLarge):
                    journal.record(_error_rows(
                        [item.frame], "frame_too_large",
                        f"{item.size} bytes cannot fit under the {target.max_payload}-byte "
                        "request limit: use --resize-to-model or --by-reference"))
                    bar.update(1)
                    continue
                # Bounded look-ahead: read frames only as fast as requests complete.
                while len(in_flight) >= 2 * options.concurrency:
                    _drain(wait(in_flight, return_when=FIRST_COMPLETED).done, in_flight, bar)
                future = pool.submit(predictor.send, item)
                future.frames = len(item.frames)
                in_flight.add(future)
            while in_flight:
                _drain(wait(in_flight, return_when=FIRST_COMPLETED).done, in_flight, bar)
        except BaseException:
            for future in in_flight:
                future.cancel()
            bar.close()
            raise
    bar.close()
    output = journal.write_ordered(indices) if all(i in journal.rows for i in indices) else None
    rows = [journal.rows[i] for i in indices if i in journal.rows]
    errors = sum("error" in r for r in rows)
    unfinished = len(indices) - sum(journal.done(i) for i in indices)
    failure = next((r["error"]["message"] for r in rows if not is_final(r)), None)
    return PredictSummary(frames=len(indices), predicted=len(rows) - errors, errors=errors,
                          skipped=skipped, unfinished=unfinished,
                          first_failure=failure, requests=predictor.requests_sent,
                          seconds=time.monotonic() - started, output=output)


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
