"""Request decoders, one per Content-Type (API.md "Request bodies")."""
from __future__ import annotations

import base64
import dataclasses
import io
import json

import numpy as np
import pytest

from model_handler import codecs
from model_handler.codecs import S3Ref, decode_request, media_type, request_error_from
from model_handler.config import ModelConfig
from model_handler.errors import ImageError, RequestError

from ..helpers.multipart import BOUNDARY, multipart_body

RGB = ModelConfig(model_file="m.onnx", input_name="image", channels=3, height=48, width=40,
                  labels=tuple(f"class_{i}" for i in range(5)), color_mode="RGB")
GRAY = ModelConfig(model_file="m.onnx", input_name="Input3", channels=1, height=64, width=64,
                   labels=("a", "b"), color_mode="L")

JPEG_BYTES = b"\xff\xd8\xff\xe0fake-jpeg"
PNG_BYTES = b"\x89PNG\r\n\x1a\nfake-png"


def json_request(document) -> dict:
    return {"body": json.dumps(document).encode("utf-8")}


def npy_request(array: np.ndarray, **save_kwargs) -> dict:
    buffer = io.BytesIO()
    np.save(buffer, array, **save_kwargs)
    return {"body": bytearray(buffer.getvalue())}  # MMS hands raw bodies as bytearray


def request_error(request: dict, content_type: str | None, cfg=RGB) -> RequestError:
    with pytest.raises(RequestError) as info:
        decode_request(request, content_type, cfg)
    return info.value


# -- single encoded image -------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/x-image"])
def test_single_image_body_is_one_image_with_id_0(content_type):
    items = decode_request({"body": bytearray(JPEG_BYTES)}, content_type, RGB)
    assert items == [("0", JPEG_BYTES)]
    assert isinstance(items[0][1], bytes)


def test_single_image_ignores_extra_keys_such_as_query_parameters():
    items = decode_request({"body": PNG_BYTES, "model_name": b"rgb"}, "image/png", RGB)
    assert items == [("0", PNG_BYTES)]


@pytest.mark.parametrize("request_dict", [{}, {"body": b""}, {"data": b"x"}])
def test_single_image_without_body_is_400_no_images(request_dict):
    error = request_error(request_dict, "image/jpeg")
    assert (error.status, error.code) == (400, "no_images")


# -- multipart --------------------------------------------------------------------------------
def test_multipart_keeps_every_field_in_order_with_its_name_as_id():
    request = {"frame_000003": bytearray(b"three"), "frame_000001": b"one",
               "frame_000002": "two"}
    items = decode_request(request, "multipart/form-data; boundary=xyz", RGB)
    assert items == [("frame_000003", b"three"), ("frame_000001", b"one"),
                     ("frame_000002", b"two")]
    assert all(isinstance(source, bytes) for _, source in items)


def test_multipart_without_parts_is_400():
    error = request_error({}, "multipart/form-data; boundary=xyz")
    assert (error.status, error.code) == (400, "no_images")


# -- JSON -------------------------------------------------------------------------------------
def test_json_b64_and_s3_instances_with_ids_defaulting_to_index():
    document = {"instances": [
        {"id": "first", "b64": base64.b64encode(JPEG_BYTES).decode()},
        {"s3": "s3://frames/video/frame_000002.jpg"},
        {"id": 7, "b64": base64.b64encode(PNG_BYTES).decode()},
        {"b64": base64.b64encode(b"x").decode()},
    ]}
    items = decode_request(json_request(document), "application/json", RGB)
    assert [image_id for image_id, _ in items] == ["first", "1", "7", "3"]
    assert items[0][1] == JPEG_BYTES
    assert items[1][1] == S3Ref("frames", "video/frame_000002.jpg")
    assert items[1][1].uri == "s3://frames/video/frame_000002.jpg"
    assert items[2][1] == PNG_BYTES
    assert items[3][1] == b"x"


def test_json_id_zero_is_kept_not_replaced_by_the_index():
    document = {"instances": [{"b64": base64.b64encode(b"a").decode()},
                              {"id": 0, "b64": base64.b64encode(b"b").decode()}]}
    items = decode_request(json_request(document), "application/json", RGB)
    assert [image_id for image_id, _ in items] == ["0", "0"]


