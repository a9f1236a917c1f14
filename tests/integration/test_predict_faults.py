"""Faults between the client and a real MMS: nothing lost, nothing silent."""
from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from frame_infer.errors import ExitCode
from frame_infer.cli import main
from frame_infer.client.options import PredictOptions
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import HttpTarget, RetryPolicy
from frame_infer.serving.mms import ModelSettings

from ..helpers.frames import write_frames
from ..helpers.loopback import JsonHandler, StandIn
from ..helpers.mms import model_url, running_mms
from ..helpers.rows import read_rows

PATIENT = RetryPolicy(max_attempts=12, base_delay=0.2, max_delay=1.0)


class CountingTarget:
    """Wraps a target; records each answer's status (``None`` for a transport error)."""

    def __init__(self, inner):
        self.inner, self.max_payload, self.statuses = inner, inner.max_payload, []

    def send(self, body, content_type):
        try:
            status, answer = self.inner.send(body, content_type)
        except Exception:
            self.statuses.append(None)
            raise
        self.statuses.append(status)
        return status, answer

    def describe(self):
        return self.inner.describe()


def test_404_while_the_model_registers_is_retried_until_it_answers(model_store, tmp_path):
    """What a restarted `serve` looks like to a running client: MMS is up but answers 404
    "Model not found" until registration finishes. The same run ends with every frame
    predicted (before, those frames were journaled as final http_404 rows)."""
    write_frames(tmp_path / "frames", 24)
    frames = local_frames(tmp_path / "frames")
    with running_mms(model_store, cleanup=True) as server:  # no model registered yet
        target = CountingTarget(HttpTarget(model_url(server)))
        result = {}
        runner = threading.Thread(target=lambda: result.update(summary=predict(
            frames, target, tmp_path / "out",
            PredictOptions(batch_size=4, concurrency=2, retry=PATIENT, progress=False))))
        runner.start()
        deadline = time.monotonic() + 30
        while 404 not in target.statuses and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the first 404
        assert 404 in target.statuses
        server.register(ModelSettings("ferplus.mar", "ferplus", batch_size=4, workers=1))
        runner.join(timeout=120)
    assert not runner.is_alive()
    summary = result["summary"]
    assert summary.complete and summary.predicted == 24
    assert [r["index"] for r in read_rows(tmp_path / "out")] == list(range(24))


def test_wrong_model_name_exits_5_naming_the_cause_and_the_fix(mms, tmp_path, capsys):
    write_frames(tmp_path / "frames", 8)
    url = f"{mms.inference_url}/predictions/no-such-model"
    code = main(["predict", str(tmp_path / "frames"), "--endpoint", url, "--out",
                 str(tmp_path / "out"), "--retries", "2", "--no-progress",
                 "--frames-per-request", "4"])
    captured = capsys.readouterr()
    assert code == ExitCode.ENVIRONMENT  # nothing was ever answered: the URL is wrong
    assert "0 predicted, 8 errors" in captured.out
    assert "8 frames request_failed: " in captured.err
    assert "Model not found" in captured.err and "fix: " in captured.err


def test_max_payload_too_small_exits_4_with_frame_too_large(mms, tmp_path, capsys):
    write_frames(tmp_path / "frames", 3)
    code = main(["predict", str(tmp_path / "frames"), "--endpoint", model_url(mms), "--out",
                 str(tmp_path / "out"), "--max-payload", "2000", "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.IMAGE_ERRORS and "3 frames frame_too_large" in err and "--model-input WxH" in err
    assert {r["error"]["code"] for r in read_rows(tmp_path / "out")} == {"frame_too_large"}


class CutShortProxy(StandIn):
    """Forwards to the real MMS, except that the first ``cut`` answers stop halfway: a
    chunked 200 whose body ends without its last chunk (the connection closes)."""

    def __init__(self, upstream: str, cut: int = 2):
        proxy = self
        self.upstream, self.cut, self.cuts, self.lock = upstream, cut, 0, threading.Lock()

        class Handler(JsonHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with proxy.lock:
                    cut = proxy.cuts < proxy.cut
                    proxy.cuts += cut
                if cut:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"10\r\n{\"predictions\":")  # 16 bytes promised, 15 sent
                    self.wfile.flush()
                    self.close_connection = True
                    return
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method="POST",
                    headers={"Content-Type": self.headers["Content-Type"]})
                with urllib.request.urlopen(request, timeout=60) as resp:
                    self.send_json(resp.status, resp.read())

        self.serve(Handler)


def test_a_response_cut_short_is_retried_not_fatal(mms, tmp_path):
    """requests raises ChunkedEncodingError for a body cut short; before, it aborted the
    whole job. Now it is a transport error like any other: retried."""
    write_frames(tmp_path / "frames", 12)
    with CutShortProxy(mms.inference_url) as proxy:
        summary = predict(local_frames(tmp_path / "frames"),
                          HttpTarget(f"{proxy.url}/predictions/ferplus", timeout=30),
                          tmp_path / "out",
                          PredictOptions(batch_size=4, concurrency=1, progress=False,
                                         retry=RetryPolicy(3, 0.01, 0.05)))
    assert proxy.cuts == 2
    assert summary.complete and summary.requests == 1 + 3 + 2  # one frame first, 4 + 4 + 3


@pytest.mark.parametrize("retry_errors, sent", [(False, 0), (True, 1)])
def test_retry_errors_resends_per_image_errors(mms, tmp_path, retry_errors, sent, capsys):
    """A corrupt frame is final (the service's answer for that image): a rerun leaves it;
    after the file is fixed, --retry-errors sends it again and the run exits 0."""
    write_frames(tmp_path / "frames", 4, corrupt=(2,))
    argv = ["predict", str(tmp_path / "frames"), "--endpoint", model_url(mms), "--out",
            str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == ExitCode.IMAGE_ERRORS
    assert "1 frame invalid_image" in capsys.readouterr().err
    write_frames(tmp_path / "frames", 4)  # the frame is good now
    code = main(argv + (["--retry-errors"] if retry_errors else []))
    out = capsys.readouterr().out
    assert f"{4 - sent} already done" in out
    assert code == (ExitCode.OK if retry_errors else ExitCode.IMAGE_ERRORS)


def test_progress_bars_stay_out_of_logs(mms, tmp_path, capfd):
    """Output that is not a terminal (a log, CI) gets no progress bar and no carriage
    returns, without --no-progress."""
    write_frames(tmp_path / "frames", 6)
    assert main(["predict", str(tmp_path / "frames"), "--endpoint", model_url(mms),
                 "--out", str(tmp_path / "out")]) == 0
    captured = capfd.readouterr()
    assert "\r" not in captured.err and "frame/s" not in captured.err
    assert "6 predicted" in captured.out
