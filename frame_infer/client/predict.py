"""``predict``: the items of a frames folder or ``s3://`` prefix through the send engine,
resumably, into ``OUT/predictions.jsonl``.

Every item ends with exactly one row: its prediction or its error. Only the service's
answer for an image is final; a rerun sends every other item again (``journal``). Rows
are journaled as they arrive (resumable) and written in frame order at the end. With
faces (frames extracted with faces) the unit is a face: each crop is sent as its own
image and gets its own row; a frame without a face is not sent and gets one row with
``"face": null`` and no label. How items are sent: ``engine``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import InputError
from ..s3 import make_client, parse_s3_uri
from .engine import Engine
from .items import Item, Work
from .journal import Journal
from .options import PredictOptions
from .outlock import check_out_folder, out_lock
from .sources import FrameReader, local_frames, s3_frames
from .summary import PredictSummary, summarize
from .targets import make_target


def predict(work: Work, target, out_dir: Path | str, options: PredictOptions,
            reader: FrameReader | None = None) -> PredictSummary:
    """Predict every item of ``work`` without a final row in ``out_dir``'s journal (with
    ``options.retry_errors``, every item without a prediction)."""
    from tqdm import tqdm

    started = time.monotonic()
    journal = Journal(out_dir, faces=work.faces)
    reader = reader or FrameReader(resize_to=options.resize_to)

    def wanted(item: Item) -> bool:
        journal.check_file(item.key, item.file, item.id)
        if journal.done(item.key, retry_errors=options.retry_errors):
            return False
        if options.by_reference and item.sendable and not item.s3_uri:
            raise InputError(f"--by-reference needs frames in S3, {item.id} is local: "
                             "predict from an s3:// prefix")
        return True

    total = (sum(not journal.done(i.key, options.retry_errors) for i in work)
             if work.sized else None)
    # Off when stderr is not a terminal: a log file gets no carriage-return lines.
    with tqdm(total=total, unit="frame", desc="predict",
              disable=not (options.progress and sys.stderr.isatty())) as bar:
        engine = Engine(target, journal, options, reader, progress=bar.update)
        sent = engine.run(work, None if options.by_reference else reader.read, wanted)
    summary = summarize(journal, sent.keys, skipped=sent.skipped, requests=sent.requests,
                        seconds=time.monotonic() - started, faces=work.faces,
                        unreachable=sent.unreachable)
    summary.notes.extend(getattr(work, "notes", ()))  # what checking the manifest found
    if reader.expects_faces and not work.faces:
        summary.notes.append(
            "the model says it expects face crops (its answers' model.input.faces), but "
            "whole frames were sent: its labels are likely noise; use --faces (`run "
            "VIDEO --faces`, or `extract --faces` before predict)")
    return summary


def load_frames(source: str, fps: float, s3_client) -> Work:
    """The items of a frames folder, or of an ``s3://`` prefix read with ``s3_client``."""
    if source.startswith("s3://"):
        return s3_frames(parse_s3_uri(source), s3_client, fps)
    return local_frames(source, fps)


def run_predict(source: str, out: Path | str, endpoint: str,
                options: PredictOptions = PredictOptions(), work: Work | None = None,
                target=None, s3_client=None) -> PredictSummary:
    """Predict every item of ``source`` (a frames folder or ``s3://`` prefix) into ``out``.

    ``work`` replaces the listing of ``source`` (e.g. a stream still being extracted);
    ``target`` replaces the one ``endpoint`` names (tests, a shared connection pool);
    ``s3_client`` is the client frames in S3 are read with (default: one for
    ``options.s3_endpoint_url``).
    """
    check_out_folder(Path(out))
    if s3_client is None and source.startswith("s3://"):
        s3_client = make_client("s3", options.s3_endpoint_url)
    if work is None:
        work = load_frames(source, options.fps, s3_client)
    target = target or make_target(endpoint, options)
    with out_lock(out, "predict"):  # re-entrant: run holds it already
        return predict(work, target, out, options, FrameReader(s3_client, options.resize_to))
