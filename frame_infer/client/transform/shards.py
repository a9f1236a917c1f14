"""Shards: frames packed into request-sized S3 objects, the input of a transform job.

With ``SplitType`` None, Batch Transform sends each input object as one ``/invocations``
body, so each shard is one multipart body exactly as ``predict`` sends it (one file part
per frame, named by its id), many frames per object and never over the payload limit.
A job gives every object the same ``ContentType``, so all shards of a job share one
multipart boundary. Layout under ``--bucket`` (``s3://bucket/prefix``)::

    inputs/<batch>/shard-000000, shard-000001, ...   the job's S3Uri (nothing else there)
    inputs/<batch>.json                              the index: frame ids per shard

The index is written after the last shard, so its presence says the input is complete;
a rerun that finds it uploads nothing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

from model_handler.wire import MULTIPART

from ...s3 import S3Location
from ..payload import TooLarge, pack
from ..items import Item

SHARD_NAME = "shard-{:06d}"
INDEX_VERSION = 1


@dataclass
class ShardIndex:
    """What was uploaded for one batch of frames."""

    content_type: str
    """``multipart/form-data; boundary=...``: the job's ``ContentType``."""
    shards: dict[str, list[str]] = field(default_factory=dict)
    """Shard object name -> the frame ids in it, in body order."""
    too_large: dict[str, int] = field(default_factory=dict)
    """Frame id -> its bytes, for frames that fit in no shard (never uploaded)."""

    def to_json(self) -> bytes:
        return json.dumps({"version": INDEX_VERSION, "content_type": self.content_type,
                           "shards": self.shards, "too_large": self.too_large}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "ShardIndex":
        doc = json.loads(data)
        return cls(doc["content_type"], doc["shards"], doc["too_large"])


def boundary_for(batch: str) -> str:
    """The multipart boundary of a batch: 32 hex characters derived from its name, so a
    re-upload after an interruption writes the same bytes."""
    return hashlib.sha256(f"frame-infer-boundary-{batch}".encode()).hexdigest()[:32]


def input_prefix(out: S3Location, batch: str) -> S3Location:
    """Where the shards of ``batch`` live (the job's ``S3Uri``)."""
    return S3Location(out.bucket, out.key(f"inputs/{batch}"))


def index_key(out: S3Location, batch: str) -> str:
    return out.key(f"inputs/{batch}.json")


def read_index(s3, out: S3Location, batch: str) -> ShardIndex | None:
    """The batch's index, or None when its upload never finished."""
    try:
        body = s3.get_object(Bucket=out.bucket, Key=index_key(out, batch))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return ShardIndex.from_json(body)


def upload_shards(s3, out: S3Location, batch: str, frames: list[Item],
                  read: Callable[[Item], bytes], frames_per_shard: int,
                  max_payload: int) -> ShardIndex:
    """Pack ``frames`` into shards under ``inputs/<batch>/`` and write the index last.

    One shard is held in memory at a time. A frame that alone exceeds ``max_payload``
    goes into ``too_large`` instead (its row says so; nothing is uploaded for it).
    """
    found = read_index(s3, out, batch)
    if found is not None:
        return found
    boundary = boundary_for(batch)
    index = ShardIndex(content_type="")
    prefix = input_prefix(out, batch)
    for item in pack(frames, read, frames_per_shard, max_payload):
        if isinstance(item, TooLarge):
            index.too_large[item.item.id] = item.size
            continue
        name = SHARD_NAME.format(len(index.shards))
        body, index.content_type = item.encode(boundary)
        # Stored as octet-stream: the job's ContentType is what the container sees, and
        # a multipart Content-Type on the upload itself invites servers to parse it.
        s3.put_object(Bucket=out.bucket, Key=prefix.key(name), Body=body,
                      ContentType="application/octet-stream")
        index.shards[name] = [f.id for f in item.items]
    if not index.content_type:  # no shard at all: still a valid, empty batch
        index.content_type = f"{MULTIPART}; boundary={boundary}"
    s3.put_object(Bucket=out.bucket, Key=index_key(out, batch), Body=index.to_json(),
                  ContentType="application/json")
    return index
