"""Request decoders: one small function per Content-Type (docs/API.md, "Request bodies").

Each decoder turns one MMS request (a dict of field name -> bytes, the content type MMS
recorded for each field, and the request's Content-Type header) into a list of
``(image_id, source)`` pairs, where ``source`` is encoded image bytes, an ``S3Ref``,
an already preprocessed ``numpy`` array (C, H, W), or an ``ImageError`` for an entry
that is bad on its own. A request that is wrong as a whole raises ``RequestError``.
"""
from __future__ import annotations

import base64
import binascii
import collections
import email
import email.message
import email.utils
import io
import json
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Union

import numpy as np

from .config import ModelConfig
from .errors import ImageError, RequestError, bad_request, unsupported_media_type

from .wire import (INVALID_INSTANCE, JPEG, JSON, MULTIPART, NPY, PNG,  # noqa: F401
                   X_IMAGE, split_s3_uri)

RAW_BODY_KEY = "body"


@dataclass(frozen=True)
class S3Ref:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


Source = Union[bytes, S3Ref, np.ndarray, ImageError]
Items = list[tuple[str, Source]]


def media_type(content_type: str | None) -> str:
    """``'Multipart/Form-Data; boundary=x'`` -> ``'multipart/form-data'``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _body(request: dict) -> bytes:
    body = request.get(RAW_BODY_KEY)
    if body is None:
        # MMS gives a form-encoded or empty body under other keys, or none at all.
        raise bad_request("no_images", "the request has no body; send images as the body, "
                          "as multipart parts, or as JSON instances")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if len(body) == 0:
        raise bad_request("no_images", "the request body is empty; send at least one image")
    return bytes(body)


def decode_single_image(request: dict, cfg: ModelConfig, part_types: Mapping[str, str],
                        content_type: str | None = None) -> Items:
    return [("0", _body(request))]


MODEL_NAME_PARAMETER = "model_name"
"""The query parameter of MMS's ``/invocations?model_name=...``: a field, never an image."""
# What MMS's UTF-8 decoding of a text field leaves where the bytes were not text.
_REPLACEMENT = "\ufffd".encode("utf-8")
Field = tuple[str, str, bytes]  # (name, content type: "" for text fields, value)


def _boundary(content_type: str | None) -> str | None:
    header = email.message.Message()
    header["Content-Type"] = content_type or ""
    return header.get_boundary()


def _parse_part(raw: bytes, number: int) -> Field:
    """One part's headers and content -> (name, content type or "" for a text field, bytes)."""
    if raw.startswith(b"\r\n"):
        head, value = b"", raw[2:]
    else:
        head, _, value = raw.partition(b"\r\n\r\n")
    headers = email.message_from_string(head.decode("utf-8", "replace") + "\r\n\r\n")
    name = headers.get_param("name", header="content-disposition")
    if not name:
        raise bad_request("invalid_multipart", f"multipart part {number} has no name; send "
                          'each image with Content-Disposition: form-data; name="..."; '
                          'filename="..."')
    name = email.utils.collapse_rfc2231_value(name)
    part_type = headers.get("Content-Type", "")
    if not part_type and headers.get_filename() is None:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            part_type = "application/octet-stream"  # not text: an image sent as a field
    elif not part_type:
        part_type = "application/octet-stream"
    return name, part_type, value


def split_multipart(body: bytes, content_type: str | None) -> list[Field]:
    """The parts of a raw ``multipart/form-data`` body (RFC 7578), in order.

    MMS parses only the lower-case media type with a boundary; any other spelling, or one
    without a boundary, reaches the handler as the raw body. Raises ``RequestError`` for a
    missing boundary or a body that ends without its closing boundary.
    """
    boundary = _boundary(content_type)
    if not boundary:
        raise bad_request("invalid_multipart", f"Content-Type {content_type!r} has no "
                          "boundary parameter; let the HTTP client build the multipart body "
                          "(curl -F name=@file, requests' files=)")
    delimiter = b"--" + boundary.encode("utf-8")
    if body.startswith(delimiter):
        position = len(delimiter)
    else:  # a preamble: the first delimiter starts a later line
        found = body.find(b"\r\n" + delimiter)
        if found < 0:
            raise bad_request("invalid_multipart", f"the body has no part delimited by "
                              f"--{boundary}, the boundary Content-Type names")
        position = found + 2 + len(delimiter)
    fields: list[Field] = []
    while not body.startswith(b"--", position):
        line_end = body.find(b"\r\n", position)
        end = -1 if line_end < 0 else body.find(b"\r\n" + delimiter, line_end + 2)
        if end < 0:
            raise bad_request("invalid_multipart", f"the multipart body ends without its "
                              f"closing boundary --{boundary}-- (after {len(fields)} complete "
                              "parts): it was cut short or built by hand")
        fields.append(_parse_part(body[line_end + 2:end], len(fields) + 1))
        position = end + 2 + len(delimiter)
    return fields


