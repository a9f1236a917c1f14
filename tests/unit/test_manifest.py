"""The manifest names only files inside its own folder; anything else is refused."""
from __future__ import annotations

import json

import pytest

from frame_infer.cli import main
from frame_infer.client.manifest import MANIFEST_NAME, read_manifest
from frame_infer.errors import ExitCode, InputError

from ..helpers.frames import write_frames


def manifest_with(folder, **entry):
    line = {"index": 0, "timestamp": 0.0, "file": "frame_000000.jpg", "size": 1,
            "sha256": "0" * 64, **entry}
    (folder / MANIFEST_NAME).write_text(json.dumps(line) + "\n")


@pytest.mark.parametrize("name", ["/etc/hostname", "../outside.jpg", "sub/../../x.jpg",
                                  "", "a\\..\\b.jpg"])
def test_files_outside_the_folder_are_refused(tmp_path, name):
    manifest_with(tmp_path, file=name)
    with pytest.raises(InputError, match=r"manifest.jsonl:1: file .* (outside|not a file)"):
        read_manifest(tmp_path)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "frame_000000.jpg").symlink_to(tmp_path / "secret.txt")
    manifest_with(folder)
    with pytest.raises(InputError, match="resolves outside the frames folder"):
        read_manifest(folder)


@pytest.mark.parametrize("entry, fragment", [({"index": -1}, "index -1"),
                                             ({"index": "3"}, "index '3'"),
                                             ({"timestamp": "soon"}, "timestamp 'soon'")])
def test_bad_fields_are_refused(tmp_path, entry, fragment):
    manifest_with(tmp_path, **entry)
    with pytest.raises(InputError, match=fragment):
        read_manifest(tmp_path)


def test_subfolders_inside_are_fine(tmp_path):
    manifest_with(tmp_path, file="sub/frame_000000.jpg")
    assert read_manifest(tmp_path)[0].file == "sub/frame_000000.jpg"


def test_predict_with_an_escaping_manifest_sends_nothing(tmp_path, capsys):
    """`predict` stops before any request: the endpoint is a closed port, so a request
    would show as request_failed rows instead of this error."""
    write_frames(tmp_path / "frames", 2)
    manifest_with(tmp_path / "frames", file="/etc/hostname")
    code = main(["predict", str(tmp_path / "frames"), "--endpoint",
                 "http://127.0.0.1:20001/predictions/x", "--out", str(tmp_path / "out"),
                 "--no-progress"])
    assert code == ExitCode.USAGE
    assert "points outside the frames folder" in capsys.readouterr().err
    assert not (tmp_path / "out" / "predictions.journal.jsonl").exists()
