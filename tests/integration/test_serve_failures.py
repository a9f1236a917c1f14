"""`frame-infer serve` against the real MMS: a model that cannot start fails in one line that
names the cause, the fix and the log file (which holds the rest), never the log itself.

The port-in-use message is tested in test_serving_faults.py; the checks made before MMS
starts (.onnx given, archive or store missing) in tests/unit/test_serve_messages.py.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from frame_infer.errors import ExitCode
from frame_infer.models import packager
from frame_infer.serving.ports import free_port

from ..helpers.models import RGB_CONFIG

PREFIX = "frame-infer serve: error: "


def serve(store: Path, archive: str, run_dir: Path, **env: str) -> list[str]:
    """Run `serve` until it fails; its stderr lines (stdout must not say it serves)."""
    import os

    result = subprocess.run(
        [sys.executable, "-m", "frame_infer.cli", "serve", "--model-store", str(store),
         "--archive", archive, "--port", str(free_port()), "--management-port",
         str(free_port()), "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=180, env={**os.environ, **env})
    assert result.returncode == ExitCode.USAGE, result  # the archive is what to fix
    assert "serving" not in result.stdout
    return result.stderr.splitlines()


def rewrite_archive(source: Path, dest: Path, **replace: bytes) -> Path:
    """A copy of the .mar ``source`` with some members' bytes replaced."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(dest, "w") as new:
        for item in old.infolist():
            new.writestr(item, replace.get(item.filename, old.read(item)))
    return dest


def log_path(line: str) -> Path:
    """The log file the message points to; it must exist."""
    found = re.search(r"details: (\S+)$", line)
    assert found, line
    path = Path(found.group(1))
    assert path.is_file(), path
    return path


def test_labels_that_do_not_fit_the_model_name_both_counts_and_the_fix(tmp_path, model_files):
    store = tmp_path / "store"
    packager.build_archive(model_files["rgb"], "rgb", store, config=RGB_CONFIG)
    err = serve(store, "rgb.mar", tmp_path / "run", FRAME_INFER_LABELS="only,three,labels")
    assert len(err) == 1 and err[0].startswith(PREFIX + "model rgb (rgb.mar) failed to start")
    assert "has 5 outputs but the config lists 3 labels" in err[0]
    assert "package --labels" in err[0] and "FRAME_INFER_LABELS" in err[0]
    assert "Traceback" in log_path(err[0]).read_text()  # the rest is in the log


def test_a_corrupt_model_file_says_the_onnx_cannot_be_read(tmp_path, model_files):
    store = tmp_path / "store"
    good = packager.build_archive(model_files["rgb"], "rgb", tmp_path, config=RGB_CONFIG)
    store.mkdir()
    truncated = model_files["rgb"].read_bytes()[:300]
    rewrite_archive(good, store / "broken.mar", **{"rgb.onnx": truncated})
    err = serve(store, "broken.mar", tmp_path / "run")
    assert len(err) == 1 and "model broken (broken.mar) failed to start" in err[0]
    assert "cannot read ONNX model" in err[0] and "package a complete .onnx file" in err[0]
    assert str(tmp_path / "run") in str(log_path(err[0]))


def test_an_archive_without_a_handler_is_sent_to_package(tmp_path, model_files):
    store = tmp_path / "store"
    good = packager.build_archive(model_files["rgb"], "rgb", tmp_path, config=RGB_CONFIG)
    store.mkdir()
    with zipfile.ZipFile(good) as archive:
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
    del manifest["model"]["handler"]
    rewrite_archive(good, store / "plain.mar",
                    **{"MAR-INF/MANIFEST.json": json.dumps(manifest).encode()})
    err = serve(store, "plain.mar", tmp_path / "run")
    assert len(err) == 1
    assert err[0].startswith(PREFIX + "plain.mar has no handler: it is not an archive built "
                             "by `frame-infer package`")
    log_path(err[0])
