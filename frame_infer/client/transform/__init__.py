"""``transform``: frames in S3 through a SageMaker Batch Transform job, no endpoint kept up.

1. The frames under ``source`` (uploaded by ``upload`` or ``run --bucket``) that have no
   final row in ``results``' journal are packed into shards (``shards``), each one
   multipart request body of many frames under 6 MB, uploaded under ``--bucket``.
2. A job runs them (``jobs``): one record per shard, spread over the instances.
3. While it runs, each ``.out`` becomes rows in the journal (``collect``); at the end
   ``predictions.jsonl``, the CSV files and the report are written as ``run`` writes
   them, one row per frame, and the report is copied to ``--bucket``/results.

Resumable: the journal says which frames are done; ``results/transform.json`` lists the
jobs this folder started, and each is waited for and read before anything new is sent.
A batch's job name is a hash of its frames, model and settings, so even a job created
just before an interruption is found again rather than submitted twice.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from model_handler.wire import SAGEMAKER_MAX_REQUEST_BYTES

from ...errors import InputError
from ...s3 import make_client, parse_s3_uri
from ..report import ReportPaths
from ..engine import too_large_row
from ..journal import Journal
from ..payload import TooLarge
from ..sources import FrameReader, s3_frames
from ..summary import PredictSummary, summarize
from ..upload import existing_etags
from .collect import wait_and_collect
from .jobs import JobSpec, TransformModel, create_job, current_job, ensure_model, fingerprint
from .shards import input_prefix, read_index, upload_shards

STATE_NAME = "transform.json"
__all__ = ["TransformModel", "TransformOptions", "TransformResult", "run_transform"]


@dataclass(frozen=True)
class TransformOptions:
    """How ``transform`` packs and runs (the command line builds it from its flags)."""

    model: TransformModel
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_concurrent: int | None = None
    """Requests in flight per instance; None: the container's /execution-parameters."""
    frames_per_shard: int = 256
    """At most this many frames per shard (and never over ``max_payload`` bytes)."""
    max_payload: int = SAGEMAKER_MAX_REQUEST_BYTES
    resize_to: tuple[int, int, str] | None = None
    fps: float = 30.0
    poll_seconds: float = 30.0
    progress: bool = True
    retry_errors: bool = False
    s3_endpoint_url: str | None = None
    sagemaker_endpoint_url: str | None = None

    def __post_init__(self) -> None:
        problems = [f"{name} must be at least {low}, got {value!r}" for name, value, low in (
            ("instance_count", self.instance_count, 1),
            ("frames_per_shard", self.frames_per_shard, 1),
            ("max_payload", self.max_payload, 1024)) if value < low]
        if self.max_concurrent is not None and not 1 <= self.max_concurrent <= 100:
            problems.append(f"max_concurrent must be 1-100, got {self.max_concurrent}")
        if self.max_payload > SAGEMAKER_MAX_REQUEST_BYTES:
            problems.append(f"max_payload {self.max_payload} is over the job's 6 MB "
                            f"({SAGEMAKER_MAX_REQUEST_BYTES} bytes)")
        if problems:
            raise InputError("invalid transform options: " + "; ".join(problems))


@dataclass
class TransformResult:
    summary: PredictSummary
    jobs: list[str] = field(default_factory=list)
    """The jobs waited for in this run (created now or found from an earlier one)."""
    report_dir: Path | None = None
    timeline_png: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    report: "ReportPaths | None" = None
    """The report's files and value, once every frame has a result."""


class _State:
    """``results/transform.json``: the source, ``--bucket`` and the jobs of this folder."""

    def __init__(self, results: Path, source: str, out: str):
        self.path = results / STATE_NAME
        doc = json.loads(self.path.read_text()) if self.path.exists() else \
            {"source": source, "out": out, "jobs": {}}
        if (doc["source"], doc["out"]) != (source, out):
            raise InputError(f"{results} holds the results of {doc['source']} -> {doc['out']}; "
                             "give this transform its own --out folder")
        self.doc = doc

    def open_jobs(self) -> list[tuple[str, str]]:
        return [(name, job["batch"]) for name, job in self.doc["jobs"].items()
                if not job["collected"]]

    def set(self, name: str, batch: str, collected: bool) -> None:
        self.doc["jobs"][name] = {"batch": batch, "collected": collected}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1))
        os.replace(tmp, self.path)


