"""Encoded bytes -> model pixels (decode_image) and the normalisation of a batch."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from model_handler.config import ModelConfig
from model_handler.errors import ImageError
from model_handler.imaging import (PixelBudget, decode_image, finish_image, normalise,
                                   open_image)

from ..helpers.images import encode

RGB = ModelConfig(model_file="m.onnx", input_name="image", channels=3, height=48, width=40,
                  labels=tuple(f"class_{i}" for i in range(5)), color_mode="RGB")
GRAY = ModelConfig(model_file="m.onnx", input_name="Input3", channels=1, height=64, width=64,
                   labels=("a", "b"), color_mode="L")


def noise(width: int, height: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def gradient(width: int, height: int) -> np.ndarray:
    """Left-to-right ramp 0..255: smooth, so resizing and JPEG keep it recognisable."""
    row = np.linspace(0, 255, width)
    return np.tile(row, (height, 1)).round().astype(np.uint8)


def inputs() -> dict[str, bytes]:
    rgb = Image.fromarray(noise(333, 217, 3))
    rgba = Image.fromarray(noise(101, 77, 4, seed=1), "RGBA")
    palette = Image.fromarray(noise(59, 83, 3, seed=2)).convert("P", palette=Image.ADAPTIVE)
    gray16 = Image.fromarray(gradient(95, 61).astype(np.uint16) * 257)
    return {
        "jpeg_rgb": encode(rgb, "JPEG", quality=90),
        "jpeg_gray": encode(Image.fromarray(noise(131, 97, 1)), "JPEG"),
        "png_rgb": encode(rgb, "PNG"),
        "png_rgba": encode(rgba, "PNG"),
        "png_palette": encode(palette, "PNG"),
        "png_gray16": encode(gray16, "PNG"),
        "bmp_1x1": encode(Image.new("RGB", (1, 1), (10, 20, 30)), "BMP"),
        "gif_tall": encode(Image.fromarray(noise(7, 301, 3, seed=3)).convert("P"), "GIF"),
    }


INPUTS = inputs()


@pytest.mark.parametrize("cfg", [RGB, GRAY], ids=["rgb", "gray"])
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_any_readable_image_becomes_chw_uint8_of_the_model_size(name, cfg):
    pixels = decode_image(INPUTS[name], cfg)
    assert pixels.shape == (cfg.channels, cfg.height, cfg.width)
    assert pixels.dtype == np.uint8


def test_png_of_the_model_size_is_decoded_exactly():
    array = noise(40, 48, 3, seed=5)
    pixels = decode_image(encode(Image.fromarray(array), "PNG"), RGB)
    np.testing.assert_array_equal(pixels, array.transpose(2, 0, 1))


def test_gray_png_of_the_model_size_is_decoded_exactly():
    array = noise(64, 64, 1, seed=6)
    pixels = decode_image(encode(Image.fromarray(array), "PNG"), GRAY)
    np.testing.assert_array_equal(pixels[0], array)


def test_colour_image_is_converted_to_gray_for_a_gray_model():
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    pixels = decode_image(encode(red, "PNG"), GRAY)
    # ITU-R 601-2 luma, what Pillow's convert("L") uses: 299/1000 of red.
    assert np.all(pixels == 76)


def test_gray_image_is_replicated_to_three_channels_for_an_rgb_model():
    array = noise(40, 48, 1, seed=7)
    pixels = decode_image(encode(Image.fromarray(array), "PNG"), RGB)
    for channel in pixels:
        np.testing.assert_array_equal(channel, array)


def test_rgba_keeps_the_colour_channels():
    array = noise(40, 48, 4, seed=8)
    pixels = decode_image(encode(Image.fromarray(array, "RGBA"), "PNG"), RGB)
    np.testing.assert_array_equal(pixels, array[..., :3].transpose(2, 0, 1))


def test_palette_image_gets_its_palette_colours():
    img = Image.new("P", (40, 48))
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    img.paste(1, (0, 0, 20, 48))  # left half: palette entry 1
    pixels = decode_image(encode(img, "PNG"), RGB)
    np.testing.assert_array_equal(pixels[:, 10, 5], [200, 100, 50])
    np.testing.assert_array_equal(pixels[:, 10, 35], [0, 0, 0])


def test_16_bit_gray_is_scaled_to_8_bit_not_clipped():
    ramp8 = gradient(64, 64)
    img16 = Image.fromarray(ramp8.astype(np.uint16) * 257)  # 0..65535
    assert img16.mode.startswith("I")
    pixels = decode_image(encode(img16, "PNG"), GRAY)[0]
    np.testing.assert_allclose(pixels.astype(int), ramp8.astype(int), atol=1)


def test_16_bit_gray_to_rgb_model():
    img16 = Image.fromarray(np.full((48, 40), 32896, np.uint16))  # 128 * 257
    pixels = decode_image(encode(img16, "PNG"), RGB)
    assert np.all(pixels == 128)


def test_downscaled_jpeg_keeps_the_picture():
    """A smooth gradient stays a gradient after JPEG draft decoding and resizing."""
    ramp = np.repeat(gradient(640, 480)[..., None], 3, axis=2)
    pixels = decode_image(encode(Image.fromarray(ramp), "JPEG", quality=95), RGB)
    expected = gradient(40, 48)
    for channel in pixels:
        assert np.abs(channel.astype(int) - expected.astype(int)).max() <= 12


def test_truncated_jpeg_is_invalid_image():
    data = encode(Image.fromarray(noise(300, 200, 3)), "JPEG")
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2], RGB)
    assert info.value.code == "invalid_image"
    assert "truncated" in info.value.message


def test_truncated_png_is_invalid_image():
    data = encode(Image.fromarray(noise(300, 200, 3)), "PNG")
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 3], RGB)
    assert info.value.code == "invalid_image"


@pytest.mark.parametrize("data", [b"", b"hello, world", b"%PDF-1.4\n" + b"0" * 200,
                                  b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"])
def test_non_image_is_invalid_image_with_a_clear_message(data):
    with pytest.raises(ImageError) as info:
        decode_image(data, RGB)
    assert info.value.code == "invalid_image"
    assert "image" in info.value.message
    assert info.value.entry("f1")["error"]["code"] == "invalid_image"


def test_non_image_message_names_readable_formats():
    with pytest.raises(ImageError) as info:
        decode_image(b"definitely not an image", RGB)
    assert "cannot identify image file" in info.value.message
    assert "JPEG" in info.value.message and "PNG" in info.value.message


def test_image_over_the_pixel_limit_is_image_too_large_before_decoding():
    cfg = dataclasses.replace(RGB, max_image_pixels=100 * 100)
    data = encode(Image.new("RGB", (101, 100)), "PNG")
    with pytest.raises(ImageError) as info:
        decode_image(data, cfg)
    assert info.value.code == "image_too_large"
    assert "101x100" in info.value.message and "10000" in info.value.message
    # Exactly at the limit is fine.
    ok = decode_image(encode(Image.new("RGB", (100, 100)), "PNG"), cfg)
    assert ok.shape == (3, 48, 40)


def test_pixel_limit_is_checked_from_the_header_of_a_truncated_file():
    """A huge declared size is refused even though the pixel data is absent (a bomb)."""
    cfg = dataclasses.replace(RGB, max_image_pixels=1000)
    data = encode(Image.new("L", (2000, 2000)), "PNG")[:100]
    with pytest.raises(ImageError) as info:
        decode_image(data, cfg)
    assert info.value.code == "image_too_large"


# -- normalise --------------------------------------------------------------------------------
def test_normalise_applies_scale_mean_std_per_channel_on_selected_rows_only():
    cfg = dataclasses.replace(RGB, height=2, width=2, scale=1 / 255,
                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    rng = np.random.RandomState(0)
    batch = rng.randint(0, 256, (4, 3, 2, 2)).astype(np.float32)
    original = batch.copy()
    normalise(batch, np.array([0, 2]), cfg)
    mean = np.array(cfg.mean).reshape(3, 1, 1)
    std = np.array(cfg.std).reshape(3, 1, 1)
    for row in (0, 2):
        expected = (original[row] / 255.0 - mean) / std
        np.testing.assert_allclose(batch[row], expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(batch[[1, 3]], original[[1, 3]])  # float32 inputs untouched


def test_normalise_single_mean_and_std_broadcast_over_channels():
    cfg = dataclasses.replace(RGB, height=1, width=1, scale=2.0, mean=(10.0,), std=(4.0,))
    batch = np.array([[[[1.0]], [[5.0]], [[9.0]]]], dtype=np.float32)
    normalise(batch, np.array([0]), cfg)
    np.testing.assert_allclose(batch[0, :, 0, 0], [-2.0, 0.0, 2.0])


def test_normalise_identity_config_and_no_rows_leave_the_batch_alone():
    batch = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    before = batch.copy()
    normalise(batch, np.array([0, 1]), RGB)  # scale 1, mean 0, std 1
    np.testing.assert_array_equal(batch, before)
    scaling = dataclasses.replace(RGB, scale=0.5)
    normalise(batch, np.array([], dtype=np.intp), scaling)
    np.testing.assert_array_equal(batch, before)
    normalise(batch, np.array([1]), scaling)
    np.testing.assert_array_equal(batch[1], before[1] * 0.5)
    np.testing.assert_array_equal(batch[0], before[0])


# -- EXIF orientation (issue 9, item 12) -------------------------------------------------------
def with_orientation(img: Image.Image, orientation: int, fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))


def quadrants(width: int, height: int) -> Image.Image:
    """Four flat quadrants of distinct grays: every flip and rotation gives another picture."""
    array = np.empty((height, width), np.uint8)
    array[:height // 2, :width // 2] = 20
    array[:height // 2, width // 2:] = 90
    array[height // 2:, :width // 2] = 160
    array[height // 2:, width // 2:] = 230
    return Image.fromarray(array)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation, fmt):
    stored = quadrants(96, 160)
    data = with_orientation(stored, orientation, fmt)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L")
    expected = np.asarray(upright.resize((GRAY.width, GRAY.height), Image.BILINEAR))
    pixels = decode_image(data, GRAY)[0]
    # Quadrant centres: flat areas, exact for PNG, within JPEG's error otherwise.
    centres = [(16, 16), (16, 48), (48, 16), (48, 48)]
    got = [int(pixels[y, x]) for y, x in centres]
    want = [int(expected[y, x]) for y, x in centres]
    assert np.abs(np.subtract(got, want)).max() <= (0 if fmt == "PNG" else 4), (got, want)
    assert len(set(want)) == 4


def test_exif_orientation_of_a_large_jpeg_keeps_enough_resolution():
    """A rotated JPEG is drafted so that both upright sides still cover the model input."""
    cfg = dataclasses.replace(RGB, height=48, width=16)
    stored = quadrants(640, 120).convert("RGB")  # upright: 120 wide, 640 high
    data = with_orientation(stored, 6, "JPEG")
    opened = open_image(data, cfg)
    assert min(opened.image.size) >= max(cfg.width, cfg.height)
    pixels = decode_image(data, cfg)
    assert pixels.shape == (3, 48, 16)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_is_ignored_not_an_error():
    data = encode(quadrants(64, 64), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage")
    pixels = decode_image(data, GRAY)
    assert pixels.shape == (1, 64, 64)
    assert abs(int(pixels[0, 16, 16]) - 20) <= 4


# -- cheap images that are expensive to decode (issue 9, item 8) ------------------------------
def test_large_16_bit_png_is_reduced_before_the_8_bit_conversion():
    """The float conversion runs on the reduced image: numpy allocates a small fraction of
    the full image (a full-size float64 copy would be 8 bytes per pixel)."""
    import tracemalloc

    size = 2000
    ramp = (np.linspace(0, 65535, size)[None, :] * np.ones((size, 1))).astype(np.uint16)
    data = encode(Image.fromarray(ramp), "PNG")
    tracemalloc.start()
    try:
        pixels = decode_image(data, GRAY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size * size  # < 1 byte per pixel of the file, i.e. < 4 MB
    # Left-to-right ramp 0..255 survives: monotone, from dark to bright.
    row = pixels[0, 32].astype(int)
    assert row[0] < 10 and row[-1] > 245 and np.all(np.diff(row) >= 0)


@pytest.mark.parametrize("mode, fmt", [("RGB", "PNG"), ("L", "PNG"), ("RGBA", "PNG"),
                                       ("RGB", "BMP"), ("I;16", "PNG"), ("P", "PNG"),
                                       ("CMYK", "TIFF"), ("RGB", "WEBP")])
def test_reduced_decoding_matches_resizing_the_full_image(mode, fmt):
    """Reducing first changes the model input by at most a few levels."""
    cfg = dataclasses.replace(RGB, height=48, width=40)
    rng = np.random.RandomState(3)
    smooth = np.kron(rng.randint(0, 256, (12, 10, 3)), np.ones((50, 50, 1))).astype(np.uint8)
    img = Image.fromarray(smooth)  # 500 x 600
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    elif mode == "P":
        img = img.convert("P", palette=Image.ADAPTIVE)
    else:
        img = img.convert(mode)
    data = encode(img, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    reference = Image.open(io.BytesIO(data))
    if mode == "I;16":
        reference = Image.fromarray((np.asarray(reference) / 257).round().astype(np.uint8))
    reference = np.asarray(reference.convert("RGB").resize((40, 48), Image.BILINEAR))
    pixels = decode_image(data, cfg).transpose(1, 2, 0).astype(int)
    assert np.abs(pixels - reference.astype(int)).mean() < 3
    assert np.abs(pixels - reference.astype(int)).max() < 40


def test_open_image_counts_the_pixels_decoding_will_produce():
    png = open_image(encode(Image.new("RGB", (1000, 700)), "PNG"), GRAY)
    assert png.pixels == 700_000
    png.close()
    jpeg = open_image(encode(Image.new("RGB", (1024, 768)), "JPEG"), GRAY)
    assert jpeg.pixels == 128 * 96  # drafted at 1/8: still covers 64 x 64
    jpeg.close()


def test_pixel_budget_refuses_what_does_not_fit_and_lets_later_smaller_images_through():
    budget = PixelBudget(100 * 100 + 50 * 50)
    big = encode(Image.new("L", (100, 100), 50), "PNG")
    bigger = encode(Image.new("L", (100, 101), 50), "PNG")
    small = encode(Image.new("L", (50, 50), 50), "PNG")
    first = open_image(big, GRAY, budget)
    with pytest.raises(ImageError) as info:
        open_image(bigger, GRAY, budget)
    assert info.value.code == "image_too_large"
    assert "max_request_pixels" in info.value.message and "12500" in info.value.message
    assert budget.left == 50 * 50
    last = open_image(small, GRAY, budget)
    assert budget.left == 0
    for opened in (first, last):
        assert finish_image(opened, GRAY).shape == (1, 64, 64)
    with pytest.raises(ImageError):
        open_image(encode(Image.new("L", (1, 1)), "PNG"), GRAY, budget)


def test_max_request_pixels_is_a_config_key(tmp_path):
    from frame_infer.models import testgen
    from model_handler.config import ConfigError, load_config

    testgen.write_test_model("rgb", tmp_path / "rgb.onnx")
    assert load_config(tmp_path, environ={}).max_request_pixels == 200_000_000
    (tmp_path / "model-config.json").write_text('{"max_request_pixels": 5000000}')
    assert load_config(tmp_path, environ={}).max_request_pixels == 5_000_000
    env = {"FRAME_INFER_MAX_REQUEST_PIXELS": "7"}
    assert load_config(tmp_path, environ=env).max_request_pixels == 7
    with pytest.raises(ConfigError, match="max_request_pixels must be at least 1"):
        load_config(tmp_path, environ={"FRAME_INFER_MAX_REQUEST_PIXELS": "0"})
