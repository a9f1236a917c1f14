"""The annotated video (``frame_infer.client.annotate``) against real PyAV and OpenCV: a
real-photo video (``make_face_video``) and hand-written rows at 10 samples a second, the
output decoded again. The rows are hand-written so that where each box must be is known;
``tests/integration/test_annotate_run.py`` does the same after a real ``run --faces``."""
from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from frame_infer.cli import main
from frame_infer.client import timeline
from frame_infer.client.annotate import (ERROR_COLOUR, annotate_video,
                                         box_thickness, caption, label_colour,
                                         recorded_source, sample_picker)
from frame_infer.client.records import build_report, read_predictions, read_report
from frame_infer.client.extract import extract_frames
from frame_infer.client.samples import make_face_video, make_sample_video, make_vfr_video
from frame_infer.client.source_record import wanted, write_source
from frame_infer.errors import InputError, NotFoundError, VideoError

from ..helpers.face_rows import ERROR_SAMPLE, box_of, face_row, face_rows, write_rows
from ..helpers.videos import distance, frames_bgr, video_facts

SIZE, FPS = (320, 240), 30


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("annotate") / "clip.mp4", seconds_each=1,
                           no_face_seconds=1, fps=FPS, size=SIZE)


def border_points(box) -> list[tuple[int, int]]:
    """(x, y) on the middle of the box's left, right and bottom lines."""
    x, y, w, h = box
    return [(x, y + h // 2), (x + w - 1, y + h // 2), (x + w // 2, y + h - 1)]


def test_the_video_keeps_the_sources_frames_rate_size_and_duration(source, tmp_path):
    write_rows(tmp_path / "out", face_rows())
    result = annotate_video(read_report(tmp_path / "out"), source, tmp_path / "a.mp4")
    facts, original = video_facts(result.path), video_facts(source)
    assert facts.frames == original.frames == result.frames == 90
    assert (facts.width, facts.height) == SIZE and facts.fps == FPS
    assert facts.seconds == pytest.approx(original.seconds, abs=0.05)
    assert result.seconds == pytest.approx(3.0) and result.samples == 30
    assert not (tmp_path / "a.partial.mp4").exists()


def test_boxes_are_drawn_where_the_rows_say_and_held_until_the_next_sample(source, tmp_path):
    write_rows(tmp_path / "out", face_rows())
    out = annotate_video(read_report(tmp_path / "out"), source, tmp_path / "a.mp4").path
    # frame f (30 fps) shows sample f // 3 (10 samples/s): 4 -> 1 (held from frame 3),
    # 14 -> 4, 36 -> 12 (the error row), 45 -> 15, 75 -> 25 (no face)
    wanted = {0: 0, 4: 1, 14: 4, 36: 12, 45: 15, 75: 25}
    drawn, plain = frames_bgr(out, set(wanted)), frames_bgr(source, set(wanted))
    for f, k in wanted.items():
        if k >= 20:  # a frame without a face: nothing drawn anywhere
            assert np.abs(drawn[f].astype(int) - plain[f]).mean() < 3
            continue
        colour = (ERROR_COLOUR if k == ERROR_SAMPLE else
                  label_colour("happy") if k < 10 else label_colour("sad"))
        for x, y in border_points(box_of(k)):
            near, before = distance(drawn[f][y, x], colour), distance(plain[f][y, x], colour)
            assert near < 50 and before - near > 25, (f, k, x, y, near, before)
        x, y, w, h = box_of(k)  # inside the box the picture is untouched
        inside = (slice(y + 10, y + h - 10), slice(x + 10, x + w - 10))
        assert np.abs(drawn[f][inside].astype(int) - plain[f][inside]).mean() < 3
    # Frame 4 holds sample 1, not sample 0: nothing on sample 0's left line any more.
    x0, y0, _, h0 = box_of(0)
    assert distance(drawn[4][y0 + h0 // 2, x0], label_colour("happy")) > 60


def test_whole_frame_rows_get_their_label_in_the_corner_and_no_box(source, tmp_path):
    lines = [{"index": k, "id": f"frame_{k:06d}", "timestamp": k / 10, "label": "happy",
              "score": 0.9, "probabilities": {"happy": 0.9, "sad": 0.1}} for k in range(30)]
    write_rows(tmp_path / "out", lines)
    out = annotate_video(read_report(tmp_path / "out"), source, tmp_path / "a.mp4").path
    drawn, plain = frames_bgr(out, {20}), frames_bgr(source, {20})
    assert distance(drawn[20][16, 1], label_colour("happy")) < 50  # the caption's box
    below = (slice(40, None), slice(None))  # the rest of the frame is the source's
    assert np.abs(drawn[20][below].astype(int) - plain[20][below]).mean() < 3


def test_the_palette_is_by_emotion_and_happy_is_not_red():
    assert label_colour("happy") == label_colour("happiness") == \
        timeline.EMOTION_COLOURS["happy"]  # the timeline's palette, not a second one
    assert all(label_colour(lb) == timeline.label_colour(lb)
               for lb in [*timeline.EMOTION_COLOURS, "something else"])
    red = label_colour("angry")
    r, g, b = (int(label_colour("happy")[i:i + 2], 16) for i in (1, 3, 5))
    assert label_colour("happy") != red and g > 120 and r > 200  # a yellow
    assert label_colour("sad") != label_colour("happy")
    assert label_colour("something else") == label_colour("something else")
    assert box_thickness(1920, 1080) == 7 and box_thickness(640, 480) == 3


def test_report_video_with_source_and_its_json(source, tmp_path, capsys):
    write_rows(tmp_path / "out", face_rows())
    target = tmp_path / "annotated.mp4"
    assert main(["report", str(tmp_path / "out"), "--video", str(target), "--source",
                 str(source), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["annotated"] == {"path": str(target), "frames": 90, "seconds": 3.0,
                                     "width": SIZE[0], "height": SIZE[1], "fps": 30.0}
    assert video_facts(target).frames == 90
    assert (tmp_path / "out" / "timeline.png").exists()  # the report itself was written


def test_report_video_defaults_to_the_source_the_frames_folder_records(source, tmp_path):
    """``frames/source.json`` as ``extract`` writes it names the video; a file at that path
    that is no longer that video (another size or content) is not taken for it."""
    write_rows(tmp_path / "out", face_rows())
    frames = tmp_path / "out" / "frames"
    frames.mkdir()
    assert recorded_source(frames) is None
    copy = tmp_path / "clip.mp4"
    copy.write_bytes(source.read_bytes())
    write_source(frames, {**wanted(copy, 10, 90, None), "complete": True})
    assert recorded_source(frames) == copy.resolve()
    assert main(["report", str(tmp_path / "out"), "--video", str(tmp_path / "a.mp4")]) == 0
    assert video_facts(tmp_path / "a.mp4").frames == 90
    copy.write_bytes(source.read_bytes() + b"\0")  # replaced by another file since
    assert recorded_source(frames) is None


def test_report_video_without_a_source_fails_before_writing_anything(tmp_path, capsys):
    write_rows(tmp_path / "out", face_rows())
    assert main(["report", str(tmp_path / "out"), "--video", str(tmp_path / "a.mp4")]) == 2
    assert "--source VIDEO" in capsys.readouterr().err
    assert not (tmp_path / "out" / "timeline.png").exists()
    assert main(["report", str(tmp_path / "out"), "--video", str(tmp_path / "a.mp4"),
                 "--source", str(tmp_path / "missing.mp4")]) == 2
    assert "missing.mp4 not found" in capsys.readouterr().err


def test_the_source_itself_is_never_overwritten(source, tmp_path):
    size = source.stat().st_size
    with pytest.raises(InputError, match="is the source video"):
        annotate_video(build_report([]), source, source)
    assert source.stat().st_size == size
    with pytest.raises(NotFoundError):
        annotate_video(build_report([]), tmp_path / "none.mp4", tmp_path / "a.mp4")


def test_a_source_that_is_not_a_video_says_which_video_to_give(tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_bytes(b"this is a text file, not a video\n" * 20)
    with pytest.raises(VideoError, match="notes.mp4 is not a readable video .*; give the "
                       "video the frames were cut from"):
        annotate_video(build_report([]), notes, tmp_path / "a.mp4")
    assert not (tmp_path / "a.mp4").exists()


def test_the_caption_names_the_person_or_else_the_face(tmp_path):
    whole = {"index": 4, "id": "frame_000004", "timestamp": 0.4, "label": "happy",
             "score": 0.5, "probabilities": {"happy": 0.5, "sad": 0.5}}
    lines = [face_row(0, "happy", 7), face_row(1, "sad", None),
             face_row(2, "sad", 2, "invalid_image")]
    captions = [caption(p) for p in read_predictions(write_rows(tmp_path / "f", lines))]
    assert captions == ["person 7: happy 0.80", "face 0: sad 0.80",
                        "person 2: error invalid_image"]
    assert [caption(p) for p in read_predictions(write_rows(tmp_path / "w", [whole]))] == [
        "happy 0.50"]


@pytest.mark.parametrize("fps", [7, 30, 45])
def test_each_source_frame_shows_the_sample_extract_took_from_it(tmp_path, fps):
    """The real ``extract`` at a rate that does not divide the source's (7), the same (30)
    and faster (45): every source frame shows the latest sample taken from it, or, when
    none was, the latest one before it (held)."""
    video = make_sample_video(tmp_path / "v.mp4", seconds=2, fps=30, size=(160, 120))
    frames = extract_frames(video, tmp_path / "frames", fps=fps, progress=False)
    times = [Fraction(f.timestamp).limit_denominator(1_000_000) for f in frames]
    taken_from = [Fraction(f.extra["source_time"]).limit_denominator(1000) for f in frames]
    pick = sample_picker(times)
    for number in range(60):
        shown = pick(Fraction(number + 1, 30))
        start = Fraction(number, 30)
        own = [k for k, s in enumerate(taken_from) if s == start]
        assert shown == (own[-1] if own else max(k for k, s in enumerate(taken_from)
                                                 if s < start)), number


def test_a_variable_frame_rate_source_keeps_its_frame_times(tmp_path):
    stamps = [0.0, 0.05, 0.3, 0.35, 0.9, 1.0, 1.6]
    video = make_vfr_video(tmp_path / "v.mkv", stamps, size=(160, 120))
    lines = [{"index": k, "id": f"frame_{k:06d}", "timestamp": k / 10, "label": "happy",
              "score": 0.9, "probabilities": {"happy": 0.9}} for k in range(17)]
    out = annotate_video(read_predictions(write_rows(tmp_path / "out", lines)), video,
                         tmp_path / "a.mkv").path
    with av.open(str(out)) as container:
        decoded = [float(f.time) for f in container.decode(container.streams.video[0])]
    assert decoded == pytest.approx(stamps, abs=0.002)


def test_an_odd_sized_source_keeps_its_size(tmp_path):
    """4:2:0 video needs even sides; a 161 × 121 source (4:4:4) must still come out 161 × 121."""
    video = tmp_path / "odd.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 161, 121, "yuv444p"
        for number in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((121, 161, 3), 40 * number, np.uint8),
                                               format="rgb24")
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    lines = [face_row(k, "happy", 1) for k in range(5)]
    lines = [{**row, "box": [10, 10, 60, 60]} for row in lines]
    result = annotate_video(read_predictions(write_rows(tmp_path / "out", lines)), video,
                            tmp_path / "a.mp4")
    facts = video_facts(result.path)
    assert (facts.width, facts.height, facts.frames) == (161, 121, 5)
