"""A corpus of bad inputs through the real MMS (issue 9): each answers with its exact status
and code (of the whole request, or of each image), and a good request right after it is
still answered correctly, by the same worker.

Models of the session's ``mms``: ``ferplus`` (1x64x64 gray, no normalisation, batching)
and ``rgb`` (3x48x40, ImageNet normalisation, batch 1).
"""
from __future__ import annotations

import base64
import functools
import io
import json
import os
import pickle
import struct
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import requests
from PIL import Image

from ..helpers.images import encode, jpeg, png
from ..helpers.memory import reset_peak, status_kb, worker_pids
from ..helpers.mms import model_url
from ..helpers.models import RGB_CONFIG
from ..helpers.multipart import BOUNDARY, multipart_body

pytestmark = pytest.mark.integration

PREDICTION = None  # an entry that is a prediction, not an error
SHAPES = {"ferplus": (1, 64, 64), "rgb": (3, 48, 40)}


# -- bad bytes ---------------------------------------------------------------------------------
def npy(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def npz(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=array)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header that declares ``width`` x ``height`` and carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR"
                                                                                   + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 1000) + b"IDAT" + b"\x78\x9c"


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is patched to ``width`` x ``height``."""
    data = bytearray(jpeg(1, size=(64, 64), mode="L"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("P", (8, 8)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


@functools.lru_cache(maxsize=None)
def png16(side: int = 6300) -> bytes:
    """16-bit grayscale, ``side`` x ``side``: ~90 KB of PNG, 40 M pixels to decode."""
    pixels = np.full((side, side), 30000, np.uint16)
    pixels[side // 6: side // 3, side // 6: side - side // 6] = 60000
    return encode(Image.fromarray(pixels), "PNG")


def corrupt_jpeg() -> bytes:
    data = jpeg(2)
    return data[:700] + np.random.RandomState(0).bytes(3000) + b"\xff\xd9"


def corrupt_png() -> bytes:
    data = bytearray(png(3))
    start = data.find(b"IDAT") + 10
    data[start:start + 50] = b"\x55" * 50
    return bytes(data)


def text_field_of(data: bytes) -> bytes:
    """What MMS does to a part without a filename: UTF-8 decoding, bytes replaced."""
    return data.decode("utf-8", "replace").encode("utf-8")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def wrapped_b64(data: bytes) -> str:
    """``base64`` without ``-w0``: lines of 76 characters."""
    text = b64(data)
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n"


PICKLE_NPY = npy(np.array([[{"x": 1}]], dtype=object), allow_pickle=True)
GOOD_JPEG = jpeg(7, size=(320, 240), mode="L")


# -- the corpus ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[], dict]
    """keyword arguments of ``requests.post``: data/files/json/headers"""
    status: int
    code: str | None = None
    """the whole request's error code (non-200)"""
    entries: tuple = ()
    """per image of a 200: (id, per-image code, or PREDICTION)"""
    model: str = "ferplus"
    path: str | None = None
    """instead of /predictions/{model}, e.g. /invocations?model_name=ferplus"""


def raw(content_type: str | None, body: bytes) -> Callable[[], dict]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return lambda: {"data": body, "headers": headers}


def raw_lazy(content_type: str, build: Callable[[], bytes]) -> Callable[[], dict]:
    return lambda: {"data": build(), "headers": {"Content-Type": content_type}}


def files(*parts: tuple) -> Callable[[], dict]:
    """requests' multipart: parts of (name, filename or None, bytes, content type or None)."""
    def build():
        out = []
        for name, filename, data, part_type in parts:
            value = data() if callable(data) else data
            out.append((name, (filename, value) if part_type is None
                        else (filename, value, part_type)))
        return {"files": out}
    return build


def instances(*entries) -> Callable[[], dict]:
    return lambda: {"json": {"instances": list(entries)}}


def json_body(body: bytes) -> Callable[[], dict]:
    return raw("application/json", body)


def hand_multipart(content_type: str, parts: list, **kwargs) -> Callable[[], dict]:
    return lambda: {"data": multipart_body(parts, **kwargs),
                    "headers": {"Content-Type": content_type}}


MP = f"multipart/form-data; boundary={BOUNDARY}"
IMG = GOOD_JPEG

