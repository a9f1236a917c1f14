"""`frame-infer report --json` as a program sees it: a real process, its stdout piped."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..helpers.rows import LABELS, write_sample_predictions

ROOT = Path(__file__).resolve().parents[2]


def test_report_json_stdout_is_one_json_line(tmp_path):
    out = write_sample_predictions(tmp_path)
    result = subprocess.run([sys.executable, "-m", "frame_infer.cli", "report", str(out),
                             "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    doc = json.loads(result.stdout)
    assert (doc["command"], doc["exit_code"], doc["rows"], doc["frames"]) == ("report", 0, 6, 6)
    assert [s["dominant"] for s in doc["per_second"]] == ["happiness", "neutral", None]
    assert list(doc["per_second"][0]["mean"]) == LABELS
    assert Path(doc["files"]["timeline_png"]).is_file()
    # everything for a person went to stderr: the table and the files written
    assert result.stderr.splitlines()[0].startswith("second frames errors dominant")
    assert "wrote " in result.stderr


def test_report_without_json_prints_for_people_on_stdout(tmp_path):
    out = write_sample_predictions(tmp_path)
    result = subprocess.run([sys.executable, "-m", "frame_infer.cli", "report", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("second frames errors dominant")
    assert "{" not in result.stdout
