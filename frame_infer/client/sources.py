"""Where frames come from: a local frames folder or an ``s3://`` prefix.

With a manifest (written by ``extract``/``upload``) frames keep their indices and
timestamps; without one, image files are taken in name order at ``fps``, numbered
``frame_000000``, … on the wire, and each result row keeps the file's name as ``file``
(relative to the folder or prefix) so that it leads back to the image. A manifest
written with faces gives one reference per face crop, and one per frame without a face
(nothing to send: it gets the row ``"face": null``).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, NotFoundError
from ..s3 import S3Location, parse_s3_uri
from .items import Item, Work, from_manifest
from .manifest import MANIFEST_NAME, Frame, read_manifest

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def local_frames(folder: Path | str, fps: float = 30.0) -> Work:
    """The items of a frames folder: from its manifest, or its images in name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"frames folder {folder} does not exist: run `frame-infer "
                            "extract VIDEO --out FOLDER` first")
    if (folder / MANIFEST_NAME).exists():
        frames, notes = checked_frames(read_manifest(folder), folder)
        return CheckedWork([item for f in frames for item in frame_items(f, folder)],
                           faces=_with_faces(frames), source=str(folder), notes=notes)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return Work([Item(i, i / fps, path=p, file=p.name) for i, p in enumerate(files)],
                source=str(folder))


@dataclass(frozen=True)
class CheckedWork(Work):
    """The :class:`Work` of a manifest, with what checking it found (``notes``: lines
    skipped, files missing; each names its manifest line), for the run's warnings."""

    notes: tuple[str, ...] = field(default=(), compare=False)


def checked_frames(frames: list[Frame], folder: Path) -> tuple[list[Frame], tuple[str, ...]]:
    """``frames`` (from ``folder``'s manifest, in index order) without repeated indices,
    and a note for each line skipped and each named file that is missing. A repeated line
    would put one id twice in a request (the service refuses the whole request); a
    missing file gets its own ``frame_missing`` row from the engine, the others are sent.
    """
    lines = _lines_by_index(folder / MANIFEST_NAME)
    name = f"{folder / MANIFEST_NAME}"
    kept, notes, seen = [], [], {}
    for frame in frames:
        numbers = lines.get(frame.index, [])
        if frame.index in seen:
            seen[frame.index] += 1
            number = numbers[seen[frame.index]] if seen[frame.index] < len(numbers) else "?"
            notes.append(f"{name}:{number} repeats frame {frame.frame_id} of line "
                         f"{numbers[0] if numbers else '?'}: skipped (extract again to "
                         "rewrite the manifest)")
            continue
        seen[frame.index] = 0
        kept.append(frame)
        files = [frame.file] if frame.faces is None else [e["file"] for e in frame.faces]
        for missing in (f for f in files if not (folder / f).is_file()):
            notes.append(f"{name}:{numbers[0] if numbers else '?'} names {missing}, which is "
                         "missing: that item gets frame_missing, the others are sent "
                         "(extract again to bring it back)")
    return kept, tuple(notes)


def _lines_by_index(path: Path) -> dict[int, list[int]]:
    """Frame index -> the manifest's line numbers naming it, in file order (the lines
    were checked by ``read_manifest`` already)."""
    found: dict[int, list[int]] = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                found.setdefault(int(json.loads(line)["index"]), []).append(number)
    return found


def _with_faces(frames: list[Frame]) -> bool:
    """A manifest's mode: every line has ``faces`` or none has (``run`` re-cuts a folder
    that is neither)."""
    modes = {frame.faces is not None for frame in frames}
    if len(modes) > 1:
        raise InputError("the manifest mixes frames cut with and without --faces; extract "
                         "the video again")
    return modes == {True}


def frame_items(frame: Frame, folder: Path) -> list[Item]:
    """The items of one local manifest frame (:func:`items.from_manifest`)."""
    return from_manifest(frame, lambda name, _key: {"path": folder / name})


def s3_frames(uri: str | S3Location, client, fps: float = 30.0) -> Work:
    """The items under an ``s3://`` prefix: from its manifest, or its images in key order."""
    location = uri if isinstance(uri, S3Location) else parse_s3_uri(uri)
    manifest_key = location.key(MANIFEST_NAME)
    try:
        body = client.get_object(Bucket=location.bucket, Key=manifest_key)["Body"].read()
    except client.exceptions.NoSuchKey:
        body = None
    if body is not None:
        def in_s3(name: str, key: str | None) -> dict:
            return {"s3_bucket": location.bucket, "s3_key": key or location.key(name)}

        frames, seen, notes = [], {}, []
        for number, line in enumerate(io.StringIO(body.decode("utf-8")), 1):
            if line.strip():
                frame = _manifest_entry(line, location, number)
                if frame.index in seen:  # a repeated line: the first one counts
                    notes.append(f"{location.uri(MANIFEST_NAME)}:{number} repeats frame "
                                 f"{frame.frame_id} of line {seen[frame.index]}: skipped "
                                 "(upload the frames folder again)")
                    continue
                seen[frame.index] = number
                frames.append(frame)
        items = sorted((item for frame in frames for item in from_manifest(frame, in_s3)),
                       key=lambda i: (i.index, -1 if i.face is None else i.face))
        return CheckedWork(items, faces=_with_faces(frames), source=location.uri(),
                           notes=tuple(notes))
    keys = list_image_keys(client, location)
    if not keys:
        raise NotFoundError(f"no images under {location.uri()}: upload frames first "
                            "(`frame-infer upload FOLDER s3://...`)")
    prefix = f"{location.prefix}/" if location.prefix else ""
    return Work([Item(i, i / fps, s3_bucket=location.bucket, s3_key=k, file=k[len(prefix):])
                 for i, k in enumerate(keys)], source=location.uri())


