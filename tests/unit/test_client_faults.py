"""Client faults of issue 21 against the scripted fake target (no server): an outage ridden
out by the time budget, a wrong URL still reported fast, a diagnosed wrong endpoint, NaN
answers, manifest lines checked before sending."""
from __future__ import annotations

import json
import math
import time

import pytest

from frame_infer.client.journal import JOURNAL_NAME, PREDICTIONS_NAME
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import EndpointError

from ..helpers.frames import write_frames
from ..helpers.rows import read_rows
from ..helpers.targets import FakeTarget, fail, mms_error, ok, options, predicted_row, status

SMALL = (32, 24)


@pytest.fixture()
def frames(tmp_path):
    write_frames(tmp_path / "frames", 6, size=SMALL)
    return local_frames(tmp_path / "frames")


def outage(seconds: float, then=None):
    """A behaviour per call: the first call is answered; from the second on, for
    ``seconds`` (from the second call's arrival), connection refused, 404 "Model not
    found" and 503 in turn (what a restarting MMS gives); afterwards ``then``."""
    then = then or ok()
    began = []
    kinds = [fail("connection refused"), lambda call: (404, mms_error(404)),
             lambda call: (503, mms_error(503))]

    def script(call):
        if call.number == 1:
            return then
        if not began:
            began.append(time.monotonic())
        if time.monotonic() - began[0] < seconds:
            return kinds[call.number % 3]
        return then
    return script


def test_an_outage_after_the_first_answer_is_ridden_out_within_the_budget(frames, tmp_path):
    """200, then 0.4 s of refused/404/503: with 2 counted attempts a request would fail;
    the 5 s budget keeps it going until the server is back: every frame predicted."""
    target = FakeTarget(outage(0.4))
    summary = predict(frames, target, tmp_path / "out",
                      options(batch_size=2, attempts=2, budget=5.0))
    assert summary.complete and summary.unfinished == 0
    assert read_rows(tmp_path / "out") == [predicted_row(f) for f in frames]
    failed = [c for c in target.calls if c.status != 200]
    assert len(failed) > 2  # more attempts than counted ones: the budget carried them
    assert {c.status for c in failed} >= {404, 503, None}


def test_past_the_budget_the_frames_are_left_for_a_rerun(frames, tmp_path):
    """An outage longer than the budget: the requests end request_failed (not final),
    their message says for how long and to rerun."""
    target = FakeTarget(outage(60.0))
    started = time.monotonic()
    summary = predict(frames, target, tmp_path / "out",
                      options(batch_size=2, attempts=2, budget=1.0))
    assert time.monotonic() - started < 10
    rows = read_rows(tmp_path / "out")
    assert rows[:2] == [predicted_row(f) for f in frames[:2]]
    assert {r["error"]["code"] for r in rows[2:]} == {"request_failed"}
    assert "over 1s" in rows[2]["error"]["message"] and "rerun" in rows[2]["error"]["message"]
    assert summary.exit_code == 3


def test_an_endpoint_that_never_answered_is_given_up_on_by_count_not_by_budget(frames,
                                                                               tmp_path):
    """Connection refused from the start (a wrong port): a long budget does not apply,
    the counted attempts do, so the run ends at once with exit 5."""
    target = FakeTarget(default=fail("connection refused"))
    started = time.monotonic()
    summary = predict(frames, target, tmp_path / "out",
                      options(batch_size=3, attempts=2, budget=600.0))
    assert time.monotonic() - started < 5
    assert len(target.calls) == 4  # two requests, two attempts each
    assert summary.unreachable and summary.exit_code == 5


class Diagnosing(FakeTarget):
    """The fake target with the optional ``diagnose`` of HttpTarget, scripted."""

    def __init__(self, verdict, **kwargs):
        super().__init__(**kwargs)
        self.verdict, self.diagnosed = verdict, []

    def diagnose(self, status_code):
        self.diagnosed.append(status_code)
        if isinstance(self.verdict, Exception):
            raise self.verdict
        return self.verdict


def test_a_wrong_endpoint_stops_the_run_with_its_cause(frames, tmp_path):
    """404 before any answer, and the target knows the model is not served: the run stops
    with that EndpointError (exit 2), once, not after rounds of retries."""
    target = Diagnosing(EndpointError("no model 'ferplus' is served (served: fer)"),
                        default=status(404))
    with pytest.raises(EndpointError, match="served: fer") as raised:
        predict(frames, target, tmp_path / "out", options(batch_size=3, attempts=5))
    assert raised.value.exit_code == 2
    assert target.diagnosed == [404] and len(target.calls) <= 2


