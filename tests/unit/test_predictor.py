"""The predictor against a scripted fake target: retries, 413 splits, too-large frames,
error answers, missing entries, resume and concurrency; no server, no sleeping."""
from __future__ import annotations

import json
import threading
from collections import Counter

import pytest

from frame_infer.client.journal import JOURNAL_NAME, PREDICTIONS_NAME, Journal
from frame_infer.client.payload import CLOSING_OVERHEAD, part_size
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames

from ..helpers.frames import jpeg_frame, write_frames
from ..helpers.rows import read_rows
from ..helpers.targets import (FakeTarget, fail, mms_error, ok, options, parse_body,
                               predicted_row, status, together, too_large_over,
                               too_large_with)

SMALL = (32, 24)  # a few hundred bytes per JPEG: the tests are about requests, not pixels


@pytest.fixture()
def frames(tmp_path):
    """Six small real JPEG frames with a manifest (30 fps timestamps)."""
    write_frames(tmp_path / "frames", 6, size=SMALL)
    return local_frames(tmp_path / "frames")


def rows_by_id(out_dir) -> dict[str, dict]:
    return {r["id"]: r for r in read_rows(out_dir)}


def test_retries_503_then_predicts_every_frame_in_order(frames, tmp_path):
    """503, 503, 200: one packed request sent three times, identical each time; every
    frame predicted; predictions.jsonl in frame order with the fake's exact answers."""
    target = FakeTarget([status(503), status(503)])
    summary = predict(frames, target, tmp_path / "out", options())
    assert [c.status for c in target.calls] == [503, 503, 200]
    assert [c.ids for c in target.calls] == [[f.id for f in frames]] * 3
    assert len({c.body_size for c in target.calls}) == 1
    assert read_rows(tmp_path / "out") == [predicted_row(f) for f in frames]
    assert (summary.predicted, summary.errors, summary.unfinished) == (6, 0, 0)
    assert summary.requests == 3  # counts sends (attempts), not packed requests
    assert summary.output == tmp_path / "out" / PREDICTIONS_NAME


def test_retryable_transport_error_is_retried(frames, tmp_path):
    """A connection error (no HTTP answer, retryable) is sent again and then succeeds."""
    target = FakeTarget([fail("connection reset", retryable=True)])
    summary = predict(frames, target, tmp_path / "out", options())
    assert len(target.calls) == 2 and target.calls[0].raised is not None
    assert target.calls[1].ids == target.calls[0].ids
    assert read_rows(tmp_path / "out") == [predicted_row(f) for f in frames]
    assert summary.unfinished == 0


def test_non_retryable_transport_error_is_not_retried_and_a_rerun_finishes(frames,
                                                                           tmp_path):
    """A non-retryable transport error: that request is not sent again; its frames end as
    request_failed (not final), the other request is predicted; a rerun sends exactly the
    failed frames, once."""
    out = tmp_path / "out"
    target = FakeTarget([fail("TLS handshake refused", retryable=False)])
    summary = predict(frames, target, out, options(batch_size=3, attempts=5))
    assert [c.ids for c in target.calls] == [[f.id for f in frames[:3]],
                                             [f.id for f in frames[3:]]]
    rows = read_rows(out)
    assert [r["error"]["code"] for r in rows[:3]] == ["request_failed"] * 3
    assert "TLS handshake refused" in rows[0]["error"]["message"]
    assert rows[3:] == [predicted_row(f) for f in frames[3:]]
    assert summary.unfinished == 3 and summary.first_failure == rows[0]["error"]["message"]

    again = FakeTarget()
    second = predict(frames, again, out, options(batch_size=3, attempts=5))
    assert again.sent_ids == [f.id for f in frames[:3]]
    assert second.skipped == 3 and second.unfinished == 0
    assert read_rows(out) == [predicted_row(f) for f in frames]


def test_persistent_503_ends_as_request_failed_after_max_attempts(frames, tmp_path):
    """503 on every attempt: each request is sent max_attempts times, then its frames get
    request_failed with a message naming the target, the attempts and the rerun."""
    target = FakeTarget(default=status(503))
    summary = predict(frames, target, tmp_path / "out", options(batch_size=4, attempts=3))
    assert Counter(tuple(c.ids) for c in target.calls) == {
        tuple(f.id for f in frames[:4]): 3, tuple(f.id for f in frames[4:]): 3}
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(6))
    assert all(r["error"]["code"] == "request_failed" for r in rows)
    message = rows[0]["error"]["message"]
    assert message.startswith("fake://model failed after 3 attempts: HTTP 503: ")
    assert "No worker is available" in message  # MMS's words (the whole body, as a dict)
    assert "rerun" in message
    assert summary.unfinished == 6 and summary.predicted == 0 and summary.errors == 6
    assert summary.first_failure == message and summary.requests == 6
    assert summary.output is not None  # every frame has a row, even if not a final one


