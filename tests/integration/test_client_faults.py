"""Client faults of issue 21 against the real MMS: a wrong endpoint names its real cause
(the management API's list of served models), and a server restart during a run is
ridden out by the retry time budget (exit 0, nothing lost, in one run)."""
from __future__ import annotations

import contextlib
import threading

import pytest

from frame_infer.client.options import PredictOptions
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import EndpointError, HttpTarget, make_target
from frame_infer.serving.lifecycle import ServeConfig, ServedModel
from frame_infer.serving.mms import ModelSettings, ServerSettings
from frame_infer.serving.ports import free_port, port_in_use

from ..helpers.frames import write_frames
from ..helpers.rows import read_rows

RGB = ModelSettings("rgb.mar", "rgb", batch_size=1, max_batch_delay_ms=1, workers=1)


def paired_ports() -> tuple[int, int]:
    """A free inference port whose next port is free too: `serve`'s 8080/8081 pairing,
    which is where the client looks for the management API."""
    for _ in range(50):
        port = free_port()
        if port < 32000 and not port_in_use(port + 1):
            return port, port + 1
    raise RuntimeError("no two adjacent free ports")


@contextlib.contextmanager
def mms_on(store, ports: tuple[int, int], run_dir):
    config = ServeConfig(ServerSettings(model_store=store, port=ports[0],
                                        management_port=ports[1], run_dir=run_dir),
                         (RGB,), threads=1, remove_run_dir="never")
    with ServedModel(config) as served:
        yield served.server


@pytest.fixture(scope="module")
def paired(model_store, tmp_path_factory):
    """MMS serving only ``rgb`` on an inference port whose management API is port + 1."""
    ports = paired_ports()
    with mms_on(model_store, ports, tmp_path_factory.mktemp("paired-run")) as server:
        yield server


@pytest.fixture()
def frames(tmp_path):
    write_frames(tmp_path / "frames", 4, size=(32, 24))
    return local_frames(tmp_path / "frames")


def quick() -> PredictOptions:
    return PredictOptions(batch_size=2, concurrency=1, progress=False, resize_to=None)


def test_a_model_name_that_is_not_served_lists_the_served_ones(paired, frames, tmp_path):
    """/predictions/ferplus when only rgb is served: EndpointError (exit 2) naming both
    names and the URL to use, after the first 404, not after rounds of retries."""
    origin = paired.inference_url
    target = HttpTarget(f"{origin}/predictions/ferplus")
    with pytest.raises(EndpointError) as raised:
        predict(frames, target, tmp_path / "out", quick())
    message = str(raised.value)
    assert "no model 'ferplus'" in message and "served: rgb" in message
    assert f"--endpoint {origin}/predictions/rgb" in message
    assert raised.value.exit_code == 2


def test_the_management_port_as_the_endpoint_says_so(paired, frames, tmp_path):
    management = f"http://127.0.0.1:{paired.settings.management_port}"
    target = HttpTarget(f"{management}/predictions/rgb")
    with pytest.raises(EndpointError, match="management API .*serves rgb"):
        predict(frames, target, tmp_path / "out", quick())


def test_a_url_without_the_model_path(paired, frames, tmp_path):
    """No path at all fails before anything is sent; a path that is not
    /predictions/NAME gets MMS's 404/405 diagnosed with the served models."""
    with pytest.raises(EndpointError, match="/predictions/NAME"):
        make_target(paired.inference_url)
    target = HttpTarget(f"{paired.inference_url}/predict")
    with pytest.raises(EndpointError, match=r"served here: rgb\); use .*/predictions/rgb"):
        predict(frames, target, tmp_path / "out", quick())


class Gate:
    """Wraps a target: after ``after`` calls the next call waits until ``opened`` is set
    (so the test can stop the server at a known moment); ``waiting`` says it is there."""

    def __init__(self, inner, after: int):
        self.inner, self.after, self.calls = inner, after, 0
        self.max_payload = inner.max_payload
        self.waiting, self.opened = threading.Event(), threading.Event()

    def send(self, body, content_type):
        self.calls += 1
        if self.calls == self.after + 1:
            self.waiting.set()
            assert self.opened.wait(120), "the test never opened the gate"
        return self.inner.send(body, content_type)

    def describe(self):
        return self.inner.describe()

    def diagnose(self, status):
        return self.inner.diagnose(status)


def test_a_server_restart_during_predict_is_ridden_out(model_store, tmp_path):
    """MMS stops after two answered requests and a new one starts on the same ports (it
    refuses connections, then answers 404 while registering): with the default retry
    policy the same run predicts every frame, exit 0, nothing lost."""
    write_frames(tmp_path / "frames", 12, size=(32, 24))
    work = local_frames(tmp_path / "frames")
    ports = paired_ports()
    url = f"http://127.0.0.1:{ports[0]}/predictions/rgb"
    gate = Gate(HttpTarget(url), after=2)
    result = {}

    def run():
        try:
            result["summary"] = predict(work, gate, tmp_path / "out", PredictOptions(
                batch_size=2, concurrency=1, progress=False, resize_to=None))
        except BaseException as exc:  # handed to the test's thread
            result["error"] = exc

    worker = threading.Thread(target=run)
    with mms_on(model_store, ports, tmp_path / "run-a"):
        worker.start()
        assert gate.waiting.wait(60)
    gate.opened.set()  # the server is gone: the next request is refused
    with mms_on(model_store, ports, tmp_path / "run-b"):
        worker.join(120)
    assert not worker.is_alive() and "error" not in result, result.get("error")
    summary = result["summary"]
    assert summary.exit_code == 0 and summary.complete
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(12))
    assert all("label" in r for r in rows)
    assert summary.requests > 6  # the refused / 404 attempts are counted too