@pytest.mark.parametrize("instance, fragment", [
    ({"id": "x", "b64": "not base64!!"}, "base64"),
    ({"id": "x", "b64": "QUJD\u00e9"}, "base64"),
    ({"id": "x", "b64": 12}, "base64"),
    ({"id": "x", "b64": ""}, "empty"),
    ({"id": "x"}, "neither"),
    ({"id": "x", "url": "http://example.com/a.jpg"}, "neither"),
    ({"id": "x", "s3": "http://bucket/key"}, "s3://bucket/key"),
    ({"id": "x", "s3": "s3://bucket-only"}, "bucket and a key"),
    ({"id": "x", "s3": "s3:///key"}, "bucket and a key"),
    ({"id": "x", "s3": 5}, "s3://bucket/key"),
])
def test_json_bad_instance_is_an_invalid_instance_entry_in_place(instance, fragment):
    good = {"id": "good", "b64": base64.b64encode(JPEG_BYTES).decode()}
    items = decode_request(json_request({"instances": [good, instance, good]}),
                           "application/json", RGB)
    assert [image_id for image_id, _ in items] == ["good", "x", "good"]
    assert items[0][1] == items[2][1] == JPEG_BYTES
    error = items[1][1]
    assert isinstance(error, ImageError)
    assert error.code == "invalid_instance"
    assert fragment in error.message
    assert error.entry("x") == {"id": "x", "error": {"code": "invalid_instance",
                                                     "message": error.message}}


def test_json_instance_that_is_not_an_object_gets_the_index_as_id():
    items = decode_request(json_request({"instances": ["abc", 3]}), "application/json", RGB)
    assert [image_id for image_id, _ in items] == ["0", "1"]
    assert all(isinstance(s, ImageError) and s.code == "invalid_instance" for _, s in items)


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00garbage", b'{"instances": [}'])
def test_malformed_json_is_400_invalid_json(body):
    error = request_error({"body": body}, "application/json")
    assert (error.status, error.code) == (400, "invalid_json")
    assert "instances" in error.message  # says what to send instead


@pytest.mark.parametrize("document", [{"instances": []}, {}, {"instances": {"a": 1}},
                                      [{"b64": "QUJD"}], "instances", {"inputs": [1]}])
def test_json_without_instances_is_400_no_images(document):
    error = request_error(json_request(document), "application/json")
    assert (error.status, error.code) == (400, "no_images")


def test_json_body_given_as_str_is_decoded():
    body = json.dumps({"instances": [{"b64": base64.b64encode(b"z").decode()}]})
    assert decode_request({"body": body}, "application/json", RGB) == [("0", b"z")]


# -- .npy -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_npy_nchw_gives_one_array_per_image_with_index_ids(dtype):
    array = np.arange(2 * 3 * 48 * 40).reshape(2, 3, 48, 40).astype(dtype)
    items = decode_request(npy_request(array), "application/x-npy", RGB)
    assert [image_id for image_id, _ in items] == ["0", "1"]
    for i, (_, source) in enumerate(items):
        assert source.shape == (3, 48, 40)
        assert source.dtype == dtype
        np.testing.assert_array_equal(source, array[i])


def test_npy_nhw_is_accepted_for_a_one_channel_model():
    array = np.random.RandomState(0).randint(0, 256, (3, 64, 64)).astype(np.uint8)
    items = decode_request(npy_request(array), "application/x-npy", GRAY)
    assert len(items) == 3
    assert all(source.shape == (1, 64, 64) for _, source in items)
    np.testing.assert_array_equal(items[2][1][0], array[2])


def test_npy_nhw_is_refused_for_a_three_channel_model():
    error = request_error(npy_request(np.zeros((2, 48, 40), np.uint8)), "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_shape")


@pytest.mark.parametrize("shape", [(2, 3, 40, 48), (3, 48, 40), (2, 1, 48, 40), (0, 3, 48, 40),
                                   (2, 3, 48, 40, 1), (6,)])
def test_npy_wrong_shape_is_400_naming_the_expected_shape(shape):
    error = request_error(npy_request(np.zeros(shape, np.float32)), "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_shape")
    assert "(N, 3, 48, 40)" in error.message
    assert str(shape) in error.message  # names what was sent


def test_npy_wrong_shape_for_gray_model_names_both_accepted_shapes_and_the_sent_one():
    error = request_error(npy_request(np.zeros((2, 64, 65), np.uint8)), "application/x-npy",
                          GRAY)
    assert (error.status, error.code) == (400, "invalid_shape")
    assert "(N, 1, 64, 64)" in error.message and "(N, 64, 64)" in error.message
    assert "(2, 64, 65)" in error.message


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.float16, np.uint16, bool])
def test_npy_wrong_dtype_is_400(dtype):
    error = request_error(npy_request(np.zeros((1, 3, 48, 40), dtype)), "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_dtype")
    assert np.dtype(dtype).name in error.message


UNPICKLED: list = []