def _names_in(scope: Mapping, request: dict) -> list[str] | None:
    batch, merged = scope.get("batch"), scope.get("input_batch")
    if not isinstance(batch, list) or not isinstance(merged, list):
        return None
    for sent, built in zip(batch, merged):
        if built is request:
            try:
                return [str(parameter["name"]) for parameter in sent["parameters"]]
            except (KeyError, TypeError):
                return None
    return None


def names_as_sent(request: dict) -> list[str] | None:
    """The request's field names as MMS received them, repeats included; None when unknown.

    MMS 1.1.11 builds each request dict from its list of parameters with ``dict.update``
    (``mms/service.py``, ``Service.predict``), so a repeated multipart field name keeps
    only its last part and the handler never sees the repeat. That list is still a local
    of the calling ``predict`` frame (``batch[i]["parameters"]``, aligned with the dict
    ``input_batch[i]``), and it is the only place the repeat can be seen. Read-only; under
    any other caller (tests, another server) nothing is found and None is returned.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "predict":
            names = _names_in(frame.f_locals, request)
            if names is not None:
                return names
        frame = frame.f_back
    return None


def _fields_parsed_by_mms(request: dict, part_types: Mapping[str, str]) -> list[Field]:
    fields = []
    for name, value in request.items():
        if isinstance(value, str):
            value = value.encode("utf-8")
        # Without part_types (not from MMS) every field counts as a file part.
        part_type = part_types.get(name, "") if part_types else "application/octet-stream"
        fields.append((str(name), part_type, bytes(value)))
    return fields


def _refuse_repeated(names: list[str]) -> None:
    counts = collections.Counter(names)
    repeated = sorted(n for n, count in counts.items() if count > 1 and n != MODEL_NAME_PARAMETER)
    if repeated:
        raise bad_request("duplicate_id", f"multipart field names {repeated} are used by more "
                          "than one part; MMS keeps only the last part of a name, so give "
                          "each image its own name (e.g. frame_000001, frame_000002)")


def decode_multipart(request: dict, cfg: ModelConfig, part_types: Mapping[str, str],
                     content_type: str | None = None) -> Items:
    """One image per file part, its field name as id; names must be unique (400
    ``duplicate_id``). Text fields (no filename, no content type of their own) and the
    query parameter ``model_name`` are skipped, but a text field whose bytes were not text
    (``curl -F 'name=<file'``) gets an ``invalid_image`` entry: MMS decoded it as UTF-8 and
    its bytes are lost."""
    body_type = part_types.get(RAW_BODY_KEY) if part_types else None
    if RAW_BODY_KEY in request and media_type(body_type) == MULTIPART:
        fields = split_multipart(_body(request), content_type)
        _refuse_repeated([name for name, _, _ in fields])
    else:
        fields = _fields_parsed_by_mms(request, part_types)
        _refuse_repeated(names_as_sent(request) or [])
    items: Items = []
    for name, part_type, value in fields:
        if part_type:
            items.append((name, value))
        elif name != MODEL_NAME_PARAMETER and _REPLACEMENT in value:
            items.append((name, ImageError(
                "invalid_image", f"field {name!r} is a text field, not a file part (its part "
                "has no filename), so its bytes were read as UTF-8 text and are lost; send "
                f"images as file parts: curl -F '{name}=@frame.jpg', not "
                f"-F '{name}=<frame.jpg'")))
    if not items:
        raise bad_request("no_images", "the multipart body has no file parts; send one image "
                          "per file part with a unique field name, e.g. "
                          "curl -F frame_000001=@frame.jpg (if it has some, check that the "
                          "boundary in Content-Type matches the body and that the body ends "
                          "with --boundary--)")
    return items


def parse_s3_uri(uri: str) -> S3Ref:
    parts = split_s3_uri(uri)
    if parts is None:
        raise ImageError(INVALID_INSTANCE, f"s3 reference {uri!r} must look like "
                         "s3://bucket/key")
    bucket, key = parts
    if not bucket or not key:
        raise ImageError(INVALID_INSTANCE, f"s3 reference {uri!r} needs a bucket and a key: "
                         "s3://bucket/key")
    return S3Ref(bucket, key)


def _decode_instance(instance) -> Source:
    if not isinstance(instance, dict):
        return ImageError(INVALID_INSTANCE, "each instance must be an object with 'b64' or "
                          "'s3'")
    if "b64" in instance:
        encoded = instance["b64"]
        if isinstance(encoded, str):  # MIME and PEM wrap base64 in lines: the breaks go
            encoded = encoded.replace("\r", "").replace("\n", "")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            return ImageError(INVALID_INSTANCE, f"'b64' is not valid base64 ({exc})")
        if not data:
            return ImageError(INVALID_INSTANCE, "'b64' is empty")
        return data
    if "s3" in instance:
        try:
            return parse_s3_uri(instance["s3"])
        except ImageError as exc:
            return exc
    return ImageError(INVALID_INSTANCE, "instance has neither 'b64' nor 's3'")


def decode_json(request: dict, cfg: ModelConfig, part_types: Mapping[str, str],
                content_type: str | None = None) -> Items:
    body = request.get(RAW_BODY_KEY)
    try:
        # MMS with decode_input_request=true hands over parsed JSON; otherwise bytes.
        document = body if isinstance(body, (dict, list)) else json.loads(_body(request))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("invalid_json", f"the body is not valid JSON ({exc}); send "
                          '{"instances": [{"id": "...", "b64": "..."}]}') from exc
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list) or not instances:
        raise bad_request("no_images", 'the JSON body needs a non-empty "instances" list of '
                          '{"id": ..., "b64": ...} or {"id": ..., "s3": "s3://bucket/key"}')
    items: Items = []
    for index, instance in enumerate(instances):
        given = instance.get("id") if isinstance(instance, dict) else None
        items.append((str(index) if given is None else str(given), _decode_instance(instance)))
    return items


def decode_npy(request: dict, cfg: ModelConfig, part_types: Mapping[str, str],
               content_type: str | None = None) -> Items:
    try:
        array = np.load(io.BytesIO(_body(request)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise bad_request("invalid_npy", f"the body is not a readable .npy array ({exc}); "
                          "write it with numpy.save (no pickled objects)") from exc
    if not isinstance(array, np.ndarray):
        raise bad_request("invalid_npy", "the body must hold a single .npy array, not an .npz")
    expected = (cfg.channels, cfg.height, cfg.width)
    sent_shape = array.shape
    if array.ndim == 3 and cfg.channels == 1:
        array = array[:, None]
    if array.ndim != 4 or tuple(array.shape[1:]) != expected or array.shape[0] < 1:
        raise bad_request("invalid_shape", f".npy shape {sent_shape} does not match the "
                          f"model input: send (N, {', '.join(map(str, expected))})"
                          + (f" or (N, {cfg.height}, {cfg.width})" if cfg.channels == 1 else ""))
    native = array.dtype.newbyteorder("=")  # a big-endian '>f4' is float32 all the same
    if native not in (np.uint8, np.float32):
        raise bad_request("invalid_dtype", f".npy dtype {array.dtype} is not supported; send "
                          "uint8 pixels or float32 model input")
    if array.dtype != native:
        array = array.astype(native)
    return [(str(i), array[i]) for i in range(array.shape[0])]


Decoder = Callable[[dict, ModelConfig, Mapping[str, str], str | None], Items]
DECODERS: dict[str, Decoder] = {
    JPEG: decode_single_image,
    PNG: decode_single_image,
    X_IMAGE: decode_single_image,
    MULTIPART: decode_multipart,
    JSON: decode_json,
    NPY: decode_npy,
}


def decode_request(request: dict, content_type: str | None, cfg: ModelConfig,
                   part_types: Mapping[str, str] | None = None) -> Items:
    """Decode one request into its images, in order; raises ``RequestError``.

    ``part_types`` maps each field of ``request`` to the content type MMS recorded for it
    ("" for query parameters and text fields); None when unknown (then all fields count).
    """
    decoder = DECODERS.get(media_type(content_type))
    if decoder is None:
        raise unsupported_media_type(media_type(content_type), sorted(DECODERS))
    items = decoder(request, cfg, part_types or {}, content_type)
    if len(items) > cfg.max_images_per_request:
        raise bad_request("too_many_images", f"{len(items)} images in one request; the limit "
                          f"is {cfg.max_images_per_request}: split the request")
    return items


def request_error_from(exc: Exception) -> RequestError:
    """Any unexpected decoding failure still answers the request, as a 400."""
    if isinstance(exc, RequestError):
        return exc
    return bad_request("invalid_request", f"cannot decode the request: {exc}")
