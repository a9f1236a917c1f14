"""The client shrinks frames to the model's input by default (issue: end to end at the
engine's speed). The first answer names the input (``model.input``); from then on the
client runs the service's own decoding on each frame and sends the model-sized pixels
as lossless PNG. Against the real MMS: the predictions equal sending the frames as
stored within 1e-4, for a grayscale and an RGB model, EXIF-rotated and odd-sized frames
included, while the requests shrink by an order of magnitude."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from frame_infer.errors import ExitCode
from frame_infer.cli import main
from frame_infer.client.predict import predict
from frame_infer.client.sources import local_frames
from frame_infer.client.targets import make_target
from frame_infer.client.options import PredictOptions

from ..helpers.images import encode, jpeg
from ..helpers.mms import model_url
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration
JPEG_START, PNG_START = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


class Recording:
    """The real HTTP target, keeping every body it sends."""

    def __init__(self, target):
        self.target, self.bodies = target, []

    def send(self, body, content_type):
        self.bodies.append(body)
        return self.target.send(body, content_type)

    def __getattr__(self, name):
        return getattr(self.target, name)


def frames_folder(folder):
    """40 photos-like JPEG frames of mixed sizes, two with an EXIF orientation, one PNG."""
    folder.mkdir()
    for i in range(40):
        size = (640, 480) if i % 3 else (333, 517)
        (folder / f"f{i:03d}.jpg").write_bytes(jpeg(i, size=size))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = Image.open(folder / "f001.jpg")
    (folder / "f001.jpg").write_bytes(encode(rotated, "JPEG", exif=exif.tobytes(), quality=90))
    (folder / "f040.png").write_bytes(encode(Image.open(folder / "f002.jpg"), "PNG"))
    return folder


@pytest.mark.parametrize("model", ["ferplus", "rgb"])
def test_shrunk_frames_predict_as_full_frames_do(mms, tmp_path, model):
    frames = local_frames(frames_folder(tmp_path / "frames"))
    results = {}
    for mode, resize_to in (("full", None), ("auto", "auto")):
        target = Recording(make_target(model_url(mms, model), PredictOptions()))
        summary = predict(frames, target, tmp_path / mode, PredictOptions(
            batch_size=8, concurrency=3, progress=False, resize_to=resize_to))
        assert summary.complete, summary
        results[mode] = (read_rows(tmp_path / mode), target.bodies)
    (full_rows, full_bodies), (auto_rows, auto_bodies) = results["full"], results["auto"]
    assert [r["id"] for r in auto_rows] == [r["id"] for r in full_rows]
    for a, b in zip(full_rows, auto_rows):
        assert a["label"] == b["label"]
        assert np.allclose(list(a["probabilities"].values()),
                           list(b["probabilities"].values()), atol=1e-4), (a, b)
    # The first request goes as stored and alone; every later one carries PNGs only.
    assert JPEG_START in auto_bodies[0]
    assert all(JPEG_START not in body and PNG_START in body for body in auto_bodies[2:])
    assert sum(map(len, auto_bodies)) * 4 < sum(map(len, full_bodies))


def test_full_frames_and_model_input_flags(mms, tmp_path, capsys):
    folder = frames_folder(tmp_path / "frames")
    url = model_url(mms)
    assert main(["predict", str(folder), "--endpoint", url, "--out", str(tmp_path / "full"),
                 "--full-frames", "--no-progress"]) == 0
    assert main(["predict", str(folder), "--endpoint", url, "--out", str(tmp_path / "given"),
                 "--model-input", "64x64:L", "--no-progress"]) == 0
    for a, b in zip(read_rows(tmp_path / "full"), read_rows(tmp_path / "given")):
        assert np.allclose(list(a["probabilities"].values()),
                           list(b["probabilities"].values()), atol=1e-4)
    err = capsys.readouterr().err
    assert main(["predict", str(folder), "--endpoint", url, "--out", str(tmp_path / "bad"),
                 "--model-input", "64by64", "--no-progress"]) == ExitCode.USAGE
    assert "--model-input '64by64': write WIDTHxHEIGHT[:L|RGB], e.g. 64x64:L" in \
        capsys.readouterr().err, err
