"""People across frames: a ``person`` id for every face, the same while they stay on screen.

Faces are numbered left to right within one frame, so a face number says nothing about
who it is. :class:`FaceTracker` follows faces from frame to frame with norfair (a
maintained tracking library: a Kalman filter per person predicts where they are next,
and detections are matched to those predictions; ``norfair`` in the ``client`` extra).
The distance between a face and a person mixes where and what:

- **where**: how far the face's box centre is from the person's predicted centre, in
  box sides (0 on top of it, 1 one face-width away), capped at ``MOTION_CAP``;
- **what**: how unlike the face looks from the person's faces seen so far (the nearest
  of the last one and up to ``GALLERY`` earlier ones spread over the track's life, so a
  face half hidden while people cross still finds the person's full view), from a 16×16
  grey thumbnail of the crop (zero mean, unit norm: ``(1 - cosine) / 2``, 0 the same
  picture, about 0.3–0.5 for two different people), so two people who swap places or
  cross keep their own ids instead of taking the nearer track.

A face joins the person at the smallest distance below ``TrackOptions.max_distance``,
and never one it looks less like than ``max_appearance`` (so a cut from one person to
another in the same place is a new person; faces close to another face, whose crops
show part of it, get the looser ``max_appearance_crowded``); otherwise it starts a new
person. A person not seen for ``max_miss_seconds`` (a few frames without detection: a
turned head, someone walking past) is forgotten: **a person who leaves and comes back
later gets a new id** (nothing re-identifies them).

Why norfair: it is maintained, installs beside numpy 1.23.5 with ``pip check`` clean
(it brings scipy, filterpy and rich, all pinned in ``constraints.txt``), runs offline,
and takes a distance of our own, so motion and appearance are combined in one place;
its Kalman prediction carries a person through frames where they are hidden. Measured
on the two-person clip (``samples.make_two_person_video``, 10 fps, BlazeFace): two ids
on all 80 frames, the same after the swap, after Hopper's half-second hide and when the
two walk half or right through each other (``tests/unit/test_tracks.py``); 0.6–1.0 ms
per frame with two faces, thumbnails included, against ~13 ms per frame to cut and
detect.

Tracking runs where faces are found, in frame order (``extract``), and the ids are
written into the manifest (each face entry's ``person``), so a resumed job keeps them
and frames read back from S3 carry the same ids. It is deterministic: the same frames
give the same ids. Ids count from 1 in order of first appearance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THUMB = 16
"""Side of the grey thumbnail a face's appearance is judged from."""
MOTION_CAP = 3.0
"""Centre distances beyond this many box sides count as this much."""
CROWD = 1.5
"""A face is crowded when its box grown to this many times its side (about its crop and
then some) overlaps another face's grown box."""
GALLERY = 12
"""Earlier faces of a person kept to compare a new face with, besides the last one."""
NO_MATCH = 1e6
"""The distance of a face from a person it cannot be (above any threshold)."""


@dataclass(frozen=True)
class TrackOptions:
    """How faces are followed from frame to frame (``extract --faces``)."""

    max_miss_seconds: float = 1.0
    """How long a person may go undetected and keep their id, once seen at least that
    long (norfair's hit counter: each frame seen earns one frame of absence, up to this;
    a face seen in one frame only is forgotten after one frame without it)."""
    max_distance: float = 0.9
    """The largest distance (``motion_weight`` × centre distance in box sides +
    appearance distance) at which a face still joins a person."""
    motion_weight: float = 0.25
    """How much one box side of movement counts against one unit of appearance distance."""
    max_appearance: float = 0.2
    """A face never joins a person it looks less like than this (appearance distance),
    however near: a cut from one person to another in the same place starts a new id
    (``max_appearance_crowded`` for faces close to another face).
    Measured at 10 fps on the two sample people (``samples``): the same person from one
    frame to the next 0.05 at most on the two-person clip, 0.08 on the zooming face video;
    the two people 0.28 or more from each other."""
    max_appearance_crowded: float = 0.35
    """The same limit for a face whose surroundings (its box grown to ``CROWD`` times its
    side) overlap another face's in the same frame: people passing close by or in front
    of each other, whose crops show part of the other face. Measured on the two-person
    clip walked half through each other: the half-covered astronaut 0.17–0.26 from her
    earlier faces, 0.33 or more from Hopper's."""

    def __post_init__(self) -> None:
        from ..errors import InputError

        if not self.max_miss_seconds >= 0:
            raise InputError(f"max_miss_seconds must be >= 0, got {self.max_miss_seconds!r}")
        if not self.max_distance > 0 or not self.motion_weight >= 0 or \
                not 0 < self.max_appearance <= self.max_appearance_crowded <= 1:
            raise InputError("max_distance must be above 0, motion_weight >= 0 and "
                             "0 < max_appearance <= max_appearance_crowded <= 1, got "
                             f"{self.max_distance!r}, {self.motion_weight!r}, "
                             f"{self.max_appearance!r}, {self.max_appearance_crowded!r}")