def run_transform(source: str, out: str, results: Path | str, options: TransformOptions,
                  s3=None, sagemaker=None) -> TransformResult:
    """Predict every frame of ``source`` (``s3://`` frames) with a transform job writing
    under ``out``; rows and report in the local folder ``results``. A rerun resumes."""
    from ..report import write_report

    started, timings = time.monotonic(), {}
    location, results = parse_s3_uri(out), Path(results)
    s3 = s3 or make_client("s3", options.s3_endpoint_url)
    sagemaker = sagemaker or make_client("sagemaker", options.sagemaker_endpoint_url)
    work = s3_frames(source, s3, options.fps)
    journal = Journal(results, faces=work.faces)
    state = _State(results, source, out)
    by_id = {item.id: item for item in work}
    skipped = sum(journal.done(item.key, options.retry_errors) for item in work)
    # A frame cut with --faces that has no face: its row says so, nothing is sent.
    journal.record([item.row() for item in work
                    if not item.sendable and not journal.done(item.key)])
    run = _Run(s3, sagemaker, location, journal, state, by_id, options)
    for name, batch in state.open_jobs():  # an earlier run's jobs first
        run.finish(name, batch)
    run.send(source)
    timings["transform"] = time.monotonic() - started
    summary = summarize(journal, [item.key for item in work], skipped=skipped,
                        requests=run.shards_sent, seconds=timings["transform"],
                        faces=work.faces)
    output = summary.output
    result = TransformResult(summary=summary, jobs=run.jobs, report_dir=results,
                             seconds=timings)
    if output:
        started = time.monotonic()
        result.report = write_report(results, location.child("results"), s3_client=s3)
        result.timeline_png = result.report.timeline_png
        timings["report"] = time.monotonic() - started
    return result


class _Run:
    """One invocation's work: finish known jobs, then send what is left (once)."""

    def __init__(self, s3, sagemaker, out, journal, state, by_id, options: TransformOptions):
        self.s3, self.sagemaker, self.out, self.journal = s3, sagemaker, out, journal
        self.state, self.by_id, self.options = state, by_id, options
        self.jobs: list[str] = []
        self.shards_sent = 0
        self._indexes: dict = {}

    def pending(self) -> list:
        return [f for f in self.by_id.values() if f.sendable
                and not self.journal.done(f.key, self.options.retry_errors)]

    def batch_of(self, frames, source: str) -> tuple[str, object]:
        """The batch name of ``frames`` and its shard index (uploaded now if need be)."""
        src = parse_s3_uri(source)
        model_name = ensure_model(self.sagemaker, self.options.model)
        settings = {"frames_per_shard": self.options.frames_per_shard,
                    "max_payload": self.options.max_payload,
                    "resize_to": self.options.resize_to}
        batch = fingerprint(frames, existing_etags(self.s3, src), model_name, settings)
        reader = FrameReader(self.s3, self.options.resize_to)
        index = upload_shards(self.s3, self.out, batch, frames, reader.read,
                              self.options.frames_per_shard, self.options.max_payload)
        self._indexes[batch] = (index, model_name)
        return batch, index

    def index_of(self, batch: str):
        if batch not in self._indexes:
            index = read_index(self.s3, self.out, batch)
            if index is None:
                raise InputError(f"the shard index of batch {batch} is missing under "
                                 f"{self.out.uri()}: delete {STATE_NAME} in the results "
                                 "folder to start over")
            self._indexes[batch] = (index, None)
        return self._indexes[batch][0]

    def finish(self, name: str, batch: str) -> dict:
        """Wait for job ``name`` and read its outputs into the journal."""
        self.jobs.append(name)
        job = wait_and_collect(self.sagemaker, self.s3, self.out, name, self.index_of(batch),
                               self.by_id, self.journal, self.options.poll_seconds,
                               self.options.progress)
        self.state.set(name, batch, collected=True)
        return job

    def send(self, source: str) -> None:
        """Send the frames without a final row in one job: the batch's running or
        completed job if it exists (an interrupted run), else a new one."""
        frames = self.pending()
        if not frames:
            return
        batch, index = self.batch_of(frames, source)
        for frame_id, size in index.too_large.items():
            self.journal.record([too_large_row(
                TooLarge(self.by_id[frame_id], size), self.options.max_payload,
                "use --model-input WxH, e.g. 64x64:L (the job's payload limit is 6 MB)")])
        if not index.shards:
            return
        name, found, _ = current_job(self.sagemaker, batch)
        if found is None:
            spec = JobSpec(model_name=self._indexes[batch][1],
                           input=input_prefix(self.out, batch),
                           content_type=index.content_type,
                           instance_type=self.options.instance_type,
                           instance_count=self.options.instance_count,
                           max_concurrent=self.options.max_concurrent)
            create_job(self.sagemaker, name, spec, self.out)
            self.shards_sent += len(index.shards)
        self.state.set(name, batch, collected=False)
        self.finish(name, batch)
