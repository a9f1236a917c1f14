"""Person ids (``client.tracks``) on the two-person clip, cut with the real BlazeFace
detector (the verified registry wheel, on LiteRT) and tracked by the real norfair: two
ids, the same through the swap and through the short hide, written into the manifest
and read back into items; deterministic; a person gone too long comes back as a new id."""
from __future__ import annotations

import json
import time

import pytest

from frame_infer.client.extract import extract_frames
from frame_infer.client.faces import FaceOptions
from frame_infer.client.items import Kind, from_manifest
from frame_infer.client.manifest import manifest_path, read_manifest
from frame_infer.client.samples import TwoPersonSchedule, make_two_person_video
from frame_infer.client.tracks import (FaceTracker, TrackOptions, appearance,
                                       appearance_distance)
from frame_infer.errors import InputError

from ..helpers.faces import blazeface_wheel

FPS = 10
SCHEDULE = TwoPersonSchedule()


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    blazeface_wheel()  # fails saying why when the registry cannot give the detector
    root = tmp_path_factory.mktemp("two-person")
    video = make_two_person_video(root / "two.mp4")
    started = time.perf_counter()
    extract_frames(video, root / "frames", fps=FPS, progress=False, faces=FaceOptions())
    print(f"extract --faces of {SCHEDULE.seconds:g} s at {FPS} fps: "
          f"{time.perf_counter() - started:.2f} s")
    return root / "frames"


def left_person(frame):
    return min(frame.faces, key=lambda entry: entry["box"][0])["person"]


def test_two_people_keep_their_ids_through_the_swap_and_the_hide(frames_dir):
    frames = read_manifest(frames_dir)
    assert len(frames) == SCHEDULE.seconds * FPS
    astronaut = left_person(frames[0])
    hopper = ({entry["person"] for entry in frames[0].faces} - {astronaut}).pop()
    assert {astronaut, hopper} == {1, 2}
    for frame in frames:
        t = frame.timestamp
        persons = [entry["person"] for entry in frame.faces]
        if SCHEDULE.hidden(t):
            assert persons == [astronaut], (t, persons)  # Hopper hidden, no new person
            continue
        assert sorted(persons) == [1, 2], (t, persons)
        if not SCHEDULE.swap <= t < SCHEDULE.swap + SCHEDULE.swap_seconds:
            # Before the swap the astronaut is on the left, after it on the right.
            expected = astronaut if SCHEDULE.astronaut_left(t) else hopper
            assert left_person(frame) == expected, t
    after = [f for f in frames if f.timestamp >= SCHEDULE.hide + SCHEDULE.hide_seconds]
    assert after and all(left_person(f) == hopper for f in after)  # back with her own id


def test_person_ids_go_into_the_items(frames_dir):
    frame = read_manifest(frames_dir)[0]
    items = from_manifest(frame, lambda file, key: {"path": frames_dir / file})
    assert [i.kind for i in items] == [Kind.FACE, Kind.FACE]
    assert [i.person for i in items] == [e["person"] for e in frame.faces]
    assert items[0].row()["person"] == frame.faces[0]["person"]


def crops_of(frames_dir, frames):
    return [([tuple(e["box"]) for e in f.faces],
             [(frames_dir / e["file"]).read_bytes() for e in f.faces]) for f in frames]


def test_tracking_is_deterministic_and_fast(frames_dir):
    frames = read_manifest(frames_dir)
    inputs = crops_of(frames_dir, frames)
    tracker = FaceTracker(FPS)
    started = time.perf_counter()
    again = [tracker.update(boxes, crops) for boxes, crops in inputs]
    per_frame = (time.perf_counter() - started) / len(inputs)
    assert again == [[e["person"] for e in f.faces] for f in frames]
    assert per_frame < 0.02, f"{per_frame * 1000:.1f} ms per frame"  # measured ~1 ms