def test_413_splits_in_halves_until_requests_fit(tmp_path):
    """413 for more than 2 parts: 7 frames go 7 -> 3 + 4 -> (1 + 2) + (2 + 2), depth
    first; every frame is in exactly one successful request; nothing is an error."""
    write_frames(tmp_path / "frames", 7, size=SMALL)
    frames = local_frames(tmp_path / "frames")
    target = FakeTarget(default=too_large_over(2))
    summary = predict(frames, target, tmp_path / "out", options(batch_size=8))
    assert [c.parts for c in target.calls] == [7, 3, 1, 2, 4, 2, 2]
    assert [c.status for c in target.calls] == [413, 413, 200, 200, 413, 200, 200]
    assert [i for c in target.answered(200) for i in c.ids] == [f.id for f in frames]
    assert read_rows(tmp_path / "out") == [predicted_row(f) for f in frames]
    assert summary.unfinished == 0 and summary.errors == 0 and summary.requests == 7


@pytest.mark.parametrize("body, code", [
    (None, "request_too_large"),  # MMS: empty body, given the contract's code
    ({"error": {"code": "request_too_large", "message": "over 6553500 bytes"}},
     "request_too_large"),  # the SageMaker container front
])
def test_413_for_a_single_frame_is_an_error_row_a_rerun_sends_again(frames, tmp_path, body,
                                                                    code):
    """A frame the server refuses with 413 even alone: the request splits down to it, it
    gets an error row (the body's code; MMS's empty 413 becomes request_too_large), sent
    alone only once (413 is not retried), and the other frames are predicted. Not the
    service's answer for the image: not final."""
    out = tmp_path / "out"
    target = FakeTarget(default=too_large_with("frame_000002", body=body))
    summary = predict(frames, target, out, options(batch_size=4))
    assert [c.ids for c in target.calls if c.parts == 1 and "frame_000002" in c.ids] == [
        ["frame_000002"]]
    assert "frame_000002" not in {i for c in target.answered(200) for i in c.ids}
    rows = rows_by_id(out)
    assert rows["frame_000002"]["error"]["code"] == code
    assert rows["frame_000002"]["error"]["message"].startswith("HTTP 413")
    assert [rows[f.id] for f in frames if f.index != 2] == [
        predicted_row(f) for f in frames if f.index != 2]
    assert summary.errors == 1 and summary.unfinished == 1 and not summary.complete
    assert not Journal(out).done(2)


def test_frame_over_the_payload_limit_is_never_sent(tmp_path):
    """One frame that cannot fit under max_payload even alone: frame_too_large row naming
    the limit, no call carries it, the other frames share requests and are predicted."""
    folder = tmp_path / "frames"
    write_frames(folder, 5, size=SMALL)
    big = jpeg_frame(2, size=(320, 240))
    (folder / "frame_000002.jpg").write_bytes(big)
    frames = local_frames(folder)
    limit = CLOSING_OVERHEAD + part_size("frame_000002", len(big)) - 1
    small_total = CLOSING_OVERHEAD + sum(part_size(f.id, f.path.stat().st_size)
                                         for f in frames if f.index != 2)
    assert small_total <= limit  # the four others fit in one request
    target = FakeTarget(max_payload=limit)
    summary = predict(frames, target, tmp_path / "out", options(batch_size=8))
    assert "frame_000002" not in target.sent_ids
    assert all(c.body_size <= limit for c in target.calls)
    assert target.sent_ids == [f.id for f in frames if f.index != 2]
    rows = rows_by_id(tmp_path / "out")
    error = rows["frame_000002"]["error"]
    assert error["code"] == "frame_too_large"
    assert f"{limit + 1} bytes" in error["message"] and f"{limit}-byte" in error["message"]
    assert [rows[f.id] for f in frames if f.index != 2] == [
        predicted_row(f) for f in frames if f.index != 2]
    assert summary.errors == 1 and summary.unfinished == 1  # a rerun tries it again


