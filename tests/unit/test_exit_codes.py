"""Exit codes with meaning (README, "Exit codes"): what happened decides the number, the
same for options from argparse and from the dataclasses. A fake target, no server."""
from __future__ import annotations

import json

import pytest

from frame_infer.cli import main
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.errors import ExitCode

from ..helpers.frames import write_frames
from ..helpers.targets import FakeTarget, fail, ok, options, status

SMALL = (32, 24)


@pytest.fixture()
def frames(tmp_path):
    write_frames(tmp_path / "frames", 6, size=SMALL)
    return local_frames(tmp_path / "frames")


def test_every_frame_predicted_is_0(frames, tmp_path):
    summary = predict(frames, FakeTarget(default=ok()), tmp_path / "out", options())
    assert summary.exit_code == ExitCode.OK == 0


def test_a_per_image_error_is_4_and_a_rerun_keeps_it(frames, tmp_path):
    errors = {"frame_000002": {"code": "invalid_image", "message": "not an image"}}
    first = predict(frames, FakeTarget(default=ok(errors=errors)), tmp_path / "out",
                    options())
    assert first.exit_code == ExitCode.IMAGE_ERRORS and first.resumable == 0
    again = FakeTarget(default=ok())
    second = predict(frames, again, tmp_path / "out", options())
    assert again.calls == [] and second.exit_code == ExitCode.IMAGE_ERRORS


def test_a_frame_too_large_for_any_request_is_4_not_incomplete(tmp_path):
    write_frames(tmp_path / "big", 6, size=(320, 240))
    summary = predict(local_frames(tmp_path / "big"), FakeTarget(default=ok(), max_payload=1024),
                      tmp_path / "out", options())
    assert summary.error_codes["frame_too_large"][0] == 6
    assert summary.unfinished == 6 and summary.resumable == 0
    assert summary.exit_code == ExitCode.IMAGE_ERRORS


def test_requests_that_failed_as_a_whole_are_3_and_the_same_command_resumes(frames, tmp_path):
    # The first request (2 frames) fails every attempt; the endpoint answers the rest.
    target = FakeTarget([status(503)] * 3, default=ok())
    first = predict(frames, target, tmp_path / "out", options(batch_size=2, attempts=3))
    assert first.unfinished == 2 and not first.unreachable
    assert first.exit_code == ExitCode.INCOMPLETE
    second = predict(frames, FakeTarget(default=ok()), tmp_path / "out", options())
    assert second.exit_code == ExitCode.OK and second.skipped == 4


@pytest.mark.parametrize("behaviour", [fail("connection refused"), status(404)])
def test_an_endpoint_that_never_answers_is_5(frames, tmp_path, behaviour):
    """Down (connection refused) or a wrong model name (MMS's 404 every time): nothing was
    ever answered, so it is the environment, not the images."""
    summary = predict(frames, FakeTarget(default=behaviour), tmp_path / "out",
                      options(attempts=2))
    assert summary.unreachable and summary.exit_code == ExitCode.ENVIRONMENT


def test_the_cli_returns_the_summary_code_and_json_says_it(tmp_path, capsys, monkeypatch):
    """``predict --json`` against a closed port: exit 5, and the one JSON object on stdout
    carries the same code and the counts."""
    from frame_infer.serving.ports import free_port

    write_frames(tmp_path / "frames", 3, size=SMALL)
    code = main(["predict", str(tmp_path / "frames"), "--endpoint",
                 f"http://127.0.0.1:{free_port()}/predictions/m", "--out",
                 str(tmp_path / "out"), "--retries", "1", "--no-progress", "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == ExitCode.ENVIRONMENT == document["exit_code"]
    assert document["command"] == "predict" and document["summary"]["rows"] == 3
    assert document["summary"]["error_codes"]["request_failed"]["rows"] == 3
    assert "3 frames request_failed" in captured.err


@pytest.mark.parametrize("flag", [["--face-margin", "2"], ["--detect-width", "10"]])
def test_bad_face_options_exit_2_from_argparse_and_from_the_dataclass(flag, tmp_path, capsys):
    """``--detect-width 10`` is refused by argparse, ``--face-margin 2`` by FaceOptions:
    both are usage errors, exit 2, before any work."""
    argv = ["run", str(tmp_path / "clip.mp4"), "--endpoint", "http://127.0.0.1:20000/p",
            "--out", str(tmp_path / "out"), "--faces", *flag]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == ExitCode.USAGE
    assert flag[0].lstrip("-").replace("-", "_").split("_")[-1] in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_command_that_stops_with_an_error_says_so_in_its_json(tmp_path, capsys):
    """``--json`` and an error (here: no such video): the object carries the exit code
    and the message; stdout holds nothing else."""
    code = main(["run", str(tmp_path / "missing.mp4"), "--endpoint",
                 "http://127.0.0.1:20000/p", "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == ExitCode.USAGE == document["exit_code"] and document["command"] == "run"
    assert "missing.mp4 not found" in document["error"] and document["error"] in captured.err