def test_a_person_gone_longer_than_the_miss_limit_comes_back_as_a_new_id(frames_dir):
    frames = read_manifest(frames_dir)[:5]
    inputs = crops_of(frames_dir, frames)
    tracker = FaceTracker(FPS, TrackOptions(max_miss_seconds=0.5))
    first = [tracker.update(*step) for step in inputs[:4]][-1]  # seen 0.4 s
    for _ in range(3):  # 0.3 s without faces: within the limit
        tracker.update([], [])
    assert tracker.update(*inputs[4]) == first
    for _ in range(2 * FPS):  # 2 s without faces: forgotten
        tracker.update([], [])
    assert sorted(tracker.update(*inputs[0])) == [3, 4]


def test_a_cut_to_another_person_in_the_same_place_is_a_new_person(frames_dir):
    """Hopper's face where the astronaut's was (a cut, as in the one-person face video):
    near enough to join by position, too unlike to be her."""
    first = read_manifest(frames_dir)[0]
    astronaut, hopper = sorted(first.faces, key=lambda e: e["box"][0])
    crop = {name: (frames_dir / e["file"]).read_bytes()
            for name, e in (("astronaut", astronaut), ("hopper", hopper))}
    tracker = FaceTracker(FPS)
    for _ in range(5):
        assert tracker.update([tuple(astronaut["box"])], [crop["astronaut"]]) == [1]
    assert tracker.update([tuple(astronaut["box"])], [crop["hopper"]]) == [2]
    # Without the appearance gate the position alone would have kept id 1.
    loose = FaceTracker(FPS, TrackOptions(max_appearance=1.0, max_appearance_crowded=1.0))
    for _ in range(5):
        loose.update([tuple(astronaut["box"])], [crop["astronaut"]])
    assert loose.update([tuple(astronaut["box"])], [crop["hopper"]]) == [1]


def test_appearance_tells_the_two_people_apart(frames_dir):
    frames = read_manifest(frames_dir)
    looks = {}
    for frame in (frames[0], frames[-1]):
        for entry in frame.faces:
            looks.setdefault(entry["person"], []).append(
                appearance((frames_dir / entry["file"]).read_bytes()))
    same = [appearance_distance(*looks[p]) for p in looks]
    other = appearance_distance(looks[1][0], looks[2][0])
    assert max(same) < 0.1 < 0.2 < other, (same, other)


def test_the_manifest_refuses_a_person_that_is_not_an_id(frames_dir, tmp_path):
    lines = manifest_path(frames_dir).read_text().splitlines()
    for bad in (0, "1", True, 1.5):
        entry = json.loads(lines[0])
        entry["faces"][0]["person"] = bad
        folder = tmp_path / f"m{bad!r}"
        folder.mkdir()
        (folder / "manifest.jsonl").write_text(json.dumps(entry) + "\n")
        with pytest.raises(InputError, match="person"):
            read_manifest(folder)


@pytest.mark.parametrize("apart", [0.5, 0.0])
def test_people_walking_through_each_other_keep_their_ids(apart, tmp_path):
    """The swap walked half through (0.5) and right through (0.0) each other, Hopper in
    front: the astronaut's face is half covered, then hidden for a few frames; she comes
    out with her own id and no third person appears."""
    blazeface_wheel()
    schedule = TwoPersonSchedule(apart=apart)
    video = make_two_person_video(tmp_path / "cross.mp4", schedule)
    frames = extract_frames(video, tmp_path / "frames", fps=FPS, progress=False,
                            faces=FaceOptions())
    assert {e["person"] for f in frames for e in f.faces} == {1, 2}
    astronaut = left_person(frames[0])
    during = [f for f in frames if schedule.swap <= f.timestamp
              < schedule.swap + schedule.swap_seconds]
    assert any(len(f.faces) == 1 for f in during) or apart > 0  # someone was hidden
    for frame in frames:
        if len(frame.faces) == 2 and frame not in during:
            expected = astronaut if schedule.astronaut_left(frame.timestamp) else 3 - astronaut
            assert left_person(frame) == expected, frame.timestamp
