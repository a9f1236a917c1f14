"""The frame-infer commands as a user runs them (real processes, real MMS)."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import requests

from frame_infer.models import fetch as fetch_model
from frame_infer.cli import main
from frame_infer.errors import ExitCode
from frame_infer.serving.ports import free_port


def test_make_test_model_and_package(tmp_path, capsys):
    onnx_path = tmp_path / "m.onnx"
    assert main(["make-test-model", "--kind", "rgb", "--out", str(onnx_path)]) == 0
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\ne\n")
    assert main(["package", "--model", str(onnx_path), "--name", "rgbm", "--out",
                 str(tmp_path / "store"), "--labels", str(labels)]) == 0
    with zipfile.ZipFile(tmp_path / "store" / "rgbm.mar") as archive:
        names = set(archive.namelist())
        config = archive.read("model-config.json").decode()
        # Stored, not deflated: MMS unpacks the archive at every registration.
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        assert archive.read("m.onnx") == onnx_path.read_bytes()
        assert archive.testzip() is None
    assert {"m.onnx", "model-config.json", "model_handler/service.py",
            "MAR-INF/MANIFEST.json"} <= names
    assert '"labels"' in config and '"e"' in config
    assert not list((tmp_path / "store").glob("*.partial"))


def test_package_rejects_bad_config_with_a_clear_error(tmp_path, capsys, model_files):
    bad = tmp_path / "config.json"
    bad.write_text('{"engine": "tensorflow"}')
    code = main(["package", "--model", str(model_files["rgb"]), "--name", "x", "--out",
                 str(tmp_path), "--config", str(bad)])
    assert code == ExitCode.USAGE
    assert "engine must be one of" in capsys.readouterr().err
    assert not (tmp_path / "x.mar").exists()


def test_package_missing_model_names_the_fix(tmp_path, capsys):
    code = main(["package", "--model", str(tmp_path / "nope.onnx"), "--name", "x", "--out",
                 str(tmp_path)])
    assert code == ExitCode.USAGE
    assert "make-test-model" in capsys.readouterr().err


def test_fetch_verifies_checksum_and_extracts(tmp_path):
    """The download itself needs internet; the verification and extraction run here."""
    model_bytes = b"onnx-bytes" * 100
    archive = tmp_path / "emotion-ferplus-8.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("emotion_ferplus/model.onnx")
        info.size = len(model_bytes)
        tar.addfile(info, io.BytesIO(model_bytes))
    digest = fetch_model.sha256_of(archive)
    fetch_model.verify(archive, digest, archive.stat().st_size)
    out = fetch_model.extract_model(archive, tmp_path / "out" / "model.onnx")
    assert out.read_bytes() == model_bytes
    with pytest.raises(fetch_model.ChecksumError, match="SHA-256"):
        fetch_model.verify(archive, "0" * 64, archive.stat().st_size)
    with pytest.raises(fetch_model.ChecksumError, match="bytes, expected"):
        fetch_model.verify(archive)  # the real FER+ size and digest


@pytest.mark.integration
def test_serve_runs_until_sigterm_and_stops_mms(model_store, tmp_path):
    port, mport = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "frame_infer.cli", "serve", "--model-store", str(model_store),
         "--archive", "rgb.mar", "--port", str(port), "--management-port", str(mport),
         "--batch-size", "4", "--max-batch-delay", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "serving" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "serve exited before it was ready"
        java_pid = int(re.search(r"MMS pid (\d+)", line).group(1))
        run_dir = Path(re.search(r"logs in (\S+);", line).group(1)).parent
        assert run_dir.is_dir()
        status = requests.get(f"http://127.0.0.1:{mport}/models/rgb", timeout=10).json()
        assert status["batchSize"] == 4 and status["maxBatchDelay"] == 10
        assert status["workers"][0]["status"] == "READY"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "MMS stopped" in proc.stdout.read()
        assert not _alive(java_pid)
        assert not run_dir.exists()  # its own temp folder, removed after a clean stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its parent is gone for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_unreachable_endpoint_and_missing_credentials_are_clear_errors(tmp_path, capsys,
                                                                       monkeypatch):
    from ..helpers.frames import write_frames

    write_frames(tmp_path / "frames", 3)
    closed = f"http://127.0.0.1:{free_port()}/predictions/x"  # nothing listens there
    code = main(["predict", str(tmp_path / "frames"), "--endpoint", closed, "--out",
                 str(tmp_path / "out"), "--retries", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.ENVIRONMENT  # nothing answered: not an image problem
    assert "3 frames request_failed: " in err and "failed after 2 attempts" in err
    assert "fix: the endpoint did not answer" in err and "rerun the same command" in err
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    code = main(["upload", str(tmp_path / "frames"), "s3://some-bucket/x"])
    err = capsys.readouterr().err
    assert code == ExitCode.ENVIRONMENT and "AWS error: Unable to locate credentials" in err
