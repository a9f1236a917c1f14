"""Face mode from the manifest on: one row per face keyed by (index, face), a frame
without a face gets one ``"face": null`` row and is never sent, exactly-once and resume
per row, and the report's face columns and "no face" seconds. A fake target, no server."""
from __future__ import annotations

import csv
import hashlib
import json

import pytest

from frame_infer.client.journal import Journal
from frame_infer.client.manifest import (MANIFEST_NAME, Frame, read_manifest,
                                         write_manifest)
from frame_infer.client.predict import predict
from frame_infer.client.report import per_second, read_predictions, write_report
from frame_infer.client.sources import local_frames
from frame_infer.errors import InputError

from ..helpers.frames import jpeg_frame, write_frames
from ..helpers.rows import read_rows
from ..helpers.targets import FakeTarget, ok, options

# frame index -> face boxes; 15 fps, so frames 0-14 are second 0 and 15-29 second 1
FACES = {0: [(10, 10, 20, 20), (40, 12, 18, 18)], 1: [], 2: [(12, 10, 20, 20)]}


def face_folder(folder, faces=FACES, fps=15.0):
    """A frames folder whose manifest lists face crops (small real JPEGs)."""
    (folder / "faces").mkdir(parents=True)
    frames = []
    for index, boxes in faces.items():
        data = jpeg_frame(index, (64, 48))
        (folder / f"frame_{index:06d}.jpg").write_bytes(data)
        entries = []
        for number, box in enumerate(boxes):
            crop = jpeg_frame(100 + index * 10 + number, (24, 24))
            name = f"faces/frame_{index:06d}_face{number}.jpg"
            (folder / name).write_bytes(crop)
            entries.append({"face": number, "box": list(box), "crop": [0, 0, 24],
                            "file": name, "size": len(crop),
                            "sha256": hashlib.sha256(crop).hexdigest()})
        frames.append(Frame(index=index, timestamp=index / fps, file=f"frame_{index:06d}.jpg",
                            size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            faces=entries))
    write_manifest(folder, frames)
    return folder


def test_whole_frame_manifest_lines_have_no_faces_key(tmp_path):
    write_frames(tmp_path, 2, size=(32, 24))
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert all("faces" not in json.loads(line) for line in lines)
    assert all(f.faces is None for f in read_manifest(tmp_path))


def test_face_manifest_round_trips_and_refuses_a_crop_outside_the_folder(tmp_path):
    folder = face_folder(tmp_path / "frames")
    frames = read_manifest(folder)
    assert [len(f.faces) for f in frames] == [2, 0, 1]
    assert frames[0].faces[1]["box"] == [40, 12, 18, 18]
    line = json.loads((folder / MANIFEST_NAME).read_text().splitlines()[0])
    line["faces"][0]["file"] = "../../etc/passwd"
    (folder / MANIFEST_NAME).write_text(json.dumps(line) + "\n")
    with pytest.raises(InputError, match="outside the frames folder"):
        read_manifest(folder)


def test_one_reference_per_face_and_one_per_faceless_frame(tmp_path):
    refs = local_frames(face_folder(tmp_path / "frames"))
    assert [(r.index, r.face, r.id, r.sendable) for r in refs] == [
        (0, 0, "frame_000000_face0", True), (0, 1, "frame_000000_face1", True),
        (1, None, "frame_000001", False), (2, 0, "frame_000002_face0", True)]
    assert refs[1].path.name == "frame_000000_face1.jpg" and refs[1].box == (40, 12, 18, 18)


def test_faces_are_sent_faceless_frames_are_not_each_gets_one_row(tmp_path):
    refs = local_frames(face_folder(tmp_path / "frames"))
    target = FakeTarget(default=ok())
    summary = predict(refs, target, tmp_path / "out", options(batch_size=8))
    assert sorted(i for call in target.calls for i in call.ids) == [
        "frame_000000_face0", "frame_000000_face1", "frame_000002_face0"]
    rows = read_rows(tmp_path / "out")
    assert [(r["index"], r["face"]) for r in rows] == [(0, 0), (0, 1), (1, None), (2, 0)]
    assert rows[1]["box"] == [40, 12, 18, 18] and rows[1]["id"] == "frame_000000_face1"
    assert "label" in rows[0] and "label" not in rows[2] and "error" not in rows[2]
    assert rows[2]["box"] is None
    assert (summary.frames, summary.predicted, summary.no_face, summary.errors) == (4, 3, 1, 0)
    assert summary.complete and summary.faces_mode


