"""The report about people, on hand-made face rows with person ids: per-person summaries
computed once (first and last seen, seconds on screen, dominant overall and per second),
the window-mean smoothing with the raw means kept, the two people CSVs, summary.md's
sections, the terminal's blocks, and the timeline's palette and legend."""
from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from frame_infer.cli import main
from frame_infer.client import records, report, timeline
from frame_infer.client.journal import PREDICTIONS_NAME
from frame_infer.errors import InputError

LABELS = ["happy", "neutral", "sad"]
STEP = 0.25  # 4 frames per second


def face_row(index, face, person, **probs):
    probabilities = {lb: probs.get(lb, 0.0) for lb in LABELS}
    label = max(probabilities, key=probabilities.get)
    return {"index": index, "id": f"frame_{index:06d}_face{face}", "timestamp": index * STEP,
            "face": face, "box": [10 + 100 * face, 10, 50, 50], "person": person,
            "label": label, "score": probabilities[label], "probabilities": probabilities}


def rows() -> list[dict]:
    """Person 1 for 3 s: happy, except one sad frame in second 1 (a blip); person 2 from
    frame 4 to 9 (second 1 and half of 2), neutral; frame 10 has a faceless row, frame 11
    one error for person 2."""
    out = []
    for index in range(12):
        if index == 10:
            out.append({"index": 10, "id": "frame_000010", "timestamp": 2.5, "face": None,
                        "box": None})
            continue
        out.append(face_row(index, 0, 1, **({"sad": 0.9, "happy": 0.1} if index == 5
                                             else {"happy": 0.8, "neutral": 0.2})))
        if 4 <= index <= 9:
            out.append(face_row(index, 1, 2, neutral=0.7, sad=0.3))
        if index == 11:
            out.append({"index": 11, "id": "frame_000011_face1", "timestamp": 11 * STEP,
                        "face": 1, "box": [110, 10, 50, 50], "person": 2,
                        "error": {"code": "invalid_image", "message": "unreadable"}})
    return out


@pytest.fixture()
def out_dir(tmp_path):
    (tmp_path / PREDICTIONS_NAME).write_text("".join(json.dumps(r) + "\n" for r in rows()))
    return tmp_path


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_people_are_summarised_once_in_the_report(out_dir):
    value = records.read_report(out_dir)
    one, two = value.people
    assert (one.person, one.first_seen, one.last_seen, one.faces, one.errors) == \
        (1, 0.0, 2.75, 11, 0)
    assert one.seconds_on_screen == pytest.approx(11 * STEP)
    assert one.dominant == "happy"
    assert [(s.second, s.faces, s.dominant) for s in one.seconds] == [
        (0, 4, "happy"), (1, 4, "happy"), (2, 3, "happy")]
    # Second 1 of person 1: three happy frames and one sad one, person 2 not mixed in.
    assert one.seconds[1].mean["sad"] == pytest.approx(0.9 / 4)
    assert one.seconds[1].mean["neutral"] == pytest.approx(0.6 / 4)
    assert (two.person, two.first_seen, two.last_seen, two.faces, two.errors) == \
        (2, 1.0, 2.75, 7, 1)
    assert two.seconds_on_screen == pytest.approx(7 * STEP)
    assert [(s.second, s.faces, s.errors, s.dominant) for s in two.seconds] == [
        (1, 4, 0, "neutral"), (2, 3, 1, "neutral")]
    assert two.mean["neutral"] == pytest.approx(0.7) and one.seconds[0].smoothed is None
    # The whole-video seconds still average every face (as before people).
    assert value.seconds[1].faces == 8


def test_smoothing_is_a_window_mean_per_person_and_keeps_the_raw_means(out_dir):
    raw = records.read_report(out_dir)
    smooth = records.read_report(out_dir, smooth=1.0)
    assert smooth.smooth == 1.0
    one = smooth.people[0]
    # Frame 5 (t = 1.25) of person 1: the window t in [0.75, 1.75] holds frames 3..7,
    # one of them sad; the raw means are those of the unsmoothed report.
    assert [s.mean for s in one.seconds] == [s.mean for s in raw.people[0].seconds]
    expected = {1: (4 * 0.8 + 0.1) / 5}
    window = [face for face in smooth.predictions
              if face.item.person == 1 and 0.75 <= face.timestamp <= 1.75]
    assert len(window) == 5
    assert one.seconds[1].smoothed["happy"] != one.seconds[1].mean["happy"]
    smoothed_rows = records._smoothed(
        [p for p in smooth.predictions if p.item.person == 1], LABELS, 1.0)
    assert smoothed_rows[5]["happy"] == pytest.approx(expected[1])
    # Person 2's window never reaches person 1's frames.
    assert all(s.smoothed["happy"] == 0.0 for s in smooth.people[1].seconds)
    with pytest.raises(InputError, match="smooth"):
        records.build_report(raw.predictions, smooth=0)


