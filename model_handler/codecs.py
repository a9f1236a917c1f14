"""Request decoders: one small function per Content-Type (docs/API.md, "Request bodies").

Each decoder turns one MMS request (a dict of field name -> bytes, plus the content type
MMS recorded for each field) into a list of
``(image_id, source)`` pairs, where ``source`` is encoded image bytes, an ``S3Ref``,
an already preprocessed ``numpy`` array (C, H, W), or an ``ImageError`` for an entry
that is bad on its own. A request that is wrong as a whole raises ``RequestError``.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from typing import Callable, Mapping, Union

import numpy as np

from .config import ModelConfig
from .errors import ImageError, RequestError, bad_request, unsupported_media_type

from .wire import JPEG, JSON, MULTIPART, NPY, PNG, X_IMAGE, split_s3_uri  # noqa: F401

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


def decode_single_image(request: dict, cfg: ModelConfig, part_types: Mapping[str, str]) -> Items:
    return [("0", _body(request))]


def decode_multipart(request: dict, cfg: ModelConfig, part_types: Mapping[str, str]) -> Items:
    """One image per file part. Query parameters (``/invocations?model_name=...``) and
    plain text fields reach the handler as fields too, but with no content type of their
    own: they are not images and are skipped."""
    items: Items = []
    for name, value in request.items():
        if part_types and not part_types.get(name):
            continue
        if isinstance(value, str):
            value = value.encode("utf-8")
        items.append((str(name), bytes(value)))
    if not items:
        raise bad_request("no_images", "the multipart body has no file parts; send one image "
                          "per file part with a unique field name, e.g. "
                          "curl -F frame_000001=@frame.jpg")
    return items


def parse_s3_uri(uri: str) -> S3Ref:
    parts = split_s3_uri(uri)
    if parts is None:
        raise ImageError("invalid_instance", f"s3 reference {uri!r} must look like "
                         "s3://bucket/key")
    bucket, key = parts
    if not bucket or not key:
        raise ImageError("invalid_instance", f"s3 reference {uri!r} needs a bucket and a key: "
                         "s3://bucket/key")
    return S3Ref(bucket, key)


def _decode_instance(instance) -> Source:
    if not isinstance(instance, dict):
        return ImageError("invalid_instance", "each instance must be an object with 'b64' or "
                          "'s3'")
    if "b64" in instance:
        try:
            data = base64.b64decode(instance["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            return ImageError("invalid_instance", f"'b64' is not valid base64 ({exc})")
        if not data:
            return ImageError("invalid_instance", "'b64' is empty")
        return data
    if "s3" in instance:
        try:
            return parse_s3_uri(instance["s3"])
        except ImageError as exc:
            return exc
    return ImageError("invalid_instance", "instance has neither 'b64' nor 's3'")


def decode_json(request: dict, cfg: ModelConfig, part_types: Mapping[str, str]) -> Items:
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


def decode_npy(request: dict, cfg: ModelConfig, part_types: Mapping[str, str]) -> Items:
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
    if array.dtype not in (np.uint8, np.float32):
        raise bad_request("invalid_dtype", f".npy dtype {array.dtype} is not supported; send "
                          "uint8 pixels or float32 model input")
    return [(str(i), array[i]) for i in range(array.shape[0])]


DECODERS: dict[str, Callable[[dict, ModelConfig, Mapping[str, str]], Items]] = {
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
    items = decoder(request, cfg, part_types or {})
    if len(items) > cfg.max_images_per_request:
        raise bad_request("too_many_images", f"{len(items)} images in one request; the limit "
                          f"is {cfg.max_images_per_request}: split the request")
    return items


def request_error_from(exc: Exception) -> RequestError:
    """Any unexpected decoding failure still answers the request, as a 400."""
    if isinstance(exc, RequestError):
        return exc
    return bad_request("invalid_request", f"cannot decode the request: {exc}")