def test_resume_is_per_face_row(tmp_path):
    refs = local_frames(face_folder(tmp_path / "frames"))
    out = tmp_path / "out"
    first = predict(refs, FakeTarget(default=ok(drop=["frame_000000_face1"])), out, options())
    assert not first.complete and first.unfinished == 1
    journal = Journal(out)
    assert journal.done((0, 0)) and not journal.done((0, 1)) and journal.done((1, None))
    assert not journal.done(0)  # the whole-frame row of frame 0 is another key
    again = FakeTarget(default=ok())
    second = predict(refs, again, out, options())
    assert [i for call in again.calls for i in call.ids] == ["frame_000000_face1"]
    assert second.complete and second.skipped == 3
    assert [(r["index"], r["face"]) for r in read_rows(out)] == [
        (0, 0), (0, 1), (1, None), (2, 0)]


def test_a_whole_frame_journal_does_not_answer_for_faces(tmp_path):
    out = tmp_path / "out"
    Journal(out).record([{"index": 0, "id": "frame_000000", "timestamp": 0.0,
                          "label": "fear", "score": 1.0, "probabilities": {"fear": 1.0}}])
    target = FakeTarget(default=ok())
    predict(local_frames(face_folder(tmp_path / "frames")), target, out, options())
    assert "frame_000000_face0" in [i for call in target.calls for i in call.ids]
    assert len(read_rows(out)) == 4  # the old whole-frame row is not part of this run


def test_report_has_face_columns_and_no_face_seconds(tmp_path):
    faces = {0: [(10, 10, 20, 20)], 1: [(10, 10, 20, 20), (40, 12, 18, 18)],
             15: [], 16: []}
    out = tmp_path / "out"
    predict(local_frames(face_folder(tmp_path / "frames", faces)), FakeTarget(default=ok()), out,
            options())
    write_report(out)
    with open(out / "predictions.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:7] == ["index", "timestamp", "face", "box_x", "box_y", "box_w",
                                  "box_h"]
    assert [(r["index"], r["face"], r["box_x"]) for r in table] == [
        ("0", "0", "10"), ("1", "0", "10"), ("1", "1", "40"), ("15", "", ""), ("16", "", "")]
    assert table[3]["label"] == "" and table[3]["error_code"] == ""
    with open(out / "summary_per_second.csv") as f:
        seconds = list(csv.DictReader(f))
    assert [(s["second"], s["frames"], s["faces"], s["dominant"]) for s in seconds] == [
        ("0", "2", "3", "happiness"), ("1", "2", "0", "no face")]
    # The fake answers frame 0's face with LABELS[0] (neutral, 0.8) and frame 1's two
    # faces with LABELS[1] (happiness, 0.8): means are over faces, not frames, so
    # happiness wins (a mean over frames would tie).
    (zero, one) = per_second(read_predictions(out))
    assert zero.mean["happiness"] == pytest.approx((2 * 0.8 + 0.2 / 7) / 3, abs=1e-5)
    assert one.no_face and one.mean["neutral"] is None
    assert "2 frames without a face" in (out / "summary.md").read_text()


def test_the_detectors_score_reaches_the_row_and_the_csv(tmp_path):
    """A manifest face entry's ``score`` (BlazeFace's confidence) is each face row's
    ``detection_score`` and a column of predictions.csv; a score that is not a number
    in 0..1 is refused with the line that holds it."""
    folder = face_folder(tmp_path / "frames")
    frames = read_manifest(folder)
    for frame in frames:
        for entry in frame.faces:
            entry["score"] = 0.5 + 0.1 * entry["face"]
    write_manifest(folder, frames)
    out = tmp_path / "out"
    predict(local_frames(folder), FakeTarget(default=ok()), out, options())
    rows = read_rows(out)
    assert [r.get("detection_score") for r in rows] == [0.5, 0.6, None, 0.5]
    write_report(out)
    with open(out / "predictions.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["detection_score"] for r in table] == ["0.5", "0.6", "", "0.5"]
    frames[0].faces[0]["score"] = "high"
    write_manifest(folder, frames)
    with pytest.raises(InputError, match=r"manifest.jsonl:1: faces\[0\] score 'high'"):
        read_manifest(folder)