def _record_unpickling(marker):
    UNPICKLED.append(marker)
    return marker


class _Tripwire:
    """Unpickling this object calls ``_record_unpickling``: proof that bytes were unpickled."""

    def __reduce__(self):
        return (_record_unpickling, ("unpickled!",))


def test_npy_object_array_is_refused_and_never_unpickled():
    UNPICKLED.clear()
    array = np.empty((1, 3, 48, 40), dtype=object)
    array.fill(_Tripwire())
    error = request_error(npy_request(array, allow_pickle=True), "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_npy")
    assert UNPICKLED == []


def test_plain_pickle_body_is_refused_and_never_unpickled():
    import pickle

    UNPICKLED.clear()
    error = request_error({"body": pickle.dumps([_Tripwire()])}, "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_npy")
    assert UNPICKLED == []


@pytest.mark.parametrize("body", [b"not an npy file", b"\x93NUMPY\x01\x00garbage"])
def test_unreadable_npy_is_400(body):
    error = request_error({"body": body}, "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_npy")


def test_npz_archive_is_refused():
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((1, 3, 48, 40), np.float32))
    error = request_error({"body": buffer.getvalue()}, "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_npy")


# -- content types ----------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "image/gif", "application/octet-stream",
                                          "", None, "application/jsonx", "json"])
def test_unsupported_content_type_is_415(content_type):
    error = request_error({"body": JPEG_BYTES}, content_type)
    assert error.status == 415
    assert error.code == "unsupported_content_type"
    assert "image/jpeg" in error.message and "application/x-npy" in error.message
    assert error.body() == {"error": {"code": "unsupported_content_type",
                                      "message": error.message}}


@pytest.mark.parametrize("raw, expected", [
    ("image/jpeg", "image/jpeg"),
    ("Image/JPEG", "image/jpeg"),
    ("  application/json ; charset=utf-8", "application/json"),
    ("Multipart/Form-Data; boundary=----abc", "multipart/form-data"),
    ("application/x-npy;version=1.0", "application/x-npy"),
    ("", ""),
    (None, ""),
])
def test_media_type_drops_parameters_and_case(raw, expected):
    assert media_type(raw) == expected


def test_content_type_with_parameters_and_case_selects_the_decoder():
    body = json.dumps({"instances": [{"b64": base64.b64encode(b"q").decode()}]})
    items = decode_request({"body": body.encode()}, "Application/JSON; charset=UTF-8", RGB)
    assert items == [("0", b"q")]
    assert decode_request({"body": b"img"}, "IMAGE/PNG", RGB) == [("0", b"img")]


def test_every_documented_content_type_has_a_decoder():
    assert set(codecs.DECODERS) == {"image/jpeg", "image/png", "application/x-image",
                                    "multipart/form-data", "application/json",
                                    "application/x-npy"}


# -- limits and error mapping -----------------------------------------------------------------
def test_more_images_than_max_images_per_request_is_400():
    cfg = dataclasses.replace(RGB, max_images_per_request=3)
    parts = {f"frame_{i}": b"x" for i in range(4)}
    error = request_error(parts, "multipart/form-data", cfg)
    assert (error.status, error.code) == (400, "too_many_images")
    assert "4" in error.message and "3" in error.message
    parts.pop("frame_3")
    assert len(decode_request(parts, "multipart/form-data", cfg)) == 3


def test_max_images_per_request_applies_to_json_and_npy():
    cfg = dataclasses.replace(RGB, max_images_per_request=2)
    document = {"instances": [{"b64": "QUJD"}] * 3}
    assert request_error(json_request(document), "application/json", cfg).code == \
        "too_many_images"
    array = np.zeros((3, 3, 48, 40), np.uint8)
    assert request_error(npy_request(array), "application/x-npy", cfg).code == "too_many_images"


def test_request_error_from_maps_unexpected_exceptions_to_400():
    original = RequestError(415, "unsupported_content_type", "no")
    assert request_error_from(original) is original
    mapped = request_error_from(TypeError("cannot convert 'dict' object to bytes"))
    assert (mapped.status, mapped.code) == (400, "invalid_request")
    assert "cannot convert" in mapped.message


def test_multipart_skips_query_parameters_and_text_fields():
    """MMS hands /invocations?model_name=x over as a field with no content type."""
    request = {"model_name": bytearray(b"ferplus"), "frame_1": bytearray(b"a"),
               "note": bytearray(b"text"), "frame_2": bytearray(b"b")}
    part_types = {"model_name": "", "frame_1": "image/jpeg", "note": "",
                  "frame_2": "application/octet-stream"}
    items = decode_request(request, "multipart/form-data; boundary=x", RGB, part_types)
    assert [name for name, _ in items] == ["frame_1", "frame_2"]
    with pytest.raises(RequestError) as excinfo:
        decode_request({"model_name": bytearray(b"x")}, "multipart/form-data", RGB,
                       {"model_name": ""})
    assert excinfo.value.status == 400 and "file part" in excinfo.value.message


