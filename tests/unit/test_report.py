"""`report` on hand-made predictions: CSVs, per-second math, plot, summary, S3 copy."""
from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from frame_infer.cli import main
from frame_infer.client import report

from ..helpers.rows import LABELS, ROWS, write_sample_predictions


@pytest.fixture()
def out_dir(tmp_path):
    return write_sample_predictions(tmp_path)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predictions_csv_keeps_every_frame_in_order(out_dir):
    paths = report.write_report(out_dir)
    rows = read_csv(paths.predictions_csv)
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3, 4, 5]
    assert list(rows[0])[:6] == ["index", "timestamp", "label", "score", "error_code",
                                 "error_message"]
    assert list(rows[0])[6:] == [f"p_{lb}" for lb in LABELS]
    assert rows[1]["label"] == "happiness" and float(rows[1]["p_happiness"]) == 0.8
    errors = {int(r["index"]): r for r in rows if r["error_code"]}
    assert sorted(errors) == [2, 4, 5]
    assert errors[4]["error_code"] == "image_too_large"
    assert errors[4]["error_message"] == "frame 4 could not be read"
    assert errors[2]["label"] == "" and errors[2]["p_neutral"] == ""


def test_per_second_aggregation(out_dir):
    paths = report.write_report(out_dir)
    rows = read_csv(paths.per_second_csv)
    assert [(r["second"], r["frames"], r["errors"], r["dominant"]) for r in rows] == [
        ("0", "3", "1", "happiness"), ("1", "2", "1", "neutral"), ("2", "1", "1", "")]
    # Second 0: the two predicted frames, (0.6 + 0.2) / 2 and (0.4 + 0.8) / 2.
    assert float(rows[0]["mean_neutral"]) == pytest.approx(0.4)
    assert float(rows[0]["mean_happiness"]) == pytest.approx(0.6)
    assert float(rows[0]["mean_fear"]) == 0.0
    assert float(rows[1]["mean_neutral"]) == pytest.approx(1.0)
    assert rows[2]["mean_neutral"] == ""  # every frame failed: no mean, not a zero

    table = report.per_second_table(out_dir).splitlines()
    assert table[0].split()[:5] == ["second", "frames", "errors", "dominant", "neutral"]
    assert table[1].split()[:6] == ["0", "3", "1", "happiness", "0.400", "0.600"]
    assert table[3].split()[:5] == ["2", "1", "1", "-", "-"]


def test_per_second_boundaries_at_30fps():
    preds = [report.Prediction(k, k / 30, f"frame_{k:06d}", "neutral", 1.0, {"neutral": 1.0})
             for k in range(90)]
    assert [(s.second, s.frames) for s in report.per_second(preds)] == [(0, 30), (1, 30),
                                                                          (2, 30)]


def test_plot_and_markdown_summary(out_dir):
    paths = report.write_report(out_dir)
    assert paths.timeline_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(paths.timeline_png) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 200
        image.verify()
    md = paths.summary_md.read_text()
    assert "6 frames" in md and "3 predicted, 3 errors" in md
    assert "| neutral | 2 | 66.7% |" in md and "| happiness | 1 | 33.3% |" in md
    assert "| fear | 0 | 0.0% |" in md
    assert "| invalid_image | 2 |" in md and "| image_too_large | 1 |" in md


def test_bad_s3_uri_fails_before_any_work(out_dir):
    with pytest.raises(report.ReportError, match="s3://bucket/prefix"):
        report.write_report(out_dir, s3_uri="reports/runs")
    assert not (out_dir / "predictions.csv").exists()


def test_missing_predictions_names_the_command_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="frame-infer predict") as info:
        report.write_report(tmp_path)
    assert "predictions.jsonl" in str(info.value)


def test_malformed_line_is_located(tmp_path):
    (tmp_path / "predictions.jsonl").write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(report.ReportError, match=r"predictions.jsonl:2"):
        report.write_report(tmp_path)


def test_report_command_prints_the_table(out_dir, capsys):
    assert main(["report", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("second frames errors dominant")
    assert "timeline.png" in out
