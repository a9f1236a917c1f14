"""`serve` refuses what MMS would fail on only after starting, in one line naming the cause
and the fix: a model that is not a .mar, an archive not in the store, a missing store.
(The failures only a running MMS can show are in tests/integration/test_serve_failures.py.)"""
from __future__ import annotations

import pytest

from frame_infer.cli import main
from frame_infer.errors import ExitCode
from frame_infer.serving.ports import free_port


def serve(capsys, store, model: str) -> tuple[int, list[str]]:
    code = main(["serve", "--model-store", str(store), "--archive", model,
                 "--port", str(free_port()), "--management-port", str(free_port()),
                 "--run-dir", str(store.parent / "run")])
    captured = capsys.readouterr()
    assert "serving" not in captured.out
    assert not (store.parent / "run").exists()  # nothing was started
    return code, captured.err.splitlines()


@pytest.fixture()
def store(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "fer.onnx").write_bytes(b"onnx")
    (store / "rgb.mar").write_bytes(b"zip")
    return store


def test_an_onnx_model_is_sent_to_package_first(capsys, store):
    code, err = serve(capsys, store, "fer.onnx")
    assert code == ExitCode.USAGE and len(err) == 1
    assert err[0] == (
        f"frame-infer serve: error: serve takes a .mar archive, not fer.onnx: run "
        f"`frame-infer package --model {store / 'fer.onnx'} --name fer --out {store}` first, "
        "then serve fer.mar")


def test_a_missing_archive_names_the_store_and_what_it_holds(capsys, store):
    code, err = serve(capsys, store, "ferplus.mar")
    assert code == ExitCode.USAGE and len(err) == 1
    assert f"ferplus.mar is not in the model store {store} (it holds rgb.mar)" in err[0]
    assert f"`frame-infer package --model M.onnx --name ferplus --out {store}`" in err[0]


def test_a_missing_store_folder_says_to_package_into_it(capsys, tmp_path):
    missing = tmp_path / "no-store"
    code, err = serve(capsys, missing, "ferplus.mar")
    assert code == ExitCode.USAGE and len(err) == 1
    assert f"model store folder {missing} does not exist" in err[0]
    assert f"--out {missing}`" in err[0]


def test_a_file_that_is_no_model_is_not_offered_to_package(capsys, store):
    (store / "notes.txt").write_text("hello")
    code, err = serve(capsys, store, "notes.txt")
    assert code == ExitCode.USAGE and len(err) == 1
    assert err[0] == (
        "frame-infer serve: error: serve takes a .mar archive, not notes.txt: build one from "
        f"an ONNX model with `frame-infer package --model M.onnx --name NAME --out {store}`")