@pytest.mark.parametrize("body, code", [
    (mms_error(404), "http_404"),  # MMS: {"code": 404, "type", "message"}, no "error"
    ({"error": {"code": "not_found", "message": "POST /invocations only"}}, "not_found"),
])
def test_404_is_retried_then_request_failed_and_a_rerun_sends_again(frames, tmp_path, body,
                                                                    code):
    """404 is what MMS answers while a restarted server registers the model: retried with
    backoff; after the last attempt every frame gets request_failed with the server's
    words, and none of it is final: the rerun sends all six frames again."""
    target = FakeTarget(default=status(404, body))
    summary = predict(frames, target, tmp_path / "out", options(batch_size=3, attempts=3))
    assert len(target.calls) == 6  # two requests, three attempts each
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(6))
    assert {r["error"]["code"] for r in rows} == {"request_failed"}
    message = rows[0]["error"]["message"]
    assert "failed after 3 attempts: HTTP 404: " in message
    assert ("Model not found: ferplus" if code == "http_404"
            else "POST /invocations only") in message
    assert summary.errors == 6 and summary.unfinished == 6
    healthy = FakeTarget()
    rerun = predict(frames, healthy, tmp_path / "out", options(batch_size=3))
    assert sorted(healthy.sent_ids) == [f.id for f in frames] and rerun.complete


@pytest.mark.parametrize("status_code", [400, 415, 424])
def test_other_refusals_are_recorded_at_once_and_resent_by_a_rerun(frames, tmp_path,
                                                                   status_code):
    """A 4xx for the whole request is not retried in the run (the same bytes would get
    the same answer) but is not final either: the rows carry the body's code."""
    body = {"error": {"code": "too_many_images", "message": "send at most 2"}}
    target = FakeTarget(default=status(status_code, body))
    summary = predict(frames, target, tmp_path / "out", options(batch_size=3, attempts=5))
    assert len(target.calls) == 2
    assert {r["error"]["code"] for r in read_rows(tmp_path / "out")} == {"too_many_images"}
    assert summary.unfinished == 6 and summary.error_codes == {
        "too_many_images": (6, f"HTTP {status_code}: send at most 2 (from fake://model)")}


def test_a_rerun_resends_old_final_looking_rows_of_whole_request_failures(frames, tmp_path):
    """A journal written by an earlier version holds http_404 rows (once final): the
    rerun sends those frames; a per-image invalid_image stays unless --retry-errors."""
    out = tmp_path / "out"
    out.mkdir()
    lines = [{"index": 0, "id": "frame_000000", "timestamp": 0.0,
              "error": {"code": "http_404", "message": "HTTP 404: Model not found"}},
             {"index": 1, "id": "frame_000001", "timestamp": 0.0,
              "error": {"code": "invalid_image", "message": "cannot identify image"}}]
    (out / JOURNAL_NAME).write_text("".join(json.dumps(r) + "\n" for r in lines))
    first = FakeTarget()
    predict(frames[:2], first, out, options())
    assert first.sent_ids == ["frame_000000"]
    second = FakeTarget()
    summary = predict(frames[:2], second, out, options(retry_errors=True))
    assert second.sent_ids == ["frame_000001"] and summary.complete


def test_a_dead_endpoint_stops_being_sent_to(tmp_path):
    """After give_up_after requests in a row failed every attempt, the remaining frames
    get request_failed without a send, naming the failure: a wrong URL does not take
    minutes to report."""
    folder = tmp_path / "frames"
    write_frames(folder, 40, size=SMALL)
    target = FakeTarget(default=status(503, mms_error(503)))
    summary = predict(local_frames(folder), target, tmp_path / "out",
                      options(batch_size=2, attempts=2))
    assert len(target.calls) < 2 * 20  # far fewer than every request's attempts
    rows = read_rows(tmp_path / "out")
    assert len(rows) == 40 and {r["error"]["code"] for r in rows} == {"request_failed"}
    assert any(r["error"]["message"].startswith("not sent: the last") for r in rows)
    assert summary.unfinished == 40