def appearance(jpeg: bytes) -> np.ndarray:
    """A face crop's look: its JPEG decoded in grey at a quarter size, shrunk to
    ``THUMB``×``THUMB``, zero mean and unit norm (flattened)."""
    import cv2

    gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if gray is None or gray.size == 0:  # a crop OpenCV cannot read: no appearance
        return np.zeros(THUMB * THUMB, np.float32)
    thumb = cv2.resize(gray, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    vector = thumb.astype(np.float32).ravel()
    vector -= vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``(1 - cosine similarity) / 2`` of two :func:`appearance` vectors: 0..1."""
    return float(np.clip((1.0 - float(np.dot(a, b))) / 2.0, 0.0, 1.0))


def _centre_distance(points: np.ndarray, estimate: np.ndarray) -> float:
    """Centre distance of two boxes ([[x1, y1], [x2, y2]]) in their mean side."""
    side = float(np.mean([points[1] - points[0], estimate[1] - estimate[0]]))
    gap = float(np.linalg.norm(points.mean(axis=0) - estimate.mean(axis=0)))
    return min(MOTION_CAP, gap / max(side, 1.0))


def _crowded(boxes: list[np.ndarray]) -> list[bool]:
    """For each box ([[x1, y1], [x2, y2]]): whether, grown to ``CROWD`` times its size
    about its centre, it overlaps another one grown the same way."""
    grown = []
    for points in boxes:
        centre, half = points.mean(axis=0), (points[1] - points[0]) * CROWD / 2
        grown.append((centre - half, centre + half))
    return [any(i != j and np.all(a[0] < b[1]) and np.all(b[0] < a[1])
                for j, b in enumerate(grown)) for i, a in enumerate(grown)]


def _distance(options: TrackOptions):
    """norfair's ``Distance`` for faces: motion (centre distance, box sides) times
    ``motion_weight`` plus appearance distance; a matrix (candidates × persons)."""
    from norfair.distances import Distance

    class FaceDistance(Distance):
        def get_distances(self, objects, candidates) -> np.ndarray:
            candidates = list(candidates or ())
            matrix = np.full((len(candidates), len(objects)), np.inf, np.float32)
            if not candidates or not objects:
                return matrix
            crowded = _crowded([c.points for c in candidates])
            limits = np.where(crowded, options.max_appearance_crowded,
                              options.max_appearance)
            looks = np.stack([c.embedding for c in candidates])  # (candidates, THUMB²)
            for o, tracked in enumerate(objects):
                seen = np.stack([d.embedding for d in (tracked.last_detection,
                                                       *tracked.past_detections)])
                # The nearest of the person's faces: (1 - cosine) / 2, cosine = dot.
                look = np.clip((1.0 - looks @ seen.T) / 2.0, 0.0, 1.0).min(axis=1)
                motion = np.array([_centre_distance(c.points, tracked.estimate)
                                   for c in candidates])
                matrix[:, o] = np.where(look <= limits,
                                        options.motion_weight * motion + look, NO_MATCH)
            return matrix

    return FaceDistance()


class FaceTracker:
    """Gives each face of each frame, in frame order, a person id (norfair underneath).

    ``fps``: the rate frames come at (the extraction's), which turns
    ``max_miss_seconds`` into frames."""

    def __init__(self, fps: float, options: TrackOptions = TrackOptions()):
        from norfair import Tracker

        self.options = options
        misses = max(1, round(options.max_miss_seconds * float(fps)))
        # initialization_delay=0: a face gets its id in the first frame it is seen (the
        # default waits half of hit_counter_max frames, leaving those faces without one).
        # Built with a named distance, then given ours: a plain function would make
        # norfair log a warning through the root logger (configuring it for the process).
        # past_detections: the faces each person is compared with (norfair keeps them
        # spread over the track's life, so early full views stay among them).
        self._tracker = Tracker(distance_function="euclidean",
                                distance_threshold=options.max_distance,
                                hit_counter_max=misses, initialization_delay=0,
                                past_detections_length=GALLERY)
        self._tracker.distance_function = _distance(options)

    def update(self, boxes, crops: list[bytes]) -> list[int]:
        """The person id of each face of the next frame: ``boxes`` (x, y, w, h) and their
        JPEG ``crops``, in the same order. Call once per frame, frames in order (a frame
        without faces too: that is how misses are counted)."""
        from norfair import Detection

        detections = [Detection(np.array([[x, y], [x + w, y + h]], dtype=float),
                                embedding=appearance(crop), data=number)
                      for number, ((x, y, w, h), crop) in enumerate(zip(boxes, crops))]
        persons: list[int | None] = [None] * len(detections)
        for tracked in self._tracker.update(detections):
            last = tracked.last_detection
            for number, detection in enumerate(detections):
                if last is detection:
                    persons[number] = tracked.id
        missing = [n for n, p in enumerate(persons) if p is None]
        if missing:  # norfair returns every matched or new object: a bug if not
            raise AssertionError(f"faces {missing} got no track")
        return persons  # type: ignore[return-value]
