"""Faces in photos: a folder of images becomes a frames folder with face crops, as a video's.

``predict PHOTOS --faces --out OUT`` (and ``Client.predict(images, faces=True)``) find
the faces of each photo with the same detector and crop as ``extract --faces``, so every
face gets its own row (``face``, ``box``, ``detection_score``) and a photo without a face
one ``"face": null`` row. Photo ``k`` (in name order) is frame ``k`` of ``OUT/frames``:
the photo is linked (or copied) there beside its crops in ``faces/``, and its row keeps
the photo's name as ``file``. Timestamps are ``k / fps``, as for images predicted without
a manifest.

A rerun reuses ``OUT/frames`` and the results when it holds the same photos (names and
SHA-256); any change cuts the faces again and predicts every photo again (the results
of other photos are not these photos' results). EXIF orientation is applied before detection, as the
service applies it when it decodes an image.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import InputError, NotFoundError
from .faces import FaceDetector, FaceOptions
from .manifest import FACES_DIR, Frame, manifest_path, read_manifest, write_face_crops, \
    write_manifest

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
PHOTO = "photo"
"""The key in ``Frame.extra`` that marks a frame as a photo (its row keeps ``file``)."""


def photo_files(folder: Path) -> list[Path]:
    """The images of ``folder`` in name order; a clear error when there are none."""
    if not folder.is_dir():
        raise NotFoundError(f"photo folder {folder} does not exist (or is not a folder)")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """A photo's pixels as uint8 RGB (H, W, 3), upright by its EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{name} is not a readable image ({exc}); remove it from the "
                         "folder or replace it") from None


def _place(photo: Path, target: Path) -> None:
    """``photo`` at ``target``: a hard link when the file system allows, else a copy."""
    target.unlink(missing_ok=True)
    try:
        os.link(photo, target)
    except OSError:
        shutil.copyfile(photo, target)


def download_photos(location, client, folder: Path) -> list[Path]:
    """The images under an S3 prefix, fetched into ``folder`` (kept between runs: an
    object whose ETag is the MD5 of the local copy is not fetched again); their paths."""
    from .sources import list_image_keys
    from .upload import _md5, existing_etags

    keys = list_image_keys(client, location)
    if not keys:
        raise NotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under "
                            f"{location.uri()}")
    folder.mkdir(parents=True, exist_ok=True)
    etags = existing_etags(client, location)
    prefix = f"{location.prefix}/" if location.prefix else ""
    paths = []
    for key in keys:
        name = key[len(prefix):].replace("/", "__")  # one flat folder, names kept apart
        path = folder / name
        if not (path.is_file() and etags.get(key) == _md5(path)):
            tmp = path.with_name(path.name + ".partial")
            client.download_file(location.bucket, key, str(tmp))
            tmp.replace(path)
        paths.append(path)
    for stale in set(folder.iterdir()) - set(paths):  # objects deleted from the prefix
        if stale.is_file():
            stale.unlink()
    return paths


def _unchanged(out_dir: Path, files: list[Path], digests: list[str]) -> bool:
    """True when ``out_dir`` already holds these photos' faces (a rerun)."""
    if not manifest_path(out_dir).exists():
        return False
    try:
        frames = read_manifest(out_dir)
    except InputError:
        return False
    return [(f.file, f.sha256, f.faces is not None, f.extra.get(PHOTO)) for f in frames] == \
        [(p.name, d, True, True) for p, d in zip(files, digests)]


def cut_photo_faces(folder: Path | str, out_dir: Path | str,
                    options: FaceOptions = FaceOptions(), fps: float = 30.0
                    ) -> tuple[list[Frame], bool]:
    """The frames folder ``out_dir`` for the photos of ``folder``, with face crops and a
    manifest (one line per photo), and whether it was cut now (False: reused as it is,
    the photos did not change)."""
    folder, out_dir = Path(folder), Path(out_dir)
    files = photo_files(folder)
    if folder.resolve() == out_dir.resolve():
        raise InputError(f"--out would put the frames into the photo folder {folder}; "
                         "choose another --out")
    datas = [p.read_bytes() for p in files]
    digests = [hashlib.sha256(d).hexdigest() for d in datas]
    if _unchanged(out_dir, files, digests):
        return read_manifest(out_dir), False
    detector = FaceDetector(options)  # fails before anything is written
    (out_dir / FACES_DIR).mkdir(parents=True, exist_ok=True)
    manifest_path(out_dir).unlink(missing_ok=True)  # no manifest until it is right
    for stale in (out_dir / FACES_DIR).glob("frame_*.jpg"):
        stale.unlink()
    frames = []
    for index, (photo, data, digest) in enumerate(zip(files, datas, digests)):
        crops = detector.faces(decode_rgb(data, str(photo)))
        _place(photo, out_dir / photo.name)
        frames.append(Frame(index=index, timestamp=index / fps, file=photo.name,
                            size=len(data), sha256=digest, extra={PHOTO: True},
                            faces=write_face_crops(out_dir, index, crops)))
    write_manifest(out_dir, frames)
    return frames, True