def test_an_out_reused_for_another_video_is_refused_then_replaced(mms, tmp_path, capsys):
    """Issue 21, defect 5: OUT holds clip A's results; run with clip B (or A at another
    --fps) into it stops with exit 2 naming what differs, instead of "already done";
    --re-extract cuts B there, moves A's results aside and predicts B's frames."""
    import json

    from frame_infer.cli import main
    from frame_infer.client.extract import make_sample_video
    from frame_infer.client.source_record import read_source

    from ..helpers.mms import model_url

    first = make_sample_video(tmp_path / "a.mkv", seconds=1, fps=10, size=(96, 72))
    second = make_sample_video(tmp_path / "b.mkv", seconds=0.5, fps=10, size=(128, 96))
    out = tmp_path / "out"
    url = model_url(mms)
    base = ["--endpoint", url, "--out", str(out), "--no-progress", "--fps", "10"]
    assert main(["run", str(first), *base]) == 0
    assert read_source(out / "frames")["video"] == str(first.resolve())
    capsys.readouterr()

    assert main(["run", str(second), *base]) == 2
    err = capsys.readouterr().err
    assert f"holds the results of other frames: it holds {first.resolve()}" in err
    assert "--re-extract" in err and "already done" not in err
    assert main(["run", str(first), *base[:-1], "5"]) == 2
    assert "fps 10.0 there, 5.0 now" in capsys.readouterr().err

    assert main(["run", str(second), *base, "--re-extract", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["rows"] == 5 and document["summary"]["skipped"] == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(5))
    aside = list(out.glob("replaced-*/predictions.journal.jsonl"))
    assert len(aside) == 1 and len(aside[0].read_text().splitlines()) == 10
    assert main(["run", str(second), *base]) == 0  # the same video again: resumes
    assert "5 already done" in capsys.readouterr().out


def _cli(*args, limit_bytes: int | None = None, close_stdout: bool = False):
    """``python -m frame_infer.cli ARGS`` in a child process; with ``limit_bytes`` no file
    it writes may grow past that (RLIMIT_FSIZE: writes beyond it fail with EFBIG, as on a
    full disk); with ``close_stdout`` its stdout is a pipe whose reader has gone."""
    import resource
    import subprocess
    import sys

    def limit():
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    child = subprocess.Popen([sys.executable, "-m", "frame_infer.cli", *map(str, args)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=limit)
    if close_stdout:
        child.stdout.close()
        err = child.stderr.read()
        return child.wait(120), b"", err.decode()
    out, err = child.communicate(timeout=120)
    return child.returncode, out, err.decode()


def test_a_full_disk_names_the_file_and_the_rerun_recovers_the_torn_line(mms, tmp_path):
    """The journal hits the file-size limit (EFBIG) mid-run: exit 5, a message with the
    journal's path and "rerun", no raw errno; the journal's last line is torn. The rerun
    with room skips the torn line, sends what has no row, and ends complete."""
    from frame_infer.client.journal import JOURNAL_NAME

    from ..helpers.mms import model_url

    write_frames(tmp_path / "frames", 24, size=(32, 24))
    out = tmp_path / "out"
    code, _, err = _cli("predict", tmp_path / "frames", "--endpoint", model_url(mms),
                        "--out", out, "--no-progress", "--frames-per-request", "4",
                        "--concurrency", "1", limit_bytes=3000)
    journal = out / JOURNAL_NAME
    assert code == 5, err
    assert f"cannot write {journal}: the file-size limit was reached (EFBIG)" in err
    assert "rerun the same command" in err and "[Errno" not in err and "Traceback" not in err
    data = journal.read_bytes()
    assert len(data) == 3000 and not data.endswith(b"\n")  # torn

    code, out_text, err = _cli("predict", tmp_path / "frames", "--endpoint", model_url(mms),
                               "--out", out, "--no-progress", "--json")
    assert code == 0, err
    import json

    document = json.loads(out_text)
    assert document["summary"]["complete"] and document["summary"]["skipped"] > 0
    rows = read_rows(out)
    assert [r["index"] for r in rows] == list(range(24)) and all("label" in r for r in rows)
    lines = journal.read_text().splitlines()
    assert sum(1 for line in lines if not line.startswith("{") or
               not line.endswith("}")) == 1  # the torn line, alone on its line


def test_output_piped_to_a_reader_that_went_away_exits_quietly(tmp_path):
    """`frame-infer extract ... | head -0`: the summary line cannot be written; the command
    still exits with its own code (0) and says nothing about a broken pipe."""
    from frame_infer.client.extract import make_sample_video

    video = make_sample_video(tmp_path / "clip.mkv", seconds=0.3, fps=10, size=(64, 48))
    code, _, err = _cli("extract", video, "--out", tmp_path / "frames", "--no-progress",
                        close_stdout=True)
    assert code == 0, err
    assert "Broken pipe" not in err and "Errno 32" not in err and "Traceback" not in err
    assert (tmp_path / "frames" / "manifest.jsonl").exists()
