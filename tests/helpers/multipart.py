"""Hand-built ``multipart/form-data`` bodies, for the cases HTTP clients never produce."""
from __future__ import annotations

BOUNDARY = "----frame-infer-test"


def multipart_body(parts: list[tuple[str, str | None, str | None, bytes]],
                   boundary: str = BOUNDARY, close: bool = True, preamble: bytes = b"") -> bytes:
    """Parts of (name, filename or None, content type or None, value), written as HTTP
    clients write them; ``close=False`` leaves out the closing ``--boundary--`` line."""
    out = [preamble]
    for name, filename, part_type, value in parts:
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = disposition + "\r\n" + (f"Content-Type: {part_type}\r\n" if part_type else "")
        out.append(f"--{boundary}\r\n{head}\r\n".encode() + value + b"\r\n")
    if close:
        out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)