CASES = [
    # Content types and empty bodies: whole-request answers.
    Case("text/plain", raw("text/plain", b"hello"), 415, "unsupported_content_type"),
    Case("no content type", raw(None, GOOD_JPEG), 415, "unsupported_content_type"),
    Case("octet-stream", raw("application/octet-stream", GOOD_JPEG), 415,
         "unsupported_content_type"),
    Case("image/gif type", raw("image/gif", GOOD_JPEG), 415, "unsupported_content_type"),
    Case("form-urlencoded", lambda: {"data": {"a": "b"}}, 415, "unsupported_content_type"),
    Case("jpeg empty body", raw("image/jpeg", b""), 400, "no_images"),
    Case("png empty body", raw("image/png", b""), 400, "no_images"),
    Case("json empty body", json_body(b""), 400, "no_images"),
    Case("npy empty body", raw("application/x-npy", b""), 400, "no_images"),
    Case("multipart empty body", raw(MP, b""), 400, "no_images"),
    # Encoded images: one per-image answer each.
    Case("truncated jpeg", raw("image/jpeg", GOOD_JPEG[:400]), 200,
         entries=(("0", "invalid_image"),)),
    Case("truncated png", raw("image/png", png(4)[:300]), 200,
         entries=(("0", "invalid_image"),)),
    Case("corrupt jpeg scan", raw_lazy("image/jpeg", corrupt_jpeg), 200,
         entries=(("0", "invalid_image"),)),
    Case("corrupt png data", raw_lazy("image/png", corrupt_png), 200,
         entries=(("0", "invalid_image"),)),
    Case("pdf as image", raw("image/png", b"%PDF-1.4\n" + b"0" * 500), 200,
         entries=(("0", "invalid_image"),)),
    Case("html as x-image", raw("application/x-image", b"<html><body>hi</body></html>"), 200,
         entries=(("0", "invalid_image"),)),
    Case("png magic only", raw("image/png", b"\x89PNG\r\n\x1a\n"), 200,
         entries=(("0", "invalid_image"),)),
    Case("png bomb header 100000x100000", raw("image/png", png_claiming(100_000, 100_000)), 200,
         entries=(("0", "image_too_large"),)),
    Case("png header 7000x6000", raw("image/png", png_claiming(7000, 6000)), 200,
         entries=(("0", "image_too_large"),)),
    Case("jpeg bomb header 65000x65000", raw("image/jpeg", jpeg_claiming(65000, 65000)), 200,
         entries=(("0", "image_too_large"),)),
    Case("jpeg header 8000x8000", raw("image/jpeg", jpeg_claiming(8000, 8000)), 200,
         entries=(("0", "image_too_large"),)),
    Case("gif bomb header 65535x65535", raw("image/png", gif_claiming(65535, 65535)), 200,
         entries=(("0", "image_too_large"),)),
    Case("16-bit png 6300x6300", raw_lazy("image/png", png16), 200,
         entries=(("0", PREDICTION),)),
    Case("six 16-bit 6300x6300 pngs: over the request's pixel budget",
         files(*[(f"p{i}", f"p{i}.png", png16, "image/png") for i in range(6)]), 200,
         entries=tuple((f"p{i}", PREDICTION) for i in range(5)) + (("p5", "image_too_large"),)),
    Case("rgb: 16-bit png", raw_lazy("image/png", lambda: png16(3000)), 200,
         entries=(("0", PREDICTION),), model="rgb"),
    # JSON.
    Case("json malformed", json_body(b'{"instances": ['), 400, "invalid_json"),
    Case("json not utf-8", json_body('{"instances": ["é"]}'.encode("latin-1")), 400,
         "invalid_json"),
    Case("json top-level list", json_body(b'[{"b64": "QUJD"}]'), 400, "no_images"),
    Case("json instances empty", instances(), 400, "no_images"),
    Case("json instances not a list", json_body(b'{"instances": {"b64": "QUJD"}}'), 400,
         "no_images"),
    Case("json instance not an object", instances("abc"), 200,
         entries=(("0", "invalid_instance"),)),
    Case("json instance without b64 or s3", instances({"id": "x", "url": "http://a/b.jpg"}),
         200, entries=(("x", "invalid_instance"),)),
    Case("json b64 not base64", instances({"id": "x", "b64": "***not base64***"}), 200,
         entries=(("x", "invalid_instance"),)),
    Case("json b64 bad padding", instances({"id": "x", "b64": b64(IMG)[:-2] + "="}), 200,
         entries=(("x", "invalid_instance"),)),
    Case("json b64 empty", instances({"id": "x", "b64": ""}), 200,
         entries=(("x", "invalid_instance"),)),
    Case("json b64 a number", instances({"id": "x", "b64": 12}), 200,
         entries=(("x", "invalid_instance"),)),
    Case("json b64 of a non-image", instances({"id": "x", "b64": b64(b"plain text")}), 200,
         entries=(("x", "invalid_image"),)),
    Case("json b64 with line breaks", instances({"id": "w", "b64": wrapped_b64(IMG)}), 200,
         entries=(("w", PREDICTION),)),
    Case("json s3 not a uri", instances({"id": "x", "s3": "http://bucket/key.jpg"}), 200,
         entries=(("x", "invalid_instance"),)),
    Case("json s3 without key", instances({"id": "x", "s3": "s3://bucket"}), 200,
         entries=(("x", "invalid_instance"),)),
    Case("json s3 forbidden bucket", instances({"id": "x", "s3": "s3://not-allowed/a.jpg"}),
         200, entries=(("x", "s3_forbidden"),)),
    Case("json mixed good and bad", instances({"id": "a", "b64": b64(IMG)},
                                              {"id": "b", "b64": "%%%"},
                                              {"id": "c", "s3": "s3://other/c.jpg"},
                                              {"b64": b64(png(5))}), 200,
         entries=(("a", PREDICTION), ("b", "invalid_instance"), ("c", "s3_forbidden"),
                  ("3", PREDICTION))),
    Case("json too many instances", instances(*[{"b64": "QUJD"}] * 1025), 400,
         "too_many_images"),
    # .npy.
    Case("npy wrong shape", raw("application/x-npy", npy(np.zeros((2, 3, 64, 64), np.uint8))),
         400, "invalid_shape"),
    Case("npy zero images", raw("application/x-npy", npy(np.zeros((0, 1, 64, 64), np.uint8))),
         400, "invalid_shape"),
    Case("npy one image without batch axis",
         raw("application/x-npy", npy(np.zeros((64, 64), np.uint8))), 400, "invalid_shape"),
    Case("rgb: npy gray shape", raw("application/x-npy", npy(np.zeros((1, 48, 40), np.uint8))),
         400, "invalid_shape", model="rgb"),
    Case("npy float64", raw("application/x-npy", npy(np.zeros((1, 1, 64, 64)))), 400,
         "invalid_dtype"),
    Case("npy int16", raw("application/x-npy", npy(np.zeros((1, 1, 64, 64), np.int16))), 400,
         "invalid_dtype"),
    Case("npy object array (pickle)", raw("application/x-npy", PICKLE_NPY), 400, "invalid_npy"),
    Case("plain pickle", raw("application/x-npy", pickle.dumps([1, 2, 3])), 400, "invalid_npy"),
    Case("npz archive", raw("application/x-npy", npz(np.zeros((1, 1, 64, 64), np.uint8))), 400,
         "invalid_npy"),
    Case("npy truncated",
         raw("application/x-npy", npy(np.zeros((2, 1, 64, 64), np.uint8))[:500]), 400,
         "invalid_npy"),
    Case("npy big-endian float32",
         raw("application/x-npy", npy(np.full((2, 1, 64, 64), 100, ">f4"))), 200,
         entries=(("0", PREDICTION), ("1", PREDICTION))),
    Case("npy too many images",
         raw_lazy("application/x-npy", lambda: npy(np.zeros((1025, 64, 64), np.uint8))), 400,
         "too_many_images"),
    # Multipart.
    Case("multipart zero-byte file", files(("a", "a.jpg", b"", "image/jpeg"),
                                           ("b", "b.jpg", IMG, "image/jpeg")), 200,
         entries=(("a", "invalid_image"), ("b", PREDICTION))),
    Case("multipart part without filename (curl -F 'a=<f')",
         files(("a", None, IMG, None), ("b", "b.jpg", IMG, "image/jpeg")), 200,
         entries=(("a", "invalid_image"), ("b", PREDICTION))),
    Case("multipart only text fields", files(("note", None, b"hello", None)), 400, "no_images"),
    Case("multipart text field next to a file",
         files(("note", None, b"hello", None), ("b", "b.jpg", IMG, "image/jpeg")), 200,
         entries=(("b", PREDICTION),)),
    Case("multipart duplicate names",
         files(("a", "a.jpg", IMG, "image/jpeg"), ("a", "b.jpg", png(6), "image/png")), 400,
         "duplicate_id"),
    Case("multipart duplicate names among others",
         files(("x", "x.jpg", IMG, "image/jpeg"), ("a", "a.jpg", IMG, "image/jpeg"),
               ("y", "y.jpg", IMG, "image/jpeg"), ("a", "b.jpg", IMG, "image/jpeg")), 400,
         "duplicate_id"),
    Case("multipart upper-case media type",
         hand_multipart(MP.replace("multipart/form-data", "MULTIPART/FORM-DATA"),
                        [("a", "a.jpg", "image/jpeg", IMG), ("b", "b.png", "image/png", png(7))]),
         200, entries=(("a", PREDICTION), ("b", PREDICTION))),
    Case("multipart mixed-case, no filename, text field",
         hand_multipart(MP.replace("multipart/form-data", "Multipart/Form-Data"),
                        [("a", None, None, IMG), ("note", None, None, b"hello"),
                         ("b", "b.jpg", None, b"not an image")]),
         200, entries=(("a", PREDICTION), ("b", "invalid_image"))),
    Case("multipart upper-case duplicate names",
         hand_multipart(f"MULTIPART/FORM-DATA; BOUNDARY={BOUNDARY}",
                        [("a", "a.jpg", "image/jpeg", IMG), ("a", "b.jpg", "image/jpeg", IMG)]),
         400, "duplicate_id"),
    Case("multipart upper-case without closing boundary",
         hand_multipart(MP.replace("multipart/form-data", "MULTIPART/FORM-DATA"),
                        [("a", "a.jpg", "image/jpeg", IMG), ("b", "b.jpg", "image/jpeg", IMG)],
                        close=False), 400, "invalid_multipart"),
    Case("multipart without boundary parameter",
         hand_multipart("multipart/form-data", [("a", "a.jpg", "image/jpeg", IMG)]), 400,
         "invalid_multipart"),
    Case("multipart with a boundary not in the body",
         hand_multipart("multipart/form-data; boundary=elsewhere",
                        [("a", "a.jpg", "image/jpeg", IMG)]), 400, "no_images"),
    Case("multipart one part without closing boundary",
         hand_multipart(MP, [("a", "a.jpg", "image/jpeg", IMG)], close=False), 400, "no_images"),
    # MMS limit (README "Known limits"): MMS drops the unterminated last part before the
    # handler runs; the handler cannot tell. This pins the behaviour down.
    Case("multipart two parts without closing boundary: MMS drops the last",
         hand_multipart(MP, [("a", "a.jpg", "image/jpeg", IMG), ("b", "b.jpg", "image/jpeg",
                                                                  IMG)], close=False), 200,
         entries=(("a", PREDICTION),)),
    Case("invocations: query parameters are not images",
         files(("a", "a.jpg", IMG, "image/jpeg")), 200, entries=(("a", PREDICTION),),
         path="/invocations?model_name=ferplus"),
]


