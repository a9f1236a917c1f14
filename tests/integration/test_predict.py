"""The predict client against the real MMS (and real S3 on loopback): order, splitting,
concurrency, retries, resume, faults."""
from __future__ import annotations

import threading
import time

import psutil
import pytest

from frame_infer.client.journal import JOURNAL_NAME, PREDICTIONS_NAME, Journal
from frame_infer.client.payload import Request, TooLarge, pack, part_size
from frame_infer.client.predict import PredictOptions, predict
from frame_infer.serving.mms import LocalMMS, ModelSettings
from frame_infer.client.sources import FrameReader, local_frames
from frame_infer.client.targets import HttpTarget, RetryPolicy

from ..helpers.frames import write_frames
from ..helpers.mms import model_url, running_mms
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration
FAST_RETRY = RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=2.0)


class CountingTarget:
    """The real HTTP target, counting requests and frames sent (wraps, does not fake)."""

    def __init__(self, inner, fail_after: int | None = None):
        self.inner = inner
        self.max_payload = inner.max_payload
        self.requests = 0
        self.frames_sent = 0
        self.statuses = []
        self.fail_after = fail_after
        self._lock = threading.Lock()

    def send(self, body, content_type):
        with self._lock:
            if self.fail_after is not None and self.requests >= self.fail_after:
                raise KeyboardInterrupt  # what Ctrl-C looks like in the middle of a run
            self.requests += 1
            self.frames_sent += body.count(b"Content-Disposition")
        status, answer = self.inner.send(body, content_type)
        with self._lock:
            self.statuses.append(status)
        return status, answer

    def describe(self):
        return self.inner.describe()