# -- base64 with line breaks, big-endian .npy (issue 9, item 12) -----------------------------
@pytest.mark.parametrize("wrap", ["\n", "\r\n"])
def test_b64_wrapped_in_lines_is_accepted(wrap):
    data = bytes(range(256)) * 3
    encoded = base64.b64encode(data).decode()
    lines = wrap.join(encoded[i:i + 76] for i in range(0, len(encoded), 76)) + wrap
    assert wrap in lines
    items = decode_request(json_request({"instances": [{"id": "w", "b64": lines}]}),
                           "application/json", RGB)
    assert items == [("w", data)]


@pytest.mark.parametrize("garbage", ["QUJD IA==", "QUJD\tIA==", "QUJD*IA==", "QUJDIA=\n=x",
                                     "QUJD\n-_==", "QUJDIA"])
def test_b64_stays_strict_apart_from_line_breaks(garbage):
    items = decode_request(json_request({"instances": [{"id": "g", "b64": garbage}]}),
                           "application/json", RGB)
    (image_id, error), = items
    assert isinstance(error, ImageError) and error.code == "invalid_instance"
    assert "base64" in error.message


@pytest.mark.parametrize("dtype", [">f4", "<f4"])
def test_npy_float32_of_either_byte_order_is_accepted_as_native_float32(dtype):
    array = np.random.RandomState(1).uniform(-3, 3, (2, 3, 48, 40)).astype(dtype)
    items = decode_request(npy_request(array), "application/x-npy", RGB)
    assert [image_id for image_id, _ in items] == ["0", "1"]
    for i, (_, source) in enumerate(items):
        assert source.dtype == np.float32 and source.dtype.isnative
        np.testing.assert_array_equal(source, array[i].astype(np.float32))


@pytest.mark.parametrize("dtype", [">f8", ">i4", ">u2"])
def test_npy_big_endian_of_another_dtype_is_still_invalid_dtype(dtype):
    error = request_error(npy_request(np.zeros((1, 3, 48, 40), dtype)), "application/x-npy")
    assert (error.status, error.code) == (400, "invalid_dtype")
    assert np.dtype(dtype).str in error.message or np.dtype(dtype).name in error.message


# -- multipart: what MMS hands over (issue 9, item 11) ---------------------------------------
def unparsed(body: bytes, content_type: str) -> tuple[dict, dict]:
    """A multipart request MMS did not parse (it parses only lower-case types with a
    boundary): the raw body under 'body', whose part type is the media type as sent."""
    return {"body": bytearray(body)}, {"body": content_type.split(";")[0].strip()}


@pytest.mark.parametrize("content_type", [f"MULTIPART/FORM-DATA; boundary={BOUNDARY}",
                                          f"Multipart/Form-Data; BOUNDARY=\"{BOUNDARY}\""])
def test_multipart_mms_did_not_parse_is_parsed_by_the_service(content_type):
    body = multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES),
                           ("note", None, None, b"just text"),
                           ("raw", None, None, b"\xff\xd8\xff binary without a filename"),
                           ("b", "b.png", None, PNG_BYTES + b"\r\n--not-the-boundary")],
                          preamble=b"ignored preamble\r\n")
    request, part_types = unparsed(body, content_type)
    items = decode_request(request, content_type, RGB, part_types)
    assert items == [("a", JPEG_BYTES), ("raw", b"\xff\xd8\xff binary without a filename"),
                     ("b", PNG_BYTES + b"\r\n--not-the-boundary")]


def test_multipart_unparsed_keeps_query_parameters_out():
    content_type = f"MULTIPART/FORM-DATA; boundary={BOUNDARY}"
    request, part_types = unparsed(multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES)]),
                                   content_type)
    request["model_name"], part_types["model_name"] = bytearray(b"ferplus"), ""
    assert decode_request(request, content_type, RGB, part_types) == [("a", JPEG_BYTES)]