# -- the good request after each --------------------------------------------------------------
def good_image(model: str) -> tuple[bytes, np.ndarray]:
    """A PNG of the model's exact size (decoded without resizing) and its model input."""
    channels, height, width = SHAPES[model]
    rng = np.random.RandomState(11 if model == "ferplus" else 12)
    shape = (height, width) if channels == 1 else (height, width, channels)
    pixels = np.clip(rng.randint(40, 200) + rng.normal(0, 30, shape), 0, 255).astype(np.uint8)
    x = pixels.astype(np.float32)
    x = x[None] if channels == 1 else x.transpose(2, 0, 1)
    if model == "rgb":
        mean = np.array(RGB_CONFIG["mean"], np.float32)[:, None, None]
        std = np.array(RGB_CONFIG["std"], np.float32)[:, None, None]
        x = (x * np.float32(RGB_CONFIG["scale"]) - mean) / std
    return encode(pixels, "PNG"), x


def assert_prediction(entry: dict) -> None:
    assert "error" not in entry, entry
    probs = entry["probabilities"]
    assert abs(sum(probs.values()) - 1.0) < 1e-5
    assert entry["label"] == max(probs, key=probs.get)


def worker_ids(mms, model: str) -> list[str]:
    return sorted(w["id"] for w in mms.model_status(model)["workers"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_answer_and_the_next_request_is_served(mms, ort_reference, case):
    workers = {m: worker_ids(mms, m) for m in ("ferplus", "rgb")}
    url = mms.inference_url + case.path if case.path else model_url(mms, case.model)
    response = requests.post(url, timeout=120, **case.request())
    assert response.status_code == case.status, response.text
    body = response.json()
    if case.status != 200:
        assert set(body) == {"error"}, body
        assert body["error"]["code"] == case.code, body
        assert body["error"]["message"]
    else:
        entries = body["predictions"]
        assert [e["id"] for e in entries] == [image_id for image_id, _ in case.entries], body
        for entry, (_, code) in zip(entries, case.entries):
            if code is PREDICTION:
                assert_prediction(entry)
            else:
                assert entry["error"]["code"] == code, entry
                assert entry["error"]["message"]

    data, model_input = good_image(case.model)
    good = requests.post(model_url(mms, case.model), data=data,
                         headers={"Content-Type": "image/png"}, timeout=120)
    assert good.status_code == 200, good.text
    (entry,) = good.json()["predictions"]
    assert entry["id"] == "0"
    served = np.array(list(entry["probabilities"].values()))
    np.testing.assert_allclose(served, ort_reference(case.model, model_input[None])[0],
                               atol=1e-4)
    assert {m: worker_ids(mms, m) for m in workers} == workers  # no worker died


def test_corpus_is_large_and_covers_every_content_type():
    assert len(CASES) >= 40
    sent = set()
    for case in CASES:
        kwargs = case.request()
        if "files" in kwargs:
            sent.add("multipart/form-data")
        elif "json" in kwargs:
            sent.add("application/json")
        elif isinstance(kwargs["data"], dict):
            sent.add("application/x-www-form-urlencoded")
        else:
            sent.add(kwargs["headers"].get("Content-Type", "").split(";")[0].lower())
    assert {"image/jpeg", "image/png", "application/x-image", "multipart/form-data",
            "application/json", "application/x-npy", "text/plain", ""} <= sent


def test_exif_orientation_is_applied_by_the_service(mms):
    """A picture stored sideways with EXIF orientation 6 answers like the upright one."""
    upright = np.zeros((64, 64), np.uint8)
    upright[:20] = 255  # a bright band at the top
    upright[20:, :32] = 120
    stored = np.rot90(upright, k=1)  # orientation 6: the viewer turns it 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(stored, "PNG", exif=exif.tobytes())
    answers = []
    for data in (encode(upright, "PNG"), rotated, encode(stored, "PNG")):
        response = requests.post(model_url(mms), data=data,
                                 headers={"Content-Type": "image/png"}, timeout=60)
        assert response.status_code == 200, response.text
        answers.append(response.json()["predictions"][0]["probabilities"])
    as_upright, as_rotated, ignored = (np.array(list(a.values())) for a in answers)
    np.testing.assert_allclose(as_rotated, as_upright, atol=1e-5)
    assert np.abs(ignored - as_upright).max() > 1e-4  # the orientation changes the answer


def test_json_entries_keep_their_ids_next_to_wrapped_base64(mms):
    document = {"instances": [{"id": "wrapped", "b64": wrapped_b64(IMG)},
                              {"id": "plain", "b64": b64(IMG)}]}
    response = requests.post(model_url(mms), data=json.dumps(document),
                             headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 200, response.text
    wrapped, plain = response.json()["predictions"]
    assert (wrapped["id"], plain["id"]) == ("wrapped", "plain")
    assert wrapped["probabilities"] == plain["probabilities"]


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_a_request_of_16_bit_bombs_stays_under_the_decode_memory_ceiling(mms):
    """Five 90 KB PNGs of 6300x6300 16-bit pixels: the worker's peak RSS grows by at most
    the stated ceiling (config.py, max_image_pixels: one image per decode thread, at most
    5 bytes per pixel), not by the ~1 GB per image of a full-size float64 conversion."""
    pids = worker_pids(mms, "rgb")
    assert pids, "no worker process found for the rgb model"
    before = {pid: status_kb(pid, "VmRSS") for pid in pids}
    for pid in pids:
        reset_peak(pid)
    bomb = png16()
    response = requests.post(model_url(mms, "rgb"), timeout=300, files=[
        (f"p{i}", (f"p{i}.png", bomb, "image/png")) for i in range(5)])
    assert response.status_code == 200, response.text
    for entry in response.json()["predictions"]:
        assert_prediction(entry)
    growth_kb = max(status_kb(pid, "VmHWM") - before[pid] for pid in pids)
    threads = max(1, min(4, os.cpu_count() or 1))  # the service's decode pool
    ceiling_kb = (threads * 40_000_000 * 5 + 64 * 2 ** 20) // 1024  # + 64 MB of slack
    assert growth_kb < ceiling_kb, f"worker peak grew by {growth_kb // 1024} MB"