def test_concurrent_run_keeps_frame_order_and_reports_corrupt_frames(mms, tmp_path):
    write_frames(tmp_path / "frames", 45, corrupt=(0, 22, 44))
    frames = local_frames(tmp_path / "frames")
    target = CountingTarget(HttpTarget(model_url(mms)))
    summary = predict(frames, target, tmp_path / "out",
                      PredictOptions(batch_size=4, concurrency=6, progress=False))
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(45))
    assert [r["id"] for r in rows] == [f"frame_{i:06d}" for i in range(45)]
    assert {r["index"] for r in rows if "error" in r} == {0, 22, 44}
    assert all(r["error"]["code"] == "invalid_image" for r in rows if "error" in r)
    assert summary.predicted == 42 and summary.errors == 3 and summary.unfinished == 0
    assert target.requests == 12  # ceil(45 / 4): one request per batch, none repeated
    # The same frames one at a time, sequentially, give the same answers.
    sequential = predict(frames, HttpTarget(model_url(mms)), tmp_path / "seq",
                         PredictOptions(batch_size=1, concurrency=1, progress=False))
    assert sequential.output is not None
    for a, b in zip(rows, read_rows(tmp_path / "seq")):
        assert a.get("label") == b.get("label")
        if "score" in a:
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def test_pack_respects_batch_size_and_payload_limit(tmp_path):
    write_frames(tmp_path / "frames", 20)
    frames = local_frames(tmp_path / "frames")
    reader = FrameReader()
    one = part_size(frames[0].id, len(reader.read(frames[0])))
    limit = 3 * one + 100  # room for three frames, not four
    items = list(pack(frames, reader.read, batch_size=16, max_payload=limit))
    assert all(isinstance(i, Request) for i in items)
    assert [f.index for r in items for f in r.items] == list(range(20))
    for request in items:
        body, _ = request.encode()
        assert len(body) <= limit
        assert len(request.items) <= 3
    assert [len(r.items) for r in pack(frames, reader.read, 8, 10**8)] == [8, 8, 4]
    # A client waiting for the first answer sends a small first request.
    assert [len(r.items) for r in pack(frames, reader.read, 8, 10**8, first_size=1)] == \
        [1, 8, 8, 3]
    too_big = list(pack(frames[:1], reader.read, 8, one // 2))
    assert isinstance(too_big[0], TooLarge)


@pytest.fixture(scope="module")
def small_limit_mms(model_store, tmp_path_factory):
    """MMS with a 200 kB request limit: bigger requests get 413 from the real server."""
    with running_mms(model_store, ModelSettings("ferplus.mar", "ferplus", batch_size=4,
                                                max_batch_delay_ms=10, workers=1),
                     max_request_bytes=200_000,
                     run_dir=tmp_path_factory.mktemp("mms-small")) as server:
        yield server


def test_server_413_splits_requests_and_nothing_is_lost(small_limit_mms, tmp_path):
    """The client believes 6.5 MB fits; the server says 413; halves go through."""
    write_frames(tmp_path / "frames", 24, size=(640, 480))
    frames = local_frames(tmp_path / "frames")
    target = CountingTarget(HttpTarget(model_url(small_limit_mms)))
    summary = predict(frames, target, tmp_path / "out",
                      PredictOptions(batch_size=24, concurrency=2, progress=False,
                                     resize_to=None))  # shrunk frames would all fit
    assert 413 in target.statuses
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(24))
    assert all("label" in r for r in rows), [r for r in rows if "error" in r][:2]
    assert summary.unfinished == 0


def test_client_side_limit_prevents_413(small_limit_mms, tmp_path):
    write_frames(tmp_path / "frames", 24, size=(640, 480))
    frames = local_frames(tmp_path / "frames")
    target = CountingTarget(HttpTarget(model_url(small_limit_mms), max_payload=200_000))
    predict(frames, target, tmp_path / "out",
            PredictOptions(batch_size=24, concurrency=2, progress=False))
    assert 413 not in target.statuses and target.requests > 1
    assert all("label" in r for r in read_rows(tmp_path / "out"))


def test_resize_to_model_shrinks_payload_and_keeps_predictions(mms, tmp_path):
    write_frames(tmp_path / "frames", 8, size=(640, 480))
    frames = local_frames(tmp_path / "frames")
    full = CountingTarget(HttpTarget(model_url(mms)))
    predict(frames, full, tmp_path / "full", PredictOptions(batch_size=8, progress=False))
    reader = FrameReader(resize_to=(64, 64, "L"))
    assert len(reader.read(frames[0])) * 5 < frames[0].path.stat().st_size
    small = CountingTarget(HttpTarget(model_url(mms)))
    predict(frames, small, tmp_path / "small", PredictOptions(batch_size=8, progress=False),
            reader=reader)
    labels_full = [r["label"] for r in read_rows(tmp_path / "full")]
    labels_small = [r["label"] for r in read_rows(tmp_path / "small")]
    assert sum(a == b for a, b in zip(labels_full, labels_small)) >= 6  # resampling differs


def test_interrupted_run_resumes_with_only_missing_frames(mms, tmp_path):
    write_frames(tmp_path / "frames", 30)
    frames = local_frames(tmp_path / "frames")
    out = tmp_path / "out"
    first = CountingTarget(HttpTarget(model_url(mms)), fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        predict(frames, first, out, PredictOptions(batch_size=5, concurrency=1,
                                                   progress=False))
    assert not (out / PREDICTIONS_NAME).exists()
    done_before = {i for i in range(30) if Journal(out).done(i)}
    assert len(done_before) == 1 + 5 + 5  # the first request holds one frame
    second = CountingTarget(HttpTarget(model_url(mms)))
    summary = predict(frames, second, out, PredictOptions(batch_size=5, progress=False))
    assert second.frames_sent == 19 and summary.skipped == 11
    rows = read_rows(out)
    assert [r["index"] for r in rows] == list(range(30)) and all("label" in r for r in rows)


def test_journal_ignores_a_line_cut_short_by_a_crash(tmp_path):
    journal = Journal(tmp_path)
    journal.record([{"index": 0, "id": "frame_000000", "label": "fear"}])
    with open(tmp_path / JOURNAL_NAME, "a") as f:
        f.write('{"index": 1, "id": "fr')
    assert Journal(tmp_path).done(0) and not Journal(tmp_path).done(1)


def _serving_worker_pids(server: LocalMMS) -> list[int]:
    """The processes that run the handler: MMS's worker listener forks one per connection.

    (Killing the listener itself leaves MMS 1.1.11 retrying a dead socket forever, with
    the jobs in flight never answered: a server fault no client can fix.)
    """
    java = psutil.Process(server.process.pid)
    listeners = [p for p in java.children()
                 if "model_service_worker" in " ".join(p.cmdline())]
    return [c.pid for listener in listeners for c in listener.children()]


def test_worker_killed_mid_run_ends_with_one_result_per_frame(model_store, tmp_path):
    """SIGKILL the MMS worker while requests are in flight: MMS answers them 500 "Worker
    died." and restarts it; retries (and, if needed, one rerun) end with exactly one
    prediction per frame."""
    with running_mms(model_store, ModelSettings("ferplus.mar", "ferplus", batch_size=2,
                                                max_batch_delay_ms=5, workers=1),
                     run_dir=tmp_path / "mms") as server:
        write_frames(tmp_path / "frames", 90)
        frames = local_frames(tmp_path / "frames")
        out = tmp_path / "out"
        options = PredictOptions(batch_size=3, concurrency=2, retry=FAST_RETRY, progress=False)
        target = CountingTarget(HttpTarget(model_url(server)))
        errors = []

        def run():
            try:
                predict(frames, target, out, options)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        runner = threading.Thread(target=run)
        runner.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(Journal(out).rows) < 9:
            time.sleep(0.05)  # polling the journal for progress
        killed = _serving_worker_pids(server)
        assert killed
        for pid in killed:
            psutil.Process(pid).kill()
        runner.join(timeout=240)
        assert not runner.is_alive() and not errors, errors
        failed_statuses = [s for s in target.statuses if s != 200]
        if not (out / PREDICTIONS_NAME).exists() or any(
                "error" in r for r in read_rows(out)):
            server.wait_ready("ferplus", 1, timeout=60)
            predict(frames, HttpTarget(model_url(server)), out, options)
        rows = read_rows(out)
        assert [r["index"] for r in rows] == list(range(90))
        assert all("label" in r for r in rows)
        assert failed_statuses, "killing the worker should have failed some requests"
        assert set(_serving_worker_pids(server)).isdisjoint(killed)


def test_server_down_mid_run_then_rerun_finishes_only_the_rest(model_store, tmp_path):
    """Stop the whole MMS while requests are in flight: the frames it did not answer end as
    request_failed (recorded, not dropped); a rerun against a restarted server sends only
    those and ends with exactly one prediction per frame."""
    ferplus = ModelSettings("ferplus.mar", "ferplus", batch_size=1, workers=1)
    write_frames(tmp_path / "frames", 60)
    frames = local_frames(tmp_path / "frames")
    out = tmp_path / "out"
    options = PredictOptions(batch_size=3, concurrency=2, progress=False,
                             retry=RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.1))
    with running_mms(model_store, ferplus, cleanup=True) as server:
        target = CountingTarget(HttpTarget(model_url(server)))
        result = {}
        runner = threading.Thread(
            target=lambda: result.update(summary=predict(frames, target, out, options)))
        runner.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(Journal(out).rows) < 9:
            time.sleep(0.05)  # polling the journal for progress
        server.stop()  # the server goes down mid-run (stopping again on exit is a no-op)
        runner.join(timeout=120)
        assert not runner.is_alive()
    first = result["summary"]
    assert first.unfinished > 0 and first.output is not None
    rows = read_rows(out)
    assert len(rows) == 60  # every frame has a row: a prediction or request_failed
    failed = {r["index"] for r in rows if r.get("error", {}).get("code") == "request_failed"}
    assert len(failed) == first.unfinished
    with running_mms(model_store, ferplus, cleanup=True) as server:
        again = CountingTarget(HttpTarget(model_url(server)))
        second = predict(frames, again, out, options)
    assert again.frames_sent == len(failed) and second.unfinished == 0
    rows = read_rows(out)
    assert [r["index"] for r in rows] == list(range(60)) and all("label" in r for r in rows)
