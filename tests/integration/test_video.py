"""`extract` against real videos encoded and decoded by PyAV (FFmpeg)."""
from __future__ import annotations

import hashlib
import math

import av
import numpy as np
import pytest
from PIL import Image

from frame_infer.cli import main
from frame_infer.client import extract as video
from frame_infer.client.manifest import read_manifest

SIZE = (160, 120)  # small frames keep encoding and decoding well under a second


def source_numbers(folder, frames) -> list[int]:
    """The source frame number drawn into each extracted JPEG."""
    return [video.read_frame_number(Image.open(folder / f.file)) for f in frames]


def test_30fps_video_gives_one_frame_per_source_frame(tmp_path):
    src = video.make_sample_video(tmp_path / "a.mp4", seconds=2, fps=30, size=SIZE)
    out = tmp_path / "frames"
    frames = video.extract_frames(src, out, fps=30, progress=False)

    assert len(frames) == 60
    assert [f.index for f in frames] == list(range(60))
    for k, f in enumerate(frames):
        assert abs(f.timestamp - k / 30) < 1e-6
        assert f.file == f"frame_{k:06d}.jpg"
        data = (out / f.file).read_bytes()
        assert len(data) == f.size and hashlib.sha256(data).hexdigest() == f.sha256
    assert read_manifest(out) == frames
    assert sorted(p.name for p in out.glob("frame_*.jpg")) == [f.file for f in frames]
    assert source_numbers(out, frames) == list(range(60))


def test_25fps_sampled_at_30_by_time(tmp_path):
    src = video.make_sample_video(tmp_path / "b.mp4", seconds=2, fps=25, size=SIZE)
    frames = video.extract_frames(src, tmp_path / "f", fps=30, progress=False)

    assert len(frames) == 60  # duration 2 s * 30
    # Displayed at k/30: source frame floor(k * 25 / 30), so some are shown twice.
    expected = [math.floor(k * 25 / 30 + 1e-9) for k in range(60)]
    assert source_numbers(tmp_path / "f", frames) == expected
    assert expected[:8] == [0, 0, 1, 2, 3, 4, 5, 5]
    assert all(abs(f.extra["source_time"] - n / 25) < 1e-6 for f, n in zip(frames, expected))


def test_60fps_sampled_at_30_takes_every_other_frame(tmp_path):
    src = video.make_sample_video(tmp_path / "c.mp4", seconds=1, fps=60, size=SIZE,
                                  codec="mpeg4")
    frames = video.extract_frames(src, tmp_path / "f", fps=30, progress=False)
    assert len(frames) == 30
    assert source_numbers(tmp_path / "f", frames) == list(range(0, 60, 2))


def test_variable_frame_rate_uses_presentation_times(tmp_path):
    times = [0.0, 0.05, 0.3, 0.31, 0.5, 0.9, 1.0]
    src = video.make_vfr_video(tmp_path / "v.mkv", times, size=SIZE, nominal_fps=30)
    frames = video.extract_frames(src, tmp_path / "f", fps=30, progress=False)

    # The last frame lasts one nominal frame (1/30 s): t_k < 1.0333 gives k = 0..30.
    assert len(frames) == 31
    expected = [max(i for i, t in enumerate(times) if t <= k / 30 + 1e-9) for k in range(31)]
    assert source_numbers(tmp_path / "f", frames) == expected
    assert expected[9:11] == [2, 3]  # 0.3 and 0.31 fall into consecutive samples
    assert 2 not in expected[:9] and expected.count(2) == 1
    assert [f.timestamp for f in frames] == [k / 30 for k in range(31)]


def test_rerun_overwrites_and_removes_stale_frames(tmp_path):
    out = tmp_path / "f"
    long = video.make_sample_video(tmp_path / "long.mp4", seconds=2, fps=30, size=SIZE)
    short = video.make_sample_video(tmp_path / "short.mp4", seconds=1, fps=30, size=SIZE)
    assert len(video.extract_frames(long, out, progress=False)) == 60
    (out / "notes.txt").write_text("keep me")
    frames = video.extract_frames(short, out, fps=30, quality=70, progress=False)

    assert len(frames) == 30
    assert sorted(p.name for p in out.glob("frame_*.jpg")) == [f.file for f in frames]
    assert read_manifest(out) == frames
    assert (out / "notes.txt").exists()  # only frames are ours to delete


@pytest.mark.parametrize("content, expected", [
    (None, "not found"),
    (b"this is a text file, not a video\n" * 20, "not a readable video"),
    ("audio", "no video stream"),
])
def test_bad_input_is_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "input.mp4"
    if content == "audio":
        path = tmp_path / "input.wav"
        with av.open(str(path), "w", format="wav") as container:
            stream = container.add_stream("pcm_s16le", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                               layout="mono")
            frame.sample_rate, frame.pts = 8000, 0
            container.mux(stream.encode(frame))
            container.mux(stream.encode())
    elif content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(video.VideoError, match=expected) as info:
        video.extract_frames(path, out, progress=False)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert not out.exists()  # nothing touched for an unusable input


def test_extract_command_prints_a_summary(tmp_path, capsys):
    src = video.make_sample_video(tmp_path / "a.mp4", seconds=1, fps=30, size=SIZE)
    assert main(["extract", str(src), "--out", str(tmp_path / "f"), "--fps", "10"]) == 0
    line = capsys.readouterr().out.strip()
    assert "10 frames" in line and "1.00 s" in line and str(tmp_path / "f") in line
