"""What the front checks in a request body before MMS sees it: multipart framing.

MMS 1.1.11's Java parses a lower-case ``multipart/form-data`` body itself (Netty's
``HttpPostRequestDecoder``) before the service sees it, and gets some of it wrong: a part
with ``Content-Transfer-Encoding: base64`` (or any encoding but 7bit/8bit/binary) or a part
without ``Content-Disposition`` is a 500 with a raw Java error; a body that ends without
its closing boundary loses its last part silently; a repeated field name keeps only the
last part. :func:`multipart_problem` finds each of these in the whole body the front
holds, so the front answers them 400 in the contract's shape and MMS never sees them.
Only the part headers are read: part contents are not copied.
"""
from __future__ import annotations

import email.message
import email.utils
from typing import Union

Buffer = Union[bytes, bytearray, memoryview]  # or an mmap of a temp file: anything with find
MULTIPART = "multipart/form-data"
IDENTITY_ENCODINGS = {"", "7bit", "8bit", "binary"}
MAX_PART_HEADER_BYTES = 16 * 1024
"""A part whose headers run longer than this is refused (no blank line after them)."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def boundary_of(content_type: str | None) -> str | None:
    header = email.message.Message()
    header["Content-Type"] = content_type or ""
    return header.get_boundary()


def _headers(raw: bytes) -> email.message.Message:
    return email.message_from_string(raw.decode("utf-8", "replace") + "\r\n\r\n")


def multipart_problem(body: Buffer, content_type: str | None) -> tuple[str, str] | None:
    """``(code, message)`` of the first framing fault of a multipart ``body`` (RFC 7578),
    or None when it is well framed (or not multipart at all). Codes: ``invalid_multipart``
    and ``duplicate_id`` (docs/API.md)."""
    if media_type(content_type) != MULTIPART:
        return None
    boundary = boundary_of(content_type)
    if not boundary:
        return ("invalid_multipart", f"Content-Type {content_type!r} has no boundary "
                "parameter; let the HTTP client build the multipart body (curl -F "
                "name=@file, requests' files=)")
    delimiter = b"--" + boundary.encode("utf-8", "replace")
    if bytes(body[:len(delimiter)]) == delimiter:
        position = len(delimiter)
    else:  # a preamble: the first delimiter starts a later line
        found = body.find(b"\r\n" + delimiter)
        if found < 0:
            return ("invalid_multipart", f"the body has no part delimited by --{boundary}, "
                    "the boundary Content-Type names")
        position = found + 2 + len(delimiter)
    names: set[str] = set()
    number = 0
    while bytes(body[position:position + 2]) != b"--":
        number += 1
        line_end = body.find(b"\r\n", position)
        end = -1 if line_end < 0 else body.find(b"\r\n" + delimiter, line_end + 2)
        if end < 0:
            return ("invalid_multipart", f"the multipart body ends without its closing "
                    f"boundary --{boundary}-- (after {number - 1} complete parts): it was cut "
                    "short or built by hand; MMS would drop the last part silently")
        start = line_end + 2
        if bytes(body[start:start + 2]) == b"\r\n":
            head = b""
        else:
            head_end = body.find(b"\r\n\r\n", start, min(end, start + MAX_PART_HEADER_BYTES))
            if head_end < 0:
                return ("invalid_multipart", f"multipart part {number} has no blank line "
                        "after its headers")
            head = bytes(body[start:head_end])
        problem = _part_problem(_headers(head), number, names)
        if problem:
            return problem
        position = end + 2 + len(delimiter)
    return None


def _part_problem(headers: email.message.Message, number: int,
                  names: set[str]) -> tuple[str, str] | None:
    disposition = headers.get("Content-Disposition")
    if disposition is None:
        return ("invalid_multipart", f"multipart part {number} has no Content-Disposition; "
                'send each image with Content-Disposition: form-data; name="..."; '
                'filename="..."')
    name = headers.get_param("name", header="content-disposition")
    if not name:
        return ("invalid_multipart", f"multipart part {number} has no name; send each image "
                'with Content-Disposition: form-data; name="..."; filename="..."')
    encoding = (headers.get("Content-Transfer-Encoding") or "").strip().lower()
    if encoding not in IDENTITY_ENCODINGS:
        return ("invalid_multipart", f"multipart part {number} has Content-Transfer-Encoding "
                f"{encoding!r}, which HTTP multipart does not use (RFC 7578): send the "
                "image's bytes as they are (binary), not encoded")
    name = email.utils.collapse_rfc2231_value(name)
    if name in names:
        return ("duplicate_id", f"multipart field name {name!r} is used by more than one "
                "part; give each image its own name (e.g. frame_000001, frame_000002)")
    names.add(name)
    return None
