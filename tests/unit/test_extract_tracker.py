"""Extraction with faces while the tracker is still being built (``extract._with_faces``,
``LOADING_LOOKAHEAD``): detection goes on meanwhile, frames still come out in order with
their person ids, the look-ahead stays bounded, and a tracker that cannot be built stops
the extraction with its own error before any frame is written."""
from __future__ import annotations

import threading

import pytest

from frame_infer.client import extract, tracks
from frame_infer.client.extract import LOADING_LOOKAHEAD, extract_frames
from frame_infer.client.faces import FaceOptions
from frame_infer.client.samples import make_face_video

from ..helpers.faces import blazeface_wheel

FPS = 10


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    blazeface_wheel()
    return make_face_video(tmp_path_factory.mktemp("tracker-video") / "faces.mp4",
                           seconds_each=2, no_face_seconds=1, fps=FPS)


def test_frames_are_detected_while_the_tracker_loads(video, tmp_path, monkeypatch):
    """The tracker is held back until the pool has detected more frames than the usual
    look-ahead (2 per thread): without the overlap it would never be released and the
    extraction would wait forever (the wait is bounded, so the test fails instead)."""
    detected, enough, emitted = [], threading.Event(), []
    real_detect = extract._encode_and_detect
    threads = FaceOptions(workers=2).threads

    def counting(*args):
        result = real_detect(*args)
        detected.append(1)
        if len(detected) >= 3 * threads:
            enough.set()
        return result

    class SlowTracker(tracks.FaceTracker):
        def __init__(self, fps):
            assert enough.wait(60), "no detection ran while the tracker was loading"
            self.detected_before = len(detected)
            super().__init__(fps)

    monkeypatch.setattr(extract, "_encode_and_detect", counting)
    monkeypatch.setattr(tracks, "FaceTracker", SlowTracker)

    def on_frame(frame):
        emitted.append((frame.index, len(detected)))

    frames = extract_frames(video, tmp_path / "frames", fps=FPS, progress=False,
                            on_frame=on_frame, faces=FaceOptions(workers=2))
    assert [f.index for f in frames] == list(range(len(frames))) == [i for i, _ in emitted]
    assert len(frames) == 5 * FPS
    # the first frame went out only once the tracker existed, after > 2 per thread
    assert emitted[0][1] >= 3 * threads
    # and never more than the loading look-ahead ahead of what was emitted
    assert all(count - index <= LOADING_LOOKAHEAD + 2 * threads + 1
               for index, count in emitted)
    persons = [face["person"] for f in frames for face in f.faces]
    assert len(persons) >= 3 * FPS and set(persons) <= {1, 2}
    assert not [f for f in frames[-FPS // 2:] if f.faces]  # the face-free second


def test_a_tracker_that_cannot_be_built_stops_the_extraction(video, tmp_path, monkeypatch):
    class Missing(tracks.FaceTracker):
        def __init__(self, fps):
            raise ModuleNotFoundError("person tracking needs norfair", name="norfair")

    monkeypatch.setattr(tracks, "FaceTracker", Missing)
    emitted = []
    with pytest.raises(ModuleNotFoundError, match="norfair"):
        extract_frames(video, tmp_path / "frames", fps=FPS, progress=False,
                       on_frame=emitted.append, faces=FaceOptions())
    assert emitted == []
    assert not list((tmp_path / "frames").glob("frame_*.jpg"))


def test_the_loading_look_ahead_is_bounded_by_frames_and_bytes():
    from types import SimpleNamespace

    from frame_infer.client.extract import LOADING_LOOKAHEAD_BYTES, _loading_lookahead

    def ahead(width, height):
        return _loading_lookahead(SimpleNamespace(width=width, height=height), 2)

    assert ahead(640, 480) == LOADING_LOOKAHEAD == 300
    assert ahead(3840, 2160) == 16  # 16 frames of ~4 MB at half a byte a pixel: 64 MiB
    assert ahead(3840, 2160) * 3840 * 2160 // 2 <= LOADING_LOOKAHEAD_BYTES
    assert ahead(20000, 20000) == 4  # never below the usual 2 per thread