def test_a_hint_from_the_diagnosis_goes_into_the_message(frames, tmp_path):
    """A diagnosis that is not sure (the model may be registering) keeps the retries and
    puts its hint in the request_failed message."""
    target = Diagnosing("check the name", default=status(404))
    summary = predict(frames, target, tmp_path / "out", options(batch_size=6, attempts=2))
    message = read_rows(tmp_path / "out")[0]["error"]["message"]
    assert "Model not found" in message and "(check the name)" in message
    assert len(target.calls) == 2 and summary.exit_code == 5


def test_a_404_after_answers_is_not_diagnosed(frames, tmp_path):
    """A 404 once the endpoint has answered is a restart, not a wrong URL."""
    target = Diagnosing(EndpointError("must not be asked"),
                        script=[ok(), status(404)])
    summary = predict(frames, target, tmp_path / "out", options(batch_size=3, attempts=2))
    assert target.diagnosed == [] and summary.complete


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scores_are_rejected_and_never_written(frames, tmp_path, bad):
    """An answer whose entry has a NaN/Inf score or probability: that frame gets
    bad_response (not final), the others are predicted, and both output files stay
    strict JSON (no NaN literal)."""
    def answer(call):
        code, body = ok()(call)
        body["predictions"][1]["score"] = bad
        body["predictions"][2]["probabilities"]["happiness"] = bad
        return code, body

    target = FakeTarget(default=answer)
    summary = predict(frames, target, tmp_path / "out", options(batch_size=6))
    rows = read_rows(tmp_path / "out")
    assert [r.get("error", {}).get("code") for r in rows] == \
        [None, "bad_response", "bad_response", None, None, None]
    for name in (PREDICTIONS_NAME, JOURNAL_NAME):
        for line in (tmp_path / "out" / name).read_text().splitlines():
            json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in {name}"))
    assert all(math.isfinite(r["score"]) for r in rows if "score" in r)
    assert summary.unfinished == 2 and summary.exit_code == 3


# -- the --out folder and the video argument ---------------------------------------------
def test_a_second_process_on_the_same_out_is_told_who_holds_it(tmp_path, capsys):
    """Another process holds OUT's lock: run stops at once with exit 5 naming its pid and
    command; once that process is gone the lock is free (the kernel drops it)."""
    import subprocess
    import sys

    from frame_infer.cli import main
    from frame_infer.client.extract import make_sample_video
    from frame_infer.client.outlock import out_lock

    video = make_sample_video(tmp_path / "clip.mkv", seconds=0.2, fps=10, size=(64, 48))
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from frame_infer.client.outlock import out_lock\n"
         f"with out_lock({str(out)!r}, 'run other.mp4'):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(["run", str(video), "--endpoint", "http://127.0.0.1:1/predictions/x",
                     "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 5
        assert f"in use by process {holder.pid}" in err and "'run other.mp4'" in err
        assert not (out / "frames").exists()  # nothing was cut
    finally:
        holder.communicate("", timeout=30)
    with out_lock(out, "test"):  # free again
        pass


