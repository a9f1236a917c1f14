"""Request bodies from frames, packed so that none exceeds the endpoint's payload limit."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from model_handler.wire import JSON, MULTIPART

from .items import Item

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
    """The items of one request; ``datas`` are their bytes, or None to send S3 references."""

    items: list[Item]
    datas: list[bytes] | None = None

    def encode(self, boundary: str | None = None) -> tuple[bytes, str]:
        if self.datas is None:
            instances = [{"id": item.id, "s3": item.s3_uri} for item in self.items]
            return json.dumps({"instances": instances}).encode(), JSON
        return multipart_body([(item.id, data) for item, data in zip(self.items, self.datas)],
                              boundary)

    def halves(self) -> list["Request"]:
        """Two requests of half the items each (after the server said 413)."""
        half = len(self.items) // 2
        datas = self.datas
        return [Request(self.items[:half], datas[:half] if datas is not None else None),
                Request(self.items[half:], datas[half:] if datas is not None else None)]


@dataclass
class TooLarge:
    """A single item that cannot fit in any request under the limit."""

    item: Item
    size: int


class Packer:
    """Groups items into requests of at most ``batch_size`` items and ``max_payload`` bytes.

    :meth:`add` takes one item (and its bytes, or None for a by-reference request: JSON
    with ``s3`` URIs, a few bytes each) and returns what is ready to send now; :meth:`flush`
    the rest. ``first_size`` caps the first request alone (a client that waits for the
    first answer sends one frame, not a whole request's worth, while the server's other
    cores idle).
    """

    def __init__(self, batch_size: int, max_payload: int, by_reference: bool = False,
                 first_size: int | None = None):
        self.batch_size, self.max_payload, self.by_reference = batch_size, max_payload, \
            by_reference
        self._limit = min(batch_size, first_size or batch_size)
        self._base = len('{"instances": []}') if by_reference else CLOSING_OVERHEAD
        self._items: list[Item] = []
        self._datas: list[bytes] = []
        self._size = self._base

    def add(self, item: Item, data: bytes | None) -> list[Request | TooLarge]:
        grow = (len(json.dumps({"id": item.id, "s3": item.s3_uri})) + 2 if data is None
                else part_size(item.id, len(data)))
        if self._base + grow > self.max_payload:
            return [TooLarge(item, self._base + grow)]
        ready = []
        if self._items and (len(self._items) >= self._limit
                            or self._size + grow > self.max_payload):
            ready = self.flush()
            self._limit = self.batch_size
        self._items.append(item)
        if data is not None:
            self._datas.append(data)
        self._size += grow
        if len(self._items) >= self._limit:  # full: it goes now, not with the next item
            ready += self.flush()
            self._limit = self.batch_size
        return ready

    def flush(self) -> list[Request]:
        if not self._items:
            return []
        request = Request(self._items, None if self.by_reference else self._datas)
        self._items, self._datas, self._size = [], [], self._base
        return [request]


def pack(items: Iterable[Item], read: Callable[[Item], bytes] | None,
         batch_size: int, max_payload: int, first_size: int | None = None
         ) -> Iterator[Request | TooLarge]:
    """Every request of ``items`` as :class:`Packer` groups them (``read`` None: by
    reference); for callers that have all items at hand (transform's shards)."""
    packer = Packer(batch_size, max_payload, read is None, first_size)
    for item in items:
        yield from packer.add(item, None if read is None else read(item))
    yield from packer.flush()
