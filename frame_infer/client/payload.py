"""Request bodies from frames, packed so that none exceeds the endpoint's payload limit."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from model_handler.wire import JSON, MULTIPART

from .sources import FrameRef

CLOSING_OVERHEAD = 2 + 32 + 4  # "--" + boundary + "--\r\n"


def _part_head(boundary: str, name: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()


def multipart_body(parts: list[tuple[str, bytes]],
                   boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body, one file part per (unique name, bytes); and its type.

    ``boundary``: 32 characters (``part_size`` counts on it); default a new random one.
    A batch transform job gives every object one Content-Type, so its shards share one.
    """
    boundary = boundary or uuid.uuid4().hex
    if len(boundary) != 32:
        raise ValueError(f"boundary {boundary!r} must be 32 characters long")
    chunks = []
    for name, data in parts:
        chunks += [_part_head(boundary, name), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"{MULTIPART}; boundary={boundary}"


def part_size(name: str, data_len: int) -> int:
    """Bytes one part adds to a multipart body (boundaries are 32 hex characters)."""
    return len(_part_head("x" * 32, name)) + data_len + 2


@dataclass
class Request:
    """The frames of one request; ``datas`` are their bytes, or None to send S3 references."""

    frames: list[FrameRef]
    datas: list[bytes] | None = None

    def encode(self, boundary: str | None = None) -> tuple[bytes, str]:
        if self.datas is None:
            instances = [{"id": f.id, "s3": f.s3_uri} for f in self.frames]
            return json.dumps({"instances": instances}).encode(), JSON
        return multipart_body([(f.id, data) for f, data in zip(self.frames, self.datas)],
                              boundary)

    def halves(self) -> list["Request"]:
        """Two requests of half the frames each (after the server said 413)."""
        half = len(self.frames) // 2
        datas = self.datas
        return [Request(self.frames[:half], datas[:half] if datas is not None else None),
                Request(self.frames[half:], datas[half:] if datas is not None else None)]


@dataclass
class TooLarge:
    """A single frame that cannot fit in any request under the limit."""

    frame: FrameRef
    size: int


def pack(frames: Iterable[FrameRef], read: Callable[[FrameRef], bytes] | None,
         batch_size: int, max_payload: int, first_size: int | None = None
         ) -> Iterator[Request | TooLarge]:
    """Group frames into requests of at most ``batch_size`` frames and ``max_payload`` bytes.

    ``read`` None means by-reference requests (JSON with ``s3`` URIs; a few bytes each).
    ``first_size`` caps the first request alone (a client that waits for the first answer
    sends one frame, not a whole request's worth, while the server's other cores idle).
    """
    limit = min(batch_size, first_size or batch_size)
    current: list[FrameRef] = []
    datas: list[bytes] = []
    size = CLOSING_OVERHEAD if read else len('{"instances": []}')
    base = size
    for frame in frames:
        if read is None:
            grow = len(json.dumps({"id": frame.id, "s3": frame.s3_uri})) + 2
            data = None
        else:
            data = read(frame)
            grow = part_size(frame.id, len(data))
        if base + grow > max_payload:
            yield TooLarge(frame, base + grow)
            continue
        if current and (len(current) >= limit or size + grow > max_payload):
            yield Request(current, datas if read else None)
            current, datas, size, limit = [], [], base, batch_size
        current.append(frame)
        if data is not None:
            datas.append(data)
        size += grow
    if current:
        yield Request(current, datas if read else None)
