"""The whole-frame pass's two speed choices against the old way, side by side, on
``faces_accuracy``'s 640×480 sets built with ten other seeds (960 faces) and its
face-free photographs at 640×480 and 854×480:

- ``fit``: the input fitted to the frame (160×192 for 640×480) against 192×192;
- ``resampling``: bilinear letterboxing (``LINEAR_FROM = 0.25``) against area averaging;
- ``second look``: candidates below the whole-frame pass's reach checked by a second look
  (``WHOLE_FRAME_LOOK = 1``) against kept as found.

    .venv/bin/python -m benchmarks.faces_fit

Prints, per variant: faces found, false detections on those frames, false detections on
face-free frames, and the faces only one variant of each pair found (benchmarks/NOTES.md,
2026-12-03 evening, has a run).
"""
from __future__ import annotations

import sys

import numpy as np

from frame_infer.client import blazeface
from frame_infer.client.faces import FaceDetector, FaceOptions

from . import faces_accuracy as fa


def frames(material) -> list:
    out = []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        for transform in (None, fa.rotated, fa.squeezed, fa.sunglasses):
            out += fa.single_frames(material, rng, transform)
    return out


def compare(detector, frames_, face_free, variants) -> str:
    """``variants``: (name, apply) pairs; ``apply()`` sets the detector up for it."""
    totals = {name: [0, 0, 0] for name, _ in variants}
    only = {name: 0 for name, _ in variants}
    for frame, truths in frames_:
        hits = {}
        for name, apply in variants:
            apply()
            found, false = fa.matches([d.box for d in detector.detect(frame)], truths)
            totals[name][0] += found
            totals[name][1] += false
            hits[name] = found
        (a, ha), (b, hb) = hits.items()
        only[a] += ha > hb
        only[b] += hb > ha
    for name, apply in variants:
        apply()
        totals[name][2] = sum(len(detector.detect(f)) for f in face_free)
    faces = sum(len(t) for _, t in frames_)
    lines = ["| variant | found | false | false on face-free | found only by it |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, _ in variants:
        found, false, free = totals[name]
        lines.append(f"| {name} | {found}/{faces} ({found / faces:.0%}) | {false} | {free} "
                     f"| {only[name]} |")
    return "\n".join(lines)


def main() -> int:
    material = fa.Material()
    frames_ = frames(material)
    face_free = [f for size in ((640, 480), (854, 480))
                 for f, _ in fa.no_face_frames(material, size)]
    detector = FaceDetector(FaceOptions(), cache=fa.DOWNLOADS)
    bf = detector._blazeface

    def fit(value):
        return lambda: setattr(bf, "fit", value)

    def linear_from(value):
        def apply():
            bf.fit = True
            blazeface.LINEAR_FROM = value
        return apply

    def look(value):
        def apply():
            bf.fit = True
            blazeface.WHOLE_FRAME_LOOK = value
        return apply

    saved, saved_look = blazeface.LINEAR_FROM, blazeface.WHOLE_FRAME_LOOK
    try:
        print("input fitted to the frame against 192x192")
        print(compare(detector, frames_, face_free,
                      [("fitted (default)", fit(True)), ("192x192", fit(False))]))
        print("\nletterbox resampling")
        print(compare(detector, frames_, face_free,
                      [("bilinear up to 4x (default)", linear_from(saved)),
                       ("area averaging", linear_from(2.0))]))
        blazeface.LINEAR_FROM = saved
        print("\nsmall candidates of an untiled frame")
        print(compare(detector, frames_, face_free,
                      [("second look below the reach (default)", look(saved_look)),
                       ("kept as found", look(0.0))]))
    finally:
        blazeface.LINEAR_FROM, blazeface.WHOLE_FRAME_LOOK = saved, saved_look
        bf.fit = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
