"""Bad arguments end at the parser, naming the option, before any work (exit 2)."""
from __future__ import annotations

import pytest

from frame_infer.cli import main
from frame_infer.client.options import PredictOptions
from frame_infer.client.targets import RetryPolicy
from frame_infer.errors import InputError

PREDICT = ["predict", "frames", "--endpoint", "http://127.0.0.1:20000/predictions/m",
           "--out", "out"]


@pytest.mark.parametrize("argv, fragment", [
    (PREDICT + ["--frames-per-request", "0"], "--frames-per-request: 0 is below the minimum 1"),
    (PREDICT + ["--concurrency", "0"], "--concurrency: 0 is below the minimum 1"),
    (PREDICT + ["--retries", "0"], "--retries: 0 is below the minimum 1"),
    (PREDICT + ["--frames-per-request", "many"],
     "--frames-per-request: 'many' is not a whole number"),
    (PREDICT + ["--timeout", "0"], "--timeout: 0 must be a number above 0"),
    (PREDICT + ["--fps", "-30"], "--fps: -30 must be a number above 0"),
    (PREDICT + ["--max-payload", "10"], "--max-payload: 10 is below the minimum 1024"),
    (["run", "clip.mp4", "--endpoint", "x", "--out", "o", "--concurrency", "-1"],
     "--concurrency: -1 is below the minimum 1"),
    (["serve", "--archive", "m.mar", "--workers", "0"],
     "--workers: 0 is below the minimum 1"),
    (["serve", "--archive", "m.mar", "--batch-size", "0"],
     "--batch-size: 0 is below the minimum 1"),
    (["extract", "clip.mp4", "--out", "f", "--fps", "0"], "--fps: 0 must be a number above 0"),
    (["upload", "f", "s3://b/p", "--concurrency", "0"], "--concurrency: 0 is below the minimum"),
])
def test_bad_numbers_are_argparse_errors(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and not (tmp_path / "out").exists()


def test_retries_help_says_what_it_counts(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "attempts per request, the first one included" in out
    assert "--retry-errors" in out


@pytest.mark.parametrize("kwargs, fragment", [
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"retry": RetryPolicy(max_attempts=0)}, "retry.max_attempts must be at least 1"),
    ({"timeout": 0}, "timeout must be above 0"),
    ({"max_payload": 100}, "max_payload must be at least 1024"),
])
def test_library_options_are_checked_too(kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        PredictOptions(**kwargs)


@pytest.mark.parametrize("bucket, fragment", [
    ("my-bucket", "'my-bucket' is not an S3 URI: write s3://bucket/prefix"),
    ("s3:///prefix", "has no bucket"),
])
def test_run_checks_the_bucket_before_the_video_is_cut(tmp_path, capsys, bucket, fragment):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not looked at")
    with pytest.raises(SystemExit) as exit_info:  # the parser's check (issue 13)
        main(["run", str(video), "--endpoint", "http://127.0.0.1:20001/p", "--out",
              str(tmp_path / "out"), "--bucket", bucket, "--faces", "--no-progress"])
    assert exit_info.value.code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was cut or written


def test_version_and_unknown_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("frame-infer ")
    with pytest.raises(SystemExit) as exit_info:
        main(["predikt"])
    assert exit_info.value.code == 2 and "invalid choice: 'predikt'" in capsys.readouterr().err


def test_ctrl_c_says_what_is_saved_and_how_to_continue(tmp_path, capsys, monkeypatch):
    """Interrupted after three results: exit 130, the count, the folder and the command
    that continues (before: exit 130 with no word)."""
    from frame_infer.cli import predict as predict_command
    from frame_infer.client.journal import Journal

    def interrupted(args):
        Journal(args.out).record([{"index": i, "id": f"frame_{i:06d}", "timestamp": 0.0,
                                   "label": "a", "score": 1.0, "probabilities": {"a": 1.0}}
                                  for i in range(3)])
        raise KeyboardInterrupt

    monkeypatch.setattr(predict_command, "run", interrupted)
    argv = ["predict", str(tmp_path / "frames"), "--endpoint",
            "http://127.0.0.1:20000/predictions/m", "--out", str(tmp_path / "out")]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"3 results are saved in {tmp_path / 'out'}" in err
    assert "run the same command again to continue: frame-infer predict " in err
    assert "--out " + str(tmp_path / "out") in err


def test_retry_flags_become_the_retry_policy():
    """--retries and --retry-budget reach RetryPolicy; the defaults are the dataclass's."""
    from frame_infer.cli import build_parser
    from frame_infer.cli.common import predict_options

    args = build_parser("predict").parse_args(PREDICT + ["--retries", "2", "--retry-budget",
                                                         "7.5"])
    policy = predict_options(args).retry
    assert (policy.max_attempts, policy.outage_budget) == (2, 7.5)
    default = predict_options(build_parser("predict").parse_args(PREDICT)).retry
    assert default == RetryPolicy()
    with pytest.raises(SystemExit):
        build_parser("predict").parse_args(PREDICT + ["--retry-budget", "-1"])
