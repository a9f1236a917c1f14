"""The results as a pandas DataFrame (``frame_infer.client.dataframe``), read from output
folders written by hand, and compared row by row with ``predictions.jsonl`` and the
report's ``predictions.csv``."""
from __future__ import annotations

import csv
import json
import math
import sys

import pytest

from frame_infer.client.dataframe import (FIXED_COLUMNS, PandasMissingError, load_results,
                                          predictions_frame)
from frame_infer.client.report import write_report
from frame_infer.errors import FrameInferError, NotFoundError

from ..helpers.face_rows import face_rows, write_rows
from ..helpers.rows import LABELS, ROWS, read_rows, write_sample_predictions

pd = pytest.importorskip("pandas", reason="the notebook extra (make venv installs it)")


def missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def test_face_rows_round_trip_against_the_jsonl(tmp_path):
    write_rows(tmp_path, face_rows())
    frame = load_results(tmp_path)
    labels = list(json.loads((tmp_path / "predictions.jsonl").read_text().splitlines()[0])
                  ["probabilities"])
    assert list(frame.columns) == [c for c in FIXED_COLUMNS if c != "file"] + labels
    assert len(frame) == len(face_rows())
    by_key = {(r["index"], r["face"]): r for r in read_rows(tmp_path)}
    for record in frame.to_dict("records"):
        face = None if missing(record["face"]) else record["face"]
        row = by_key.pop((record["index"], face))
        assert record["time"] == row["timestamp"] and record["id"] == row["id"]
        assert (None if missing(record["person"]) else record["person"]) == row.get("person")
        box = row["box"]
        assert [None if missing(record[c]) else record[c]
                for c in ("box_x", "box_y", "box_w", "box_h")] == (box or [None] * 4)
        if "error" in row:
            assert record["error_code"] == row["error"]["code"] and missing(record["label"])
            assert all(missing(record[lb]) for lb in labels)
        elif "label" in row:
            assert (record["label"], record["score"]) == (row["label"], row["score"])
            assert {lb: record[lb] for lb in labels} == row["probabilities"]
        else:  # a frame without a face
            assert missing(record["label"]) and missing(record["error_code"])
    assert not by_key  # every row of the file is in the table
    assert str(frame["person"].dtype) == "Int64" and str(frame["happy"].dtype) == "float64"
    # what a notebook does with it: who felt what
    assert frame.groupby("person")["label"].agg(lambda s: s.mode()[0]).to_dict() == {
        1: "happy", 2: "sad"}


def test_whole_frame_rows_match_the_reports_csv_row_by_row(tmp_path):
    write_sample_predictions(tmp_path)
    write_report(tmp_path)
    frame = load_results(tmp_path)
    with open(tmp_path / "predictions.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(frame) == len(table) == len(ROWS)
    assert frame["face"].isna().all() and frame["person"].isna().all()
    for record, line in zip(frame.to_dict("records"), table):
        assert record["index"] == int(line["index"])
        assert record["time"] == float(line["timestamp"])
        assert line["label"] == ("" if missing(record["label"]) else record["label"])
        assert (line["error_code"] or None) == (None if missing(record["error_code"])
                                                else record["error_code"])
        for lb in LABELS:
            cell = line[f"p_{lb}"]
            assert missing(record[lb]) if cell == "" else record[lb] == float(cell)


def test_a_label_named_like_a_column_gets_a_prefix(tmp_path):
    row = {"index": 0, "id": "frame_000000", "timestamp": 0.0, "label": "score",
           "score": 0.7, "probabilities": {"score": 0.7, "happy": 0.3}}
    write_rows(tmp_path, [row])
    frame = load_results(tmp_path)
    assert list(frame.columns[-2:]) == ["p_score", "happy"]
    assert frame.loc[0, "p_score"] == 0.7 and frame.loc[0, "score"] == 0.7


def test_an_empty_list_of_predictions_is_an_empty_table():
    frame = predictions_frame([])
    assert len(frame) == 0 and "time" in frame.columns


def test_without_pandas_the_message_names_the_extra(tmp_path, monkeypatch):
    write_sample_predictions(tmp_path)
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    with pytest.raises(PandasMissingError) as caught:
        load_results(tmp_path)
    assert isinstance(caught.value, FrameInferError) and isinstance(caught.value, ImportError)
    assert "pip install 'frame-infer[notebook]'" in str(caught.value)
    assert int(caught.value.exit_code) == 5


def test_a_folder_without_results_says_so(tmp_path):
    with pytest.raises(NotFoundError, match="predictions.jsonl"):
        load_results(tmp_path)
