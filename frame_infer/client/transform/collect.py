"""Turning a job's ``.out`` objects into result rows, while it runs and after it ends.

Batch Transform writes the container's 200 answer to one shard as ``<shard>.out`` under
the job's ``S3OutputPath`` and uploads nothing for a shard whose request failed (the job
then ends Failed). Each ``.out`` holds the service's ``{"predictions": [...]}`` for the
shard's frames; they become rows exactly as ``predict`` makes them from a response
(``engine.rows_from_response``). Frames of shards without an output get the
``transform_failed`` error, which is not final: a rerun sends them in a new job.
"""
from __future__ import annotations

import logging
import sys
import time

from model_handler.wire import TRANSFORM_FAILED, error_body

from ...s3 import S3Location
from ..journal import is_final, row_key
from ..engine import rows_from_response
from ..targets.base import parse_answer
from .jobs import TERMINAL, describe, output_location
from .shards import ShardIndex

log = logging.getLogger(__name__)
OUT_SUFFIX = ".out"


def output_keys(s3, location: S3Location) -> dict[str, str]:
    """Shard name -> key of its ``.out`` object under ``location``. Matched by the last
    path segment, so it holds however the service nests outputs under the prefix."""
    found = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix + "/"):
        for obj in page.get("Contents", []):
            name = obj["Key"].rsplit("/", 1)[-1]
            if name.endswith(OUT_SUFFIX):
                found[name[:-len(OUT_SUFFIX)]] = obj["Key"]
    return found


def record_new(journal, rows: list[dict]) -> None:
    """Journal ``rows``, except a non-final row for a frame that already has a final one."""
    keep = [r for r in rows if is_final(r) or not journal.done(row_key(r))]
    if keep:
        journal.record(keep)


def collect(s3, out: S3Location, name: str, index: ShardIndex, frames_by_id: dict,
            journal, seen: set[str]) -> list[str]:
    """Read the job's outputs not in ``seen`` into ``journal``; the shards read now."""
    read = []
    for shard, key in sorted(output_keys(s3, output_location(out, name)).items()):
        if shard in seen or shard not in index.shards:
            continue
        body = s3.get_object(Bucket=out.bucket, Key=key)["Body"].read()
        frames = [frames_by_id[i] for i in index.shards[shard] if i in frames_by_id]
        record_new(journal, rows_from_response(frames, parse_answer(body)))
        seen.add(shard)
        read.append(shard)
    return read


def failed_rows(job: dict, shards: list[str], index: ShardIndex, frames_by_id: dict) -> list:
    """``transform_failed`` rows for the frames of ``shards`` (no output from ``job``)."""
    name, status = job["TransformJobName"], job["TransformJobStatus"]
    reason = job.get("FailureReason") or "no reason given"
    rows = []
    for shard in shards:
        message = (f"transform job {name} ended {status} without an output for {shard} "
                   f"({reason}); its log is in CloudWatch, /aws/sagemaker/TransformJobs. "
                   "Rerun the same command: a new job sends these frames again")
        rows += [{**frames_by_id[i].row(), **error_body(TRANSFORM_FAILED, message)}
                 for i in index.shards[shard] if i in frames_by_id]
    return rows


def wait_and_collect(sagemaker, s3, out: S3Location, name: str, index: ShardIndex,
                     frames_by_id: dict, journal, poll_seconds: float = 30.0,
                     progress: bool = True) -> dict:
    """Poll the job until it ends, turning outputs into rows as they appear; then give
    the frames of shards without an output ``transform_failed``. The final description."""
    from tqdm import tqdm

    seen: set[str] = set()
    bar = tqdm(total=len(index.shards), unit="shard", desc=name,
               disable=not (progress and sys.stderr.isatty()))
    last = None
    try:
        while True:
            job = describe(sagemaker, name)  # before listing: a terminal status means
            status = job["TransformJobStatus"]  # every output is already there
            read = collect(s3, out, name, index, frames_by_id, journal, seen)
            bar.update(len(read))
            if status != last or read:  # a line per change, never one per poll
                log.info("transform job %s: %s, %d of %d shards done", name, status,
                         len(seen), len(index.shards))
                last = status
            if status in TERMINAL:
                break
            time.sleep(poll_seconds)
    finally:
        bar.close()
    missing = [shard for shard in index.shards if shard not in seen]
    record_new(journal, failed_rows(job, missing, index, frames_by_id))
    return job
