"""Errors that carry their HTTP status and machine code; mapped to responses in one place."""
from __future__ import annotations

from .wire import error_body


class RequestError(Exception):
    """A whole request is wrong (or the service failed it): answered with ``status``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return error_body(self.code, self.message)


class ImageError(Exception):
    """One image of a request failed; the others still get predictions."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def entry(self, image_id: str) -> dict:
        return {"id": image_id, "error": {"code": self.code, "message": self.message}}


def bad_request(code: str, message: str) -> RequestError:
    return RequestError(400, code, message)


def unsupported_media_type(content_type: str, supported: list[str]) -> RequestError:
    return RequestError(415, "unsupported_content_type",
                        f"Content-Type {content_type or '(none)'!r} is not supported; send one "
                        f"of: {', '.join(supported)}")


PHRASES = {200: "OK", 400: "Bad Request", 413: "Payload Too Large",
           415: "Unsupported Media Type", 500: "Internal Server Error",
           503: "Service Unavailable"}
