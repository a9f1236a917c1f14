"""``make bench-peers``'s harness: the load generator and the answer check flag a dropped
and an altered answer, a server is stopped by pid however the block ends, and the table
and chart mark what is not ranked. A stand-in server (``benchmarks.peers.standin``, the
standard library's HTTP server) takes the place of the peers, so none of the peer
packages is needed; the FastAPI peer's own check is skipped when it is not installed."""
from __future__ import annotations

import importlib.util
import io

import numpy as np
import psutil
import pytest
from PIL import Image

from benchmarks.peers.__main__ import summarise
from benchmarks.peers.load import TOLERANCE, build_workload, check, send_all
from benchmarks.peers.processes import ServerFailed
from benchmarks.peers.servers import start_peer
from benchmarks.tables import peers_markdown, plot_peers
from frame_infer.models import testgen
from frame_infer.serving.ports import free_port


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("peer-model")
    testgen.write_test_model("ferplus", folder / "ferplus.onnx")
    return folder


@pytest.fixture(scope="module")
def workload(model_dir, tmp_path_factory):
    frames = tmp_path_factory.mktemp("peer-frames")
    rng = np.random.RandomState(3)
    paths = []
    for i in range(12):
        buf = io.BytesIO()
        Image.fromarray(rng.randint(0, 255, (120, 160, 3), dtype=np.uint8)).save(buf, "JPEG")
        path = frames / f"frame_{i:06d}.jpg"
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return build_workload(paths, model_dir, per_request=4)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_dropped_and_an_altered_answer_are_flagged(model_dir, workload, tmp_path):
    with start_peer("standin", model_dir, tmp_path, cores=1,
                    extra_args=("--drop", "frame_000002", "--alter", "frame_000007")) as running:
        result = send_all(running.url, workload, concurrency=2)
        pid = running.pid
    assert gone(pid)
    verdict = check(result, workload)
    assert (verdict.images, verdict.answered) == (12, 11)
    assert not verdict.all_answered and not verdict.correct
    assert verdict.max_dp == pytest.approx(0.01, abs=1e-3)
    assert any(p.startswith("frame_000002: no answer") for p in verdict.problems)
    assert any(p.startswith("frame_000007: probabilities differ") for p in verdict.problems)
    row = summarise({"server": "standin", "label": "stand-in", "setting": ""}, 2,
                    [{"images_s": 10.0, "wall_s": 1.2, "p50_ms": 1.0, "p99_ms": 2.0,
                      "cpu_s": 1.0, "forwards": 3, "images_per_forward": 4.0,
                      "answered": verdict.answered, "max_dp": verdict.max_dp, "errors": 0,
                      "problems": list(verdict.problems)}], workload.images)
    assert row["status"].startswith("dropped: 1 of 12") and not row["ranked"]


def test_a_faithful_server_passes_with_its_forwards_counted(model_dir, workload, tmp_path):
    with start_peer("standin", model_dir, tmp_path, cores=1) as running:
        result = send_all(running.url, workload, concurrency=3)
        forwards = running.forwards()
        assert running.cpu_seconds() > 0
    verdict = check(result, workload)
    assert verdict.correct and verdict.max_dp <= TOLERANCE
    assert sorted(forwards) == [4, 4, 4]  # one forward per request of 4 frames


def test_the_server_is_stopped_when_the_block_fails(model_dir, tmp_path):
    with pytest.raises(RuntimeError, match="the test failed here"):
        with start_peer("standin", model_dir, tmp_path, cores=1) as running:
            pid = running.pid
            raise RuntimeError("the test failed here")
    assert gone(pid)


def test_a_server_that_exits_at_start_names_its_log(model_dir, tmp_path):
    with pytest.raises(ServerFailed, match=r"exited \(2\)(.|\n)*unrecognized arguments"):
        with start_peer("standin", model_dir, tmp_path, cores=1, extra_args=("--bogus",)):
            pass  # not reached


def test_no_server_at_all_is_every_image_unanswered(workload):
    result = send_all(f"http://127.0.0.1:{free_port()}/predict", workload, concurrency=2,
                      timeout_s=5)
    verdict = check(result, workload)
    assert verdict.answered == 0 and len(result.errors) == 3
    assert verdict.problems[0].startswith("frame_000000: no answer")


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn")),
                    reason="the peer packages are not installed (make bench-peers installs "
                           "them)")
def test_the_fastapi_peer_answers_like_onnxruntime(model_dir, workload, tmp_path):
    with start_peer("fastapi", model_dir, tmp_path, cores=1) as running:
        verdict = check(send_all(running.url, workload, concurrency=2), workload)
    assert verdict.correct


def test_the_table_and_chart_mark_what_is_not_ranked(tmp_path):
    info = {"date": "2026-12-03 12:00 UTC", "cpu": "test cpu", "cores": 2,
            "memory_gib": 1.0, "python": "3.11", "onnxruntime": "1", "frames": 12,
            "per_request": 4, "repeats": 3, "load_average": [0.5], "versions": {}}
    good = {"server": "a", "label": "A", "setting": "a's page", "concurrency": 4,
            "images_s": 100.0, "images_s_min": 90.0, "images_s_max": 110.0, "p50_ms": 50.0,
            "p99_ms": 80.0, "cpu_s": 9.0, "images_per_forward": 16.0, "answered": 12,
            "images": 12, "max_dp": 0.0, "problems": [], "status": "ok", "ranked": True}
    dropped = {**good, "server": "b", "label": "B", "answered": 11, "ranked": False,
               "status": "dropped: 1 of 12 images unanswered in a run",
               "problems": ["frame_000002: no answer"]}
    failed = {"server": "c", "label": "C", "setting": "c's page", "ranked": False,
              "status": "failed: ServerFailed: exited"}
    text = peers_markdown(info, [good, dropped, failed])
    assert "| A | 4 | 100.0 [90.0–110.0] |" in text
    assert "| B | 4 |" in text and "no (11 of 12)" in text
    assert "| C |" in text and "failed: ServerFailed" in text
    assert "- B: frame_000002: no answer" in text
    assert ("Ranked by best images/s (every answer right): 1. A 100.0; not ranked: "
            "B (dropped: 1 of 12 images unanswered in a run); C (failed: ServerFailed: "
            "exited).") in text
    plot_peers(info, [good, dropped, failed], tmp_path / "peers.png")
    assert (tmp_path / "peers.png").stat().st_size > 10_000