@pytest.mark.parametrize("command", ["predict", "run", "extract"])
def test_out_that_is_a_file_is_refused_by_name(tmp_path, capsys, command):
    from frame_infer.cli import main
    from frame_infer.client.extract import make_sample_video

    write_frames(tmp_path / "frames", 2, size=SMALL)
    video = make_sample_video(tmp_path / "clip.mkv", seconds=0.2, fps=10, size=(64, 48))
    out = tmp_path / "results.txt"
    out.write_text("mine")
    given = tmp_path / "frames" if command == "predict" else video
    endpoint = [] if command == "extract" else ["--endpoint",
                                                "http://127.0.0.1:1/predictions/x"]
    code = main([command, str(given), *endpoint, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"--out {out} is a file, not a folder" in err
    assert "Errno" not in err and out.read_text() == "mine"


def test_a_folder_of_images_given_to_run_points_at_predict(tmp_path, capsys):
    from frame_infer.cli import main

    write_frames(tmp_path / "photos", 2, size=SMALL)
    code = main(["run", str(tmp_path / "photos"), "--endpoint",
                 "http://127.0.0.1:1/predictions/x", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "is a folder, not a video" in err
    assert f"frame-infer predict {tmp_path / 'photos'}" in err


# -- the manifest, checked before sending -------------------------------------------------
def test_a_repeated_line_and_a_missing_file_are_named_and_the_others_predicted(tmp_path):
    """Line 3 repeated at the end, frame 4's file deleted: the repeat is skipped (no id
    twice in a request, so no duplicate_id for the whole request), frame 4 gets
    frame_missing without a send and without a raw [Errno 2]; the warnings name the
    lines; the other four are predicted; exit 4 (a rerun cannot fix it, extracting can)."""
    folder = tmp_path / "frames"
    write_frames(folder, 6, size=SMALL)
    manifest = folder / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([*lines, lines[2]]) + "\n")
    (folder / "frame_000004.jpg").unlink()
    work = local_frames(folder)
    target = FakeTarget()
    summary = predict(work, target, tmp_path / "out", options(batch_size=8))
    assert sorted(target.sent_ids) == ["frame_000000", "frame_000001", "frame_000002",
                                       "frame_000003", "frame_000005"]
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(6))
    assert rows[4]["error"]["code"] == "frame_missing"
    assert "frame_000004.jpg is missing" in rows[4]["error"]["message"]
    assert "Errno" not in rows[4]["error"]["message"]
    assert all("label" in r for i, r in enumerate(rows) if i != 4)
    assert any(f"{manifest}:7 repeats frame frame_000002 of line 3" in w
               for w in summary.warnings)
    assert any(f"{manifest}:5 names frame_000004.jpg, which is missing" in w
               for w in summary.warnings)
    assert summary.exit_code == 4


def test_whole_frames_to_a_model_that_expects_faces_warn_naming_faces(frames, tmp_path):
    """An answer whose model block says input.faces (what an imported fer model declares):
    the whole-frame run warns, naming --faces; the same answers without it do not."""
    model = {"name": "fer", "input": {"width": 64, "height": 64, "color_mode": "L",
                                      "faces": True}}
    summary = predict(frames, FakeTarget(default=ok(model=model)), tmp_path / "a",
                      options())
    assert summary.complete
    assert [w for w in summary.warnings if "expects face crops" in w and "--faces" in w]
    del model["input"]["faces"]
    quiet = predict(frames, FakeTarget(default=ok(model=model)), tmp_path / "b", options())
    assert not [w for w in quiet.warnings if "face crops" in w]


def test_the_source_record_tells_videos_and_options_apart(tmp_path):
    """source_record: the same video and options match after a JSON round trip (so a
    rerun resumes); another video, fps or face option is named; a truncated video's
    record gives the warning, a whole one none."""
    from frame_infer.client.extract import make_sample_video
    from frame_infer.client.faces import FaceOptions
    from frame_infer.client.source_record import (differences, ended_early,
                                                  ended_early_message, read_source, wanted,
                                                  write_source)

    a = make_sample_video(tmp_path / "a.mkv", seconds=0.3, fps=10, size=(64, 48))
    b = make_sample_video(tmp_path / "b.mkv", seconds=0.4, fps=10, size=(64, 48))
    record = wanted(a, 10, 90, FaceOptions())
    write_source(tmp_path, {**record, "complete": True})
    back = read_source(tmp_path)
    assert differences(back, wanted(a, 10, 90, FaceOptions())) == []
    assert differences(back, wanted(b, 10, 90, FaceOptions())) == [
        f"it holds {a.resolve()}, not {b.resolve()}"]
    assert differences(back, wanted(a, 5, 90, FaceOptions())) == ["fps 10.0 there, 5.0 now"]
    assert differences(back, wanted(a, 10, 90, FaceOptions(detector="haar"))) == [
        "face options differ: detector 'blazeface' there, 'haar' now"]
    assert differences(back, wanted(a, 10, 90, None)) == [
        "faces: faces (blazeface) there, whole frames now"]
    assert differences(None, record)[0].startswith("it has no source.json")
    assert ended_early(20.0, 11.7) and not ended_early(20.0, 19.9) and not ended_early(None, 3)
    assert ended_early_message(back) is None
    message = ended_early_message({"video": "v.mkv", "ended_early": True,
                                   "declared_duration": 20.0, "duration": 11.7})
    assert "says it lasts 20.00 s but its pictures stop at 11.70 s" in message