def _manifest_entry(line: str, location: S3Location, number: int) -> Frame:
    """One line of an S3 manifest as a :class:`Frame` (checked as a local one is not:
    its files are keys, not paths)."""
    try:
        entry = json.loads(line)
        int(entry["index"]), float(entry["timestamp"]), str(entry["file"])
        faces = entry.get("faces")
        for face in faces or ():
            int(face["face"]), list(face["box"]), str(face["file"])
            if face.get("score") is not None:
                face["score"] = float(face["score"])
        return Frame(index=int(entry["index"]), timestamp=float(entry["timestamp"]),
                     file=str(entry["file"]), size=int(entry.get("size", 0)),
                     sha256=str(entry.get("sha256", "")), s3_key=entry.get("s3_key"),
                     extra=entry["extra"] if isinstance(entry.get("extra"), dict) else {},
                     faces=faces)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{location.uri(MANIFEST_NAME)} line {number} is not a manifest entry "
                         f"({type(exc).__name__}: {exc}); upload the frames folder again "
                         "(`frame-infer upload FOLDER s3://...`)") from None


def list_image_keys(client, location: S3Location) -> list[str]:
    """The keys of the images under ``location``'s prefix, in name order."""
    prefix = f"{location.prefix}/" if location.prefix else ""
    keys = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket,
                                                             Prefix=prefix)
    for page in pages:
        keys += [o["Key"] for o in page.get("Contents", [])
                 if o["Key"].lower().endswith(IMAGE_SUFFIXES)]
    return sorted(keys)


class FrameReader:
    """Reads a frame's bytes (local file or S3), shrunk to the model's input when known.

    ``resize_to``: (width, height, "L" or "RGB") shrinks every frame from the start; "auto"
    shrinks once :meth:`learn` has seen an answer naming the model's input (the first
    requests go as stored); None sends every frame as stored.
    """

    def __init__(self, s3_client=None, resize_to: tuple[int, int, str] | str | None = None):
        self._s3 = s3_client
        self._resize_to = None if resize_to == "auto" else resize_to
        self._auto = resize_to == "auto"
        self._expects_faces = False

    @property
    def resize_to(self) -> tuple[int, int, str] | None:
        return self._resize_to

    @property
    def learning(self) -> bool:
        """True in "auto" mode until an answer has named the model's input."""
        return self._auto and self._resize_to is None

    @property
    def first_request_size(self) -> int | None:
        """Frames in the first request: one while learning (that request goes alone, so a
        whole request's worth would leave the server's other cores idle), else no cap."""
        return 1 if self.learning else None

    @property
    def expects_faces(self) -> bool:
        """True when an answer said the model takes face crops (``model.input.faces``, as
        a model imported by ``import-fer`` declares), so whole frames give it noise."""
        return self._expects_faces

    def learn(self, answer: dict) -> None:
        """Note whether the model expects face crops; in "auto" mode, take the model's
        input from a 200 answer's ``model.input``."""
        model = answer.get("model") if isinstance(answer, dict) else None
        spec = model.get("input") if isinstance(model, dict) else None
        if isinstance(spec, dict) and spec.get("faces") is True:
            self._expects_faces = True
        if not self._auto or self._resize_to is not None:
            return
        try:
            width, height, mode = int(spec["width"]), int(spec["height"]), spec["color_mode"]
        except (TypeError, KeyError, ValueError):
            return  # an older service, or another one: frames keep going as stored
        if width > 0 and height > 0 and mode in ("L", "RGB"):
            self._resize_to = (width, height, mode)

    def read(self, item: Item) -> bytes:
        if item.path is not None:
            data = item.path.read_bytes()
        else:
            data = self._s3.get_object(Bucket=item.s3_bucket, Key=item.s3_key)["Body"].read()
        return self.prepare(data)

    def prepare(self, data: bytes) -> bytes:
        """``data`` as it goes out: shrunk once the model's input is known, else as is."""
        return self.shrink(data) if self._resize_to else data

    def shrink(self, data: bytes) -> bytes:
        """The model's input pixels as a PNG, decoded by the service's own code.

        ``model_handler.imaging.decode_image`` is what the service runs on the bytes it
        receives (JPEG draft scale, box reduction, EXIF orientation, colour mode, bilinear
        resize), so the service gets exactly the pixels it would have made itself: the
        predictions are the same, while the request is ~10x smaller and the service has
        only a 64x64 PNG to decode. Bytes that are not an image are sent unchanged: the
        service reports them per frame.
        """
        from PIL import Image

        from model_handler.errors import ImageError
        from model_handler.imaging import ImageInput, decode_image

        width, height, mode = self._resize_to
        try:
            pixels = decode_image(data, ImageInput(width, height, mode))
        except ImageError:
            return data
        out = io.BytesIO()
        image = pixels[0] if mode == "L" else pixels.transpose(1, 2, 0)
        # zlib level 1: 0.09 ms a 64x64 frame against 0.25 ms at Pillow's default 6, for
        # 1.4 KB instead of 1.2 KB (benchmarks/NOTES.md); the pixels are the same.
        Image.fromarray(image, mode).save(out, "PNG", compress_level=1)
        return out.getvalue()


def parse_model_input(text: str) -> tuple[int, int, str]:
    """``"64x64:L"`` -> (64, 64, "L"); the mode defaults to L."""
    size, _, mode = text.partition(":")
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError as exc:
        raise InputError(f"--model-input {text!r}: write WIDTHxHEIGHT[:L|RGB], e.g. "
                         "64x64:L") from exc
    mode = mode or "L"
    if mode not in ("L", "RGB"):
        raise InputError(f"--model-input mode {mode!r}: use L or RGB")
    return width, height, mode