def test_people_csvs_and_predictions_person_column(out_dir):
    paths = report.write_report(out_dir)
    assert list(paths.named_files())[-2:] == ["people_csv", "people_per_second_csv"]
    people = read_csv(paths.people_csv)
    assert [(r["person"], r["first_seen"], r["last_seen"], r["faces"], r["errors"],
             r["dominant"]) for r in people] == [("1", "0.0", "2.75", "11", "0", "happy"),
                                                 ("2", "1.0", "2.75", "7", "1", "neutral")]
    assert float(people[1]["seconds_on_screen"]) == pytest.approx(1.75)
    seconds = read_csv(paths.people_per_second_csv)
    assert list(seconds[0]) == ["person", "second", "faces", "errors", "dominant",
                                "mean_happy", "mean_neutral", "mean_sad"]
    assert [(r["person"], r["second"], r["dominant"]) for r in seconds] == [
        ("1", "0", "happy"), ("1", "1", "happy"), ("1", "2", "happy"),
        ("2", "1", "neutral"), ("2", "2", "neutral")]
    frames = read_csv(paths.predictions_csv)
    assert [r["person"] for r in frames if r["index"] == "4"] == ["1", "2"]
    assert [r["person"] for r in frames if r["index"] == "10"] == [""]  # no face

    smoothed = report.write_report(out_dir, smooth=1.0)
    seconds = read_csv(smoothed.people_per_second_csv)
    assert list(seconds[0])[-3:] == ["smoothed_happy", "smoothed_neutral", "smoothed_sad"]
    assert seconds[1]["mean_happy"] == read_csv(paths.people_per_second_csv)[1]["mean_happy"]


def test_summary_and_table_have_one_block_per_person(out_dir, capsys):
    paths = report.write_report(out_dir)
    md = paths.summary_md.read_text()
    assert "## People" in md
    assert "| 1 | 0.00 | 2.75 | 2.8 | 11 | happy |" in md
    assert "| 2 | 1.00 | 2.75 | 1.8 | 7 | neutral |" in md
    person_2 = md.split("### Person 2")[1]
    assert "| 1 | 4 | 0 | neutral | 0.700 |" in person_2
    assert "| 2 | 3 | 1 | neutral | 0.700 |" in person_2
    table = paths.report.table()
    assert table.startswith("person 1: 0.00–2.75 s, 2.8 s on screen, 11 faces, 0 errors; "
                            "dominant happy")
    blocks = table.split("\n\n")
    assert len(blocks) == 2 and blocks[1].startswith("person 2: 1.00–2.75 s")
    assert [line.split()[:4] for line in blocks[1].splitlines()[2:]] == [
        ["1", "4", "0", "neutral"], ["2", "3", "1", "neutral"]]
    assert main(["report", str(out_dir), "--smooth", "1"]) == 0
    printed = capsys.readouterr().out
    assert "dominant happy (smoothed over 1 s)" in printed
    assert "people.csv" in printed and "people_per_second.csv" in printed


def test_rows_without_person_ids_report_as_before(out_dir):
    plain = [{k: v for k, v in r.items() if k != "person"} for r in rows()]
    (out_dir / PREDICTIONS_NAME).write_text("".join(json.dumps(r) + "\n" for r in plain))
    paths = report.write_report(out_dir)
    assert paths.report.people == () and paths.people_csv is None
    assert not (out_dir / "people.csv").exists()
    assert paths.report.table() == records.format_per_second(paths.report.seconds)
    assert "person" not in read_csv(paths.predictions_csv)[0]
    assert "## People" not in paths.summary_md.read_text()


def test_the_palette_is_by_name_and_happy_is_not_red():
    assert timeline.label_colour("happy") == timeline.label_colour("Happiness")
    assert timeline.label_colour("sad") == timeline.label_colour("sadness")
    red, happy = timeline.label_colour("angry"), timeline.label_colour("happy")
    r, g, b = (int(happy[i:i + 2], 16) for i in (1, 3, 5))
    assert happy != red and g > 150 and r > 200  # a warm yellow
    unknown = timeline.label_colour("bewildered")
    assert unknown == timeline.label_colour("bewildered") in timeline.OTHER_COLOURS
    assert len({timeline.label_colour(lb) for lb in
                ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}) == 7


def test_the_people_legend_lists_only_what_is_drawn(out_dir):
    from matplotlib.figure import Figure

    value = records.read_report(out_dir)
    axes = Figure().subplots(4, 1)
    handles = timeline._people_lanes(axes, value, 3.0)
    # happy, neutral and sad each reach 0.05 for someone; person 2 is absent in second 0.
    assert [h.get_label() for h in handles] == ["happy", "neutral", "sad", "not on screen"]
    lines = axes[1].get_lines()  # person 1: happy, neutral, sad (the blip)
    assert [line.get_color() for line in lines] == [timeline.label_colour(lb)
                                                    for lb in LABELS]
    path = timeline.plot_timeline(out_dir / "t.png", value)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.height > 450  # two lanes and a track


def test_the_people_table_ends_with_the_seconds_without_a_face(out_dir):
    extra = [{"index": i, "id": f"frame_{i:06d}", "timestamp": i * STEP, "face": None,
              "box": None} for i in range(12, 24) if not 16 <= i < 20]
    with open(out_dir / PREDICTIONS_NAME, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in extra))
    (out_dir / PREDICTIONS_NAME).write_text(
        (out_dir / PREDICTIONS_NAME).read_text()
        + json.dumps(face_row(16, 0, 1, happy=1.0)) + "\n")
    table = records.read_report(out_dir).table()
    assert table.endswith("\n\nno face in 2 s: seconds 3, 5")
