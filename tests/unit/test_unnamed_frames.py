"""A folder of images without a manifest: the rows keep each image's file name (``file``),
the CSV shows it, and a rerun after the folder changed refuses rather than mixing results."""
from __future__ import annotations

import csv

import pytest

from frame_infer.client.predict import predict
from frame_infer.client.report import write_report
from frame_infer.client.sources import local_frames
from frame_infer.errors import InputError

from ..helpers.images import png
from ..helpers.rows import read_rows
from ..helpers.targets import FakeTarget, ok, options

NAMES = ["b.png", "a.jpg", "holiday 3.png"]


@pytest.fixture()
def folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed, name in enumerate(NAMES):
        (folder / name).write_bytes(png(seed))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_rows_keep_the_file_names_in_name_order(folder, tmp_path):
    target = FakeTarget()
    summary = predict(local_frames(folder, fps=1.0), target, tmp_path / "out", options())
    assert summary.predicted == 3
    rows = read_rows(tmp_path / "out")
    assert [(r["index"], r["id"], r["file"]) for r in rows] == [
        (0, "frame_000000", "a.jpg"), (1, "frame_000001", "b.png"),
        (2, "frame_000002", "holiday 3.png")]
    assert [r["timestamp"] for r in rows] == [0.0, 1.0, 2.0]
    assert target.calls[0].ids == ["frame_000000", "frame_000001", "frame_000002"]
    with open(write_report(tmp_path / "out").predictions_csv) as f:
        table = list(csv.DictReader(f))
    assert [(t["index"], t["file"]) for t in table] == [("0", "a.jpg"), ("1", "b.png"),
                                                        ("2", "holiday 3.png")]
    assert list(table[0])[:3] == ["index", "timestamp", "file"]


def test_a_rerun_resumes_by_index_and_refuses_a_changed_folder(folder, tmp_path):
    out = tmp_path / "out"
    predict(local_frames(folder), FakeTarget(default=ok(drop={"frame_000002"})), out,
            options())
    again = FakeTarget()
    summary = predict(local_frames(folder), again, out, options())
    assert [c.ids for c in again.calls] == [["frame_000002"]]  # only the missing one
    assert summary.unfinished == 0 and read_rows(out)[2]["file"] == "holiday 3.png"
    (folder / "0-new.png").write_bytes(png(9))  # sorts first: every index moves
    untouched = FakeTarget()
    with pytest.raises(InputError) as raised:
        predict(local_frames(folder), untouched, out, options())
    assert str(raised.value) == (
        f"the frames changed since the last run into {out}: frame_000000 was a.jpg, it is "
        "now 0-new.png; predict into a new --out folder (or put the images back as they "
        "were)")
    assert not untouched.calls


def test_frames_with_a_manifest_have_no_file_field(tmp_path):
    from ..helpers.frames import write_frames

    write_frames(tmp_path / "frames", 2, size=(32, 24))
    assert [f.row() for f in local_frames(tmp_path / "frames")] == [
        {"index": 0, "id": "frame_000000", "timestamp": 0.0},
        {"index": 1, "id": "frame_000001", "timestamp": 1 / 30}]
