"""``upload``: frames to S3 with boto3's transfer manager, idempotently.

A frame is skipped when the bucket already holds it with the same content: the
listing's ETag is the MD5 of objects uploaded in one part (frames are far below the
multipart threshold); for multipart objects the SHA-256 stored in the object's
metadata is compared instead. A folder cut with ``--faces`` uploads each face crop
(``faces/frame_…_face0.jpg``) the same way, beside its frame. The manifest gets the S3
keys (each face entry its own ``s3_key``) and is uploaded last, so a reader of the
prefix sees a manifest only when every file it names is there.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError
from ..s3 import S3Location, make_client, parse_s3_uri
from .manifest import MANIFEST_NAME, Frame, read_manifest, write_manifest


@dataclass
class UploadResult:
    uploaded: int
    """Files sent (frames and face crops)."""
    skipped: int
    """Files already in the bucket with the same content."""
    location: S3Location


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def existing_etags(client, location: S3Location) -> dict[str, str]:
    """Key -> ETag (without quotes) of every object under the prefix."""
    etags = {}
    prefix = f"{location.prefix}/" if location.prefix else ""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            etags[obj["Key"]] = obj["ETag"].strip('"')
    return etags


def _already_there(client, location: S3Location, key: str, etag: str | None, sha256: str,
                   path: Path) -> bool:
    if etag is None:
        return False
    if "-" not in etag:
        return etag == _md5(path)
    head = client.head_object(Bucket=location.bucket, Key=key)
    return head.get("Metadata", {}).get("sha256") == sha256


def _files(frame: Frame) -> list[tuple[str, str, dict | None]]:
    """(file, sha256, face entry or None) of everything a manifest frame names: the frame,
    then its face crops."""
    files = [(frame.file, frame.sha256, None)]
    files += [(entry["file"], entry["sha256"], entry) for entry in frame.faces or ()]
    return files


def upload_frames(folder: Path | str, destination: str | S3Location, client=None,
                  endpoint_url: str | None = None, concurrency: int = 10,
                  progress: bool = True) -> UploadResult:
    """Upload every manifest frame of ``folder`` under ``destination`` (s3://bucket/prefix)
    with ``client`` (default: one for ``endpoint_url``)."""
    from boto3.s3.transfer import TransferConfig, create_transfer_manager
    from tqdm import tqdm

    folder = Path(folder)
    location = parse_s3_uri(destination)
    client = client or make_client("s3", endpoint_url)
    frames = read_manifest(folder)
    etags = existing_etags(client, location)
    todo, total = [], 0
    for frame in frames:
        for name, sha256, face in _files(frame):
            key, path = location.key(name), folder / name
            if not path.exists():
                raise NotFoundError(f"{path} is in the manifest but missing: re-run extract")
            if not _already_there(client, location, key, etags.get(key), sha256, path):
                todo.append((sha256, key, path))
            total += 1
            if face is None:
                frame.s3_key = key
            else:
                face["s3_key"] = key
    config = TransferConfig(max_concurrency=concurrency)
    bar = tqdm(total=len(todo), unit="file", desc="upload",
               disable=not (progress and sys.stderr.isatty()))
    with create_transfer_manager(client, config) as manager:
        futures = [manager.upload(str(path), location.bucket, key,
                                  extra_args={"ContentType": "image/jpeg",
                                              "Metadata": {"sha256": sha256}})
                   for sha256, key, path in todo]
        for future in futures:
            future.result()  # raises the first failure, naming the key
            bar.update(1)
    bar.close()
    write_manifest(folder, frames)
    client.upload_file(str(folder / MANIFEST_NAME), location.bucket, location.key(MANIFEST_NAME))
    return UploadResult(uploaded=len(todo), skipped=total - len(todo), location=location)
