"""`report` on hand-made predictions: the Report value, CSVs, per-second math, plot,
summary, the S3 arguments and `report --json`."""
from __future__ import annotations

import csv
import dataclasses
import json

import pytest
from PIL import Image

from frame_infer.client.items import Item
from frame_infer.cli import main
from frame_infer.client import records, report, timeline
from frame_infer.errors import InputError
from frame_infer.s3 import S3Location

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

    table = report.read_report(out_dir).table().splitlines()
    assert table[0].split()[:5] == ["second", "frames", "errors", "dominant", "neutral"]
    assert table[1].split()[:6] == ["0", "3", "1", "happiness", "0.400", "0.600"]
    assert table[3].split()[:5] == ["2", "1", "1", "-", "-"]


def test_per_second_boundaries_at_30fps():
    preds = [report.Prediction(Item(k, k / 30), "neutral", 1.0, {"neutral": 1.0})
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


def test_a_location_without_a_client_fails_before_any_work(out_dir):
    """No client is made in report.py: the job's own (its endpoint included) must be given."""
    with pytest.raises(report.ReportError, match="without an S3 client") as info:
        report.write_report(out_dir, S3Location("reports", "runs"))
    assert isinstance(info.value, InputError)  # the CLI maps it to a message
    assert not (out_dir / "predictions.csv").exists()
    with pytest.raises(report.ReportError, match="without an S3 client"):
        report.copy_to_s3([out_dir / "predictions.jsonl"], S3Location("reports", ""), None)
    with pytest.raises(TypeError, match="S3Location"):
        report.write_report(out_dir, "s3://reports/runs")


def test_copy_to_s3_uses_the_client_it_is_given(out_dir):
    class RecordingClient:  # what upload_file is asked to do, nothing sent
        def __init__(self):
            self.calls = []

        def upload_file(self, filename, bucket, key, ExtraArgs):
            self.calls.append((filename, bucket, key, ExtraArgs["ContentType"]))

    client = RecordingClient()
    paths = report.write_report(out_dir, S3Location("reports", "runs/clip"), client)
    assert paths.s3_uris == [f"s3://reports/runs/clip/{p.name}"
                             for p in [*paths.files(), out_dir / "predictions.jsonl"]]
    assert [c[1:] for c in client.calls[:3]] == [
        ("reports", "runs/clip/predictions.csv", "text/csv"),
        ("reports", "runs/clip/summary_per_second.csv", "text/csv"),
        ("reports", "runs/clip/timeline.png", "image/png")]


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


def test_report_value_is_built_once_from_the_rows(out_dir):
    value = records.read_report(out_dir)
    assert [p.index for p in value.predictions] == [0, 1, 2, 3, 4, 5]
    assert value.labels == tuple(LABELS)
    assert [(s.second, s.frames, s.errors, s.dominant) for s in value.seconds] == [
        (0, 3, 1, "happiness"), (1, 2, 1, "neutral"), (2, 1, 1, None)]
    assert (value.frames, value.faces, value.errors, value.faces_mode) == (6, 0, 3, False)
    assert value.table() == report.format_per_second(value.seconds)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.seconds = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.seconds[0].dominant = "fear"


def test_write_report_computes_per_second_once_and_hands_it_on(out_dir, monkeypatch):
    """One per_second for the CSVs, the plot and the caller's table (issue 18: it ran
    three times per job)."""
    calls, drawn = [], []
    counted = records.per_second

    def per_second(*args, **kwargs):
        calls.append(args)
        return counted(*args, **kwargs)

    def plot(path, value):
        drawn.append(value)
        return timeline.plot_timeline(path, value)

    monkeypatch.setattr(records, "per_second", per_second)
    monkeypatch.setattr(report, "plot_timeline", plot)
    paths = report.write_report(out_dir)
    assert len(calls) == 1
    assert drawn == [paths.report] and drawn[0] is paths.report
    seconds_csv = read_csv(paths.per_second_csv)
    assert [int(r["second"]) for r in seconds_csv] == [s.second for s in paths.report.seconds]
    assert paths.report.table().splitlines()[1].split()[:4] == ["0", "3", "1", "happiness"]
    assert len(calls) == 1  # printing the table computed nothing again


def test_the_plot_draws_only_what_it_is_given(tmp_path):
    """plot_timeline reads the seconds it is handed: here two that no rows back (the
    Report has no predictions at all), which a plot computing its own table would lose."""
    seconds = (records.SecondSummary(0, 2, 0, "a", {"a": 0.7, "b": 0.3}),
               records.SecondSummary(1, 2, 2, None, {"a": None, "b": None}))
    value = records.Report(predictions=(), labels=("a", "b"), seconds=seconds)
    path = timeline.plot_timeline(tmp_path / "t.png", value)
    with Image.open(path) as image:
        image.verify()
    assert image.format == "PNG"


def test_report_paths_carry_the_report_and_name_their_files(out_dir):
    paths = report.write_report(out_dir)
    assert list(paths.named_files()) == ["predictions_csv", "per_second_csv", "timeline_png",
                                         "summary_md"]
    assert paths.files() == list(paths.named_files().values())
    assert paths.report == records.read_report(out_dir)
    assert paths.s3_uris == []


def test_report_json_is_one_object_on_stdout_and_the_table_on_stderr(out_dir, capsys):
    assert main(["report", str(out_dir), "--json"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["command"] == "report" and doc["exit_code"] == 0
    assert doc["dir"] == str(out_dir) and doc["rows"] == 6 and doc["frames"] == 6
    assert doc["files"] == {"predictions_csv": str(out_dir / "predictions.csv"),
                            "per_second_csv": str(out_dir / "summary_per_second.csv"),
                            "timeline_png": str(out_dir / "timeline.png"),
                            "summary_md": str(out_dir / "summary.md")}
    assert doc["s3_uris"] == []
    first, _, last = doc["per_second"]
    assert first == {"second": 0, "frames": 3, "faces": None, "errors": 1,
                     "dominant": "happiness", "mean": {lb: pytest.approx(v) for lb, v in
                                                       {**dict.fromkeys(LABELS, 0.0),
                                                        "neutral": 0.4,
                                                        "happiness": 0.6}.items()}}
    assert last["dominant"] is None and set(last["mean"].values()) == {None}
    assert captured.err.splitlines()[0].startswith("second frames errors dominant")
    assert "wrote " in captured.err


def test_report_json_numbers_are_the_csvs(out_dir, capsys):
    main(["report", str(out_dir), "--json"])
    doc = json.loads(capsys.readouterr().out)
    for row, second in zip(read_csv(out_dir / "summary_per_second.csv"), doc["per_second"]):
        assert {lb: (float(row[f"mean_{lb}"]) if row[f"mean_{lb}"] else None)
                for lb in LABELS} == second["mean"]
