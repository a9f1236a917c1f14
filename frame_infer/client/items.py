"""The client's one unit of work: an :class:`Item`, built once per manifest line (or image).

An item is a whole frame, one face of a frame, or a frame that was searched for faces
and has none. Everything downstream derives from it: the journal key (:attr:`Item.key`),
the id on the wire (:attr:`Item.id`), the identifying fields of its result row
(:meth:`Item.row`), and, read back from ``predictions.jsonl``, the report's records
(:meth:`Item.from_row`). Whether a job is in face mode is said once, by its
:class:`Work`: all its items are faces (or faceless frames), or all are whole frames.

Row format (``predictions.jsonl``, docs/API.md): a whole-frame row has no ``face``
field; a face row has ``face`` (its number in the frame, left to right) and ``box``;
a faceless frame's row has ``"face": null`` and ``"box": null`` and no label.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .manifest import Frame, face_file_id, frame_id


class Kind(enum.Enum):
    FRAME = "frame"
    """A whole frame (a job without faces)."""
    FACE = "face"
    """One face crop of a frame (a job with faces)."""
    NO_FACE = "no_face"
    """A frame searched for faces that has none: nothing to send, its row says so."""


@dataclass(frozen=True)
class Item:
    """One thing that gets exactly one result row."""

    index: int
    """The frame's 0-based position in the sampled sequence."""
    timestamp: float
    """Seconds from the start of the video."""
    kind: Kind = Kind.FRAME
    face: int | None = None
    """FACE: the face's number in its frame (0, 1, … left to right); else None."""
    box: tuple[int, int, int, int] | None = None
    """FACE: (x, y, w, h) of the face in the frame's pixels."""
    path: Path | None = None
    """Where the image is on this machine (a frame or a crop), or None."""
    s3_bucket: str | None = None
    s3_key: str | None = None
    """Where the image is in S3, or None."""
    file: str | None = None
    """Images without a manifest: the name relative to the folder or prefix (``a.jpg``),
    kept in the row; None when a manifest names the frames."""
    detection_score: float | None = None
    """FACE: the detector's confidence, when it gives one."""
    person: int | None = None
    """FACE: the track id of the person, when faces are tracked."""

    @property
    def id(self) -> str:
        """The id on the wire: ``frame_000012``, or ``frame_000012_face0`` for a face."""
        return face_file_id(self.index, self.face) if self.kind is Kind.FACE \
            else frame_id(self.index)

    @property
    def key(self) -> tuple[int, int | None]:
        """What its row is keyed by in the journal: (index, face number or None). Unique
        within one job (its :class:`Work` says whether the job has faces)."""
        return self.index, self.face

    @property
    def sendable(self) -> bool:
        """False for a faceless frame: there is nothing to send."""
        return self.kind is not Kind.NO_FACE

    @property
    def s3_uri(self) -> str | None:
        return f"s3://{self.s3_bucket}/{self.s3_key}" if self.s3_key else None

    def row(self) -> dict:
        """The identifying fields its result row starts with."""
        row = {"index": self.index, "id": self.id, "timestamp": self.timestamp}
        if self.kind is not Kind.FRAME:
            row["face"] = self.face
            row["box"] = list(self.box) if self.box is not None else None
            if self.detection_score is not None:
                row["detection_score"] = self.detection_score
            if self.person is not None:
                row["person"] = self.person
        if self.file is not None:
            row["file"] = self.file
        return row

    @classmethod
    def from_row(cls, row: dict) -> "Item":
        """The item a result row was written for (no location: rows do not keep it)."""
        index, timestamp = int(row["index"]), float(row["timestamp"])
        file = row.get("file")
        file = None if file is None else str(file)
        if "face" not in row:
            return cls(index, timestamp, file=file)
        if row["face"] is None:
            return cls(index, timestamp, Kind.NO_FACE, file=file)
        box = row.get("box")
        score, person = row.get("detection_score"), row.get("person")
        return cls(index, timestamp, Kind.FACE, face=int(row["face"]),
                   box=tuple(int(v) for v in box) if box is not None else None, file=file,
                   detection_score=None if score is None else float(score),
                   person=None if person is None else int(person))


def row_faces(row: dict) -> bool:
    """Whether a result row was written by a job with faces (the file format's one sign)."""
    return "face" in row


def from_manifest(frame: Frame, locate) -> list[Item]:
    """The items of one manifest frame: the frame itself; with faces each face crop, or
    one NO_FACE item when it has none. ``locate(file, s3_key)`` gives an item's location
    fields (``{"path": ...}`` or ``{"s3_bucket": ..., "s3_key": ...}``)."""
    if frame.faces is None:
        return [Item(frame.index, frame.timestamp, **locate(frame.file, frame.s3_key))]
    file = frame.file if frame.extra.get("photo") else None  # a photo's row keeps its name
    if not frame.faces:
        return [Item(frame.index, frame.timestamp, Kind.NO_FACE, file=file)]
    return [Item(frame.index, frame.timestamp, Kind.FACE, face=entry["face"],
                 box=tuple(entry["box"]), detection_score=entry.get("score"), file=file,
                 person=entry.get("person"),
                 **locate(entry["file"], entry.get("s3_key")))
            for entry in frame.faces]


@dataclass(frozen=True)
class Work:
    """What one job predicts: its items, in frame order, and its mode, stated once.

    ``items`` is a sequence, or an iterator when the frames are still being cut (``run``
    predicts while it extracts); iterating a Work iterates its items."""

    items: Iterable[Item]
    faces: bool = False
    """True when the frames were searched for faces: every item is a FACE or NO_FACE."""
    source: str = field(default="", compare=False)
    """The folder or ``s3://`` prefix the items come from (for messages)."""

    def __iter__(self) -> Iterator[Item]:
        expected = (Kind.FACE, Kind.NO_FACE) if self.faces else (Kind.FRAME,)
        for item in self.items:
            if item.kind not in expected:  # a programming error, not an input one
                raise AssertionError(f"{item.kind} item in a job with faces={self.faces}")
            yield item

    def __len__(self) -> int:
        return len(self.items)  # type: ignore[arg-type]

    def __getitem__(self, position):
        """An item, or for a slice the Work of those items (same mode)."""
        if isinstance(position, slice):
            return Work(list(self.items)[position], self.faces, self.source)
        return self.items[position]  # type: ignore[index]

    @property
    def sized(self) -> bool:
        """True when the items are all known (a list), not a stream."""
        return isinstance(self.items, (list, tuple))
