"""Face detection and cropping (``client.faces``) on the two real photographs: one face
each where a person sees it, none on a plain background, boxes in the frame's own pixels,
and crops square with the documented margin, edge pixels repeated outside the frame.
Each runs with both detectors (BlazeFace, the default, and the Haar cascade); the exact
crop arithmetic is pinned to ``detector="haar"`` (BlazeFace's is in test_blazeface.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from frame_infer.client.faces import FaceDetector, FaceOptions
from frame_infer.errors import InputError

from ..helpers.faces import DOWNLOADS, faces


def in_frame(photo: Image.Image, size=(640, 480), height=400) -> tuple[np.ndarray, tuple]:
    """``photo`` scaled to ``height`` px, centred on grey; and where it went (x, y, scale)."""
    scale = height / photo.height
    placed = photo.resize((round(photo.width * scale), height), Image.BILINEAR)
    canvas = Image.new("RGB", size, (90, 90, 90))
    x, y = (size[0] - placed.width) // 2, (size[1] - height) // 2
    canvas.paste(placed, (x, y))
    return np.asarray(canvas), (x, y, scale)


def overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="module", params=["blazeface", "haar"])
def detector(request):
    return FaceDetector(FaceOptions(detector=request.param), cache=DOWNLOADS)


@pytest.mark.parametrize("face", faces(), ids=lambda f: f.name)
def test_one_face_per_photo_where_the_hand_picked_box_is(detector, face):
    frame, (x, y, scale) = in_frame(face.photo())
    (found,) = detector.detect(frame)
    bx, by, side = face.box
    expected = (x + bx * scale, y + by * scale, side * scale, side * scale)
    assert overlap(found.box, expected) > 0.5, (found, expected)
    if detector.options.detector == "haar":
        assert found.score is None and found.keypoints == ()
    else:
        assert 0.5 <= found.score <= 1 and len(found.keypoints) == 6


def test_boxes_are_in_the_frames_own_pixels(detector):
    """Detection runs on a smaller copy (Haar: 320 wide; BlazeFace: 192x192); the box is
    scaled back to the frame."""
    small, _ = in_frame(faces()[0].photo(), size=(640, 480), height=400)
    large = np.asarray(Image.fromarray(small).resize((1280, 960), Image.BILINEAR))
    (a,), (b,) = detector.detect(small), detector.detect(large)
    a, b = a.box, b.box
    assert all(abs(2 * u - v) <= 0.06 * b[2] for u, v in zip(a, b)), (a, b)
    assert b[2] > 250  # not the smaller copy's pixels


def test_no_face_on_a_plain_background(detector):
    xx = np.linspace(0, 1, 640)[None, :, None]
    yy = np.linspace(0, 1, 480)[:, None, None]
    frame = (40 + 120 * xx * np.ones((480, 640, 3)) + 60 * yy).astype(np.uint8)
    assert detector.detect(frame) == [] and detector.faces(frame) == []


def test_crop_is_square_with_the_margin_around_the_box_centre():
    detector = FaceDetector(FaceOptions(margin=0.1, detector="haar"))
    assert detector.square((100, 50, 100, 80)) == (90, 30, 120)  # 100 * 1.2, centre kept
    haar = FaceDetector(FaceOptions(margin=0, detector="haar"))
    assert haar.square((10, 10, 40, 40)) == (10, 10, 40)


def test_crop_repeats_the_edge_outside_the_frame():
    detector = FaceDetector(FaceOptions(detector="haar"))
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    cut = detector.cut(frame, (-2, -1, 4))
    assert cut.shape == (4, 4, 3)
    assert (cut[0, 0] == frame[0, 0]).all() and (cut[1, 2] == frame[0, 0]).all()
    assert (cut[3, 3] == frame[2, 1]).all()


def test_faces_gives_jpeg_crops_of_the_squared_box(detector):
    frame, _ = in_frame(faces()[1].photo())
    (crop,) = detector.faces(frame)
    x, y, side = crop.crop
    assert (x, y, side) == detector.square(crop.box)
    assert (crop.score is None) == (detector.options.detector == "haar")
    with Image.open(io.BytesIO(crop.data)) as img:
        assert img.format == "JPEG" and img.size == (side, side)
    assert len(crop.data) < 40_000  # a few KB, not a frame


@pytest.mark.parametrize("bad", [dict(margin=-0.1), dict(detect_width=10),
                                 dict(scale_factor=1.0), dict(workers=-1), dict(quality=0),
                                 dict(detector="yunet"), dict(score_threshold=0),
                                 dict(score_threshold=1), dict(score_threshold=1.5),
                                 dict(score_threshold="0.5"), dict(score_threshold=True),
                                 dict(min_face=4), dict(max_tiles=-1),
                                 dict(max_tiles=2.5)])
def test_bad_options_are_refused(bad):
    with pytest.raises(InputError, match="invalid face options"):
        FaceOptions(**bad)