def test_missing_entry_in_a_200_answer_is_request_failed(frames, tmp_path):
    """A 200 answer without frame_000001's entry: that frame alone gets request_failed (not
    final, counted unfinished), the others are predicted; a rerun sends only it."""
    out = tmp_path / "out"
    target = FakeTarget([ok(drop={"frame_000001"})])
    summary = predict(frames, target, out, options())
    assert len(target.calls) == 1
    rows = rows_by_id(out)
    assert rows["frame_000001"]["error"] == {
        "code": "request_failed", "message": "the response had no entry for this frame"}
    assert [rows[f.id] for f in frames if f.index != 1] == [
        predicted_row(f) for f in frames if f.index != 1]
    assert summary.unfinished == 1 and summary.predicted == 5
    again = FakeTarget()
    predict(frames, again, out, options())
    assert again.sent_ids == ["frame_000001"]
    assert read_rows(out) == [predicted_row(f) for f in frames]


def test_per_image_error_entry_is_copied_and_final(frames, tmp_path):
    """A per-image error entry in a 200 answer becomes exactly that frame's error; it is
    final: a rerun sends nothing at all."""
    out = tmp_path / "out"
    error = {"code": "invalid_image", "message": "cannot identify image file"}
    target = FakeTarget([ok(errors={"frame_000004": error})])
    summary = predict(frames, target, out, options())
    rows = rows_by_id(out)
    assert rows["frame_000004"] == {"index": 4, "id": "frame_000004",
                                    "timestamp": frames[4].timestamp, "error": error}
    assert summary.errors == 1 and summary.unfinished == 0
    again = FakeTarget()
    second = predict(frames, again, out, options())
    assert again.calls == [] and second.skipped == 6
    assert rows_by_id(out)["frame_000004"]["error"] == error


def test_concurrent_sends_overlap_and_rows_stay_in_order(tmp_path):
    """concurrency=2: the first two calls must be inside send at the same time (a barrier
    with a timeout, so a sequential client fails fast instead of hanging); never more
    than two in flight; one row per frame, in frame order."""
    write_frames(tmp_path / "frames", 8, size=SMALL)
    frames = local_frames(tmp_path / "frames")
    barrier = threading.Barrier(2, timeout=5)
    target = FakeTarget([together(barrier), together(barrier)])
    summary = predict(frames, target, tmp_path / "out",  # frames as stored: no first
                      options(batch_size=1, concurrency=2, resize_to=None))  # alone
    assert target.max_in_flight == 2
    assert sorted(target.sent_ids) == [f.id for f in frames]  # each sent once
    assert read_rows(tmp_path / "out") == [predicted_row(f) for f in frames]
    assert summary.requests == 8 and summary.unfinished == 0


def test_the_first_answer_teaches_the_model_input_and_later_frames_go_shrunk(tmp_path):
    """"auto" (the default): the first request goes alone, with one frame as stored (the
    server's other cores idle while it runs); its answer names the model's input; every
    later request carries model-sized PNGs, several in flight."""
    import io

    from PIL import Image

    write_frames(tmp_path / "frames", 12, size=(320, 240))
    frames = local_frames(tmp_path / "frames")
    barrier = threading.Barrier(2, timeout=5)
    model = {"name": "m", "input": {"width": 24, "height": 16, "color_mode": "L"}}
    target = FakeTarget([ok(model=model), together(barrier, ok(model=model)),
                         together(barrier, ok(model=model))], default=ok(model=model))
    bodies = []
    send = target.send
    target.send = lambda body, content_type: bodies.append((body, content_type)) or send(
        body, content_type)
    summary = predict(frames, target, tmp_path / "out",
                      options(batch_size=4, concurrency=2, resize_to="auto"))
    assert summary.complete and target.max_in_flight == 2
    parts = [parse_body(body, ct) for body, ct in bodies]
    sizes = [[Image.open(io.BytesIO(data)).size for _, data in call] for call in parts]
    # Request 1 goes as soon as it is full (one frame), before the next frame is read:
    # every frame after it goes shrunk.
    assert sizes[0] == [(320, 240)]
    assert [len(s) for s in sizes] == [1, 4, 4, 3]
    assert sizes[1] + sizes[2] + sizes[3] == [(24, 16)] * 11
    assert all(Image.open(io.BytesIO(data)).format == "PNG" for _, data in parts[2])
    assert read_rows(tmp_path / "out") == [predicted_row(f) for f in frames]


def test_concurrency_one_sends_one_at_a_time(frames, tmp_path):
    """concurrency=1: never two calls in flight, calls in frame order."""
    target = FakeTarget()
    predict(frames, target, tmp_path / "out", options(batch_size=2, concurrency=1))
    assert target.max_in_flight == 1
    assert target.sent_ids == [f.id for f in frames]