@pytest.mark.parametrize("body, content_type, code, fragment", [
    (multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES)]), "multipart/form-data",
     "invalid_multipart", "no boundary"),
    (multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES)]), "MULTIPART/FORM-DATA",
     "invalid_multipart", "no boundary"),
    (multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES),
                     ("b", "b.jpg", "image/jpeg", JPEG_BYTES)], close=False),
     f"MULTIPART/FORM-DATA; boundary={BOUNDARY}", "invalid_multipart", "closing boundary"),
    (multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES)])[:-6],
     f"MULTIPART/FORM-DATA; boundary={BOUNDARY}", "invalid_multipart", "closing boundary"),
    (multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES)]),
     "MULTIPART/FORM-DATA; boundary=other", "invalid_multipart", "--other"),
    (multipart_body([("a", "a.jpg", "image/jpeg", JPEG_BYTES),
                     ("a", "b.jpg", "image/jpeg", PNG_BYTES)]),
     f"MULTIPART/FORM-DATA; boundary={BOUNDARY}", "duplicate_id", "['a']"),
    (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\nxx\r\n--{BOUNDARY}--\r\n".encode(),
     f"MULTIPART/FORM-DATA; boundary={BOUNDARY}", "invalid_multipart", "part 1 has no name"),
    (multipart_body([("note", None, None, b"text only")]),
     f"MULTIPART/FORM-DATA; boundary={BOUNDARY}", "no_images", "no file parts"),
    (b"", f"MULTIPART/FORM-DATA; boundary={BOUNDARY}", "no_images", "empty"),
])
def test_multipart_unparsed_problems_are_400_naming_them(body, content_type, code, fragment):
    request, part_types = unparsed(body, content_type)
    with pytest.raises(RequestError) as info:
        decode_request(request, content_type, RGB, part_types)
    assert (info.value.status, info.value.code) == (400, code)
    assert fragment in info.value.message


def test_multipart_text_field_that_was_not_text_gets_an_error_entry_in_place():
    """``curl -F 'b=<img.jpg'``: no filename, so MMS decodes the bytes as UTF-8 text."""
    mangled = (b"\xff\xd8\xff\xe0" + b"JFIF").decode("utf-8", "replace").encode("utf-8")
    request = {"model_name": bytearray(b"ferplus"), "a": bytearray(JPEG_BYTES),
               "b": bytearray(mangled), "note": bytearray(b"hello"), "c": bytearray(PNG_BYTES)}
    part_types = {"model_name": "", "a": "image/jpeg", "b": "", "note": "",
                  "c": "application/octet-stream"}
    items = decode_request(request, "multipart/form-data; boundary=x", RGB, part_types)
    assert [name for name, _ in items] == ["a", "b", "c"]
    error = items[1][1]
    assert isinstance(error, ImageError) and error.code == "invalid_image"
    assert "no filename" in error.message and "b=@frame.jpg" in error.message


def predict(request_dicts: list[dict], parameter_names: list[list[str]], content_type: str,
            part_types: list[dict]) -> list:
    """Calls decoders the way MMS 1.1.11's ``Service.predict`` calls the handler: its
    locals ``batch`` (the parameters as sent) and ``input_batch`` (the merged dicts)."""
    batch = [{"parameters": [{"name": n, "contentType": "", "value": b""} for n in names]}
             for names in parameter_names]
    input_batch = request_dicts
    results = []
    for request, types in zip(input_batch, part_types):
        try:
            results.append(decode_request(request, content_type, RGB, types))
        except RequestError as exc:
            results.append(exc)
    assert batch  # the frame's locals are what the service reads
    return results


def test_multipart_repeated_field_name_is_400_duplicate_id_under_mms():
    """MMS keeps only the last part of a repeated name; its caller's frame still lists both."""
    first = {"a": bytearray(PNG_BYTES), "b": bytearray(JPEG_BYTES)}
    second = {"a": bytearray(PNG_BYTES), "b": bytearray(JPEG_BYTES)}
    types = {"a": "image/png", "b": "image/jpeg"}
    results = predict([first, second], [["a", "b"], ["a", "b", "a"]],
                      "multipart/form-data; boundary=x", [types, types])
    assert results[0] == [("a", PNG_BYTES), ("b", JPEG_BYTES)]
    assert isinstance(results[1], RequestError)
    assert (results[1].status, results[1].code) == (400, "duplicate_id")
    assert "['a']" in results[1].message


def test_multipart_repeated_query_parameter_model_name_is_not_a_duplicate():
    request = {"model_name": bytearray(b"x"), "a": bytearray(PNG_BYTES)}
    (items,) = predict([request], [["model_name", "model_name", "a"]],
                       "multipart/form-data; boundary=x", [{"model_name": "", "a": "image/png"}])
    assert items == [("a", PNG_BYTES)]


def test_names_as_sent_is_none_outside_mms():
    assert codecs.names_as_sent({"a": b""}) is None
