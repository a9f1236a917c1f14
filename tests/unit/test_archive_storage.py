"""The ``.mar`` is rewritten with its entries stored: MMS unpacks it at every registration
(inflating the FER+ model was about a quarter of a cold start, benchmarks/NOTES.md)."""
from __future__ import annotations

import zipfile

import pytest

from frame_infer.errors import PackagingError
from frame_infer.models.packager import store_uncompressed


def test_entries_are_stored_with_the_same_bytes_modes_and_folders(tmp_path):
    archive = tmp_path / "m.mar"
    payload = bytes(range(256)) * 5000
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("MAR-INF/", b"")
        script = zipfile.ZipInfo("model_handler/run.sh", (2026, 11, 26, 10, 0, 0))
        script.external_attr = 0o755 << 16
        out.writestr(script, b"#!/bin/sh\n")
        out.writestr("model.onnx", payload)
    store_uncompressed(archive)
    with zipfile.ZipFile(archive) as stored:
        infos = {i.filename: i for i in stored.infolist()}
        assert list(infos) == ["MAR-INF/", "model_handler/run.sh", "model.onnx"]
        assert {i.compress_type for i in infos.values()} == {zipfile.ZIP_STORED}
        assert stored.read("model.onnx") == payload and stored.testzip() is None
        assert infos["model_handler/run.sh"].external_attr >> 16 == 0o755
        assert infos["model_handler/run.sh"].date_time == (2026, 11, 26, 10, 0, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.mar"]


def test_a_file_that_is_no_zip_is_named_and_left_as_it_was(tmp_path):
    archive = tmp_path / "m.mar"
    archive.write_bytes(b"not a zip")
    with pytest.raises(PackagingError, match="cannot rewrite .*m.mar uncompressed"):
        store_uncompressed(archive)
    assert archive.read_bytes() == b"not a zip"
    assert [p.name for p in tmp_path.iterdir()] == ["m.mar"]
