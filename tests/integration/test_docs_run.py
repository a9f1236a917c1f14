"""The docs' blocks marked ``<!-- docs-test: run -->`` run here, as written, against the real
MMS on loopback (its ports in place of the docs' 8080/8081) and, where a block calls
SageMaker, boto3 against the loopback stand-in of SageMaker's runtime API
(tests/helpers/sagemaker_runtime.py). Every run block must be covered by a test below."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from frame_infer.client.samples import make_sample_video

from ..helpers import docs_runner
from ..helpers.images import jpeg, png
from ..helpers.sagemaker_runtime import SageMakerProxy

COVERED = {"README.md#sh6", "docs/API.md#sh1", "README.md#python1", "infra/README.md#python1",
           "infra/README.md#python2"}


def block(name: str) -> docs_runner.Block:
    found = [b for b in docs_runner.blocks(name.split("#")[1].rstrip("0123456789"))
             if b.name == name]
    assert found and found[0].mode == "run", f"{name} is not a run block any more"
    return found[0]


def ports(mms) -> tuple[int, int]:
    return mms.settings.port, mms.settings.management_port


def json_documents(text: str) -> list:
    """The JSON values printed one after another (curl prints no newline between them)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def test_every_run_block_is_covered_here():
    run = {b.name for b in docs_runner.blocks("sh") + docs_runner.blocks("python")
           if b.mode == "run"}
    assert run == COVERED


def test_readme_curl_against_serve(mms, tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg(1))
    (tmp_path / "b.jpg").write_bytes(jpeg(2))
    result = docs_runner.run_shell(block("README.md#sh6"), tmp_path, ports(mms))
    assert result.returncode == 0, result.stderr
    [answer] = json_documents(result.stdout)
    assert [p["id"] for p in answer["predictions"]] == ["frame_000001", "frame_000002"]
    assert all("label" in p for p in answer["predictions"])


def test_api_examples_answer_as_shown(mms, tmp_path):
    (tmp_path / "frame_000001.jpg").write_bytes(jpeg(1))
    (tmp_path / "a.jpg").write_bytes(jpeg(3))
    (tmp_path / "broken.jpg").write_bytes(jpeg(4)[:100])
    result = docs_runner.run_shell(block("docs/API.md#sh1"), tmp_path, ports(mms),
                                   env={"URL": f"{mms.inference_url}/predictions/ferplus"})
    assert result.returncode == 0, result.stderr
    answers, _, refused = result.stdout.partition("HTTP/1.1 415")
    one, form, instances, npy = json_documents(answers)
    assert one["predictions"][0]["id"] == "0" and "label" in one["predictions"][0]
    assert one["model"]["name"] == "ferplus"
    assert "label" in form["predictions"][0]
    assert form["predictions"][1]["error"]["code"] == "invalid_image"
    assert "label" in instances["predictions"][0]
    # This server allows no bucket, so "b" is refused too (the doc's note says why).
    assert instances["predictions"][2]["error"]["code"] == "s3_forbidden"
    assert [p["id"] for p in npy["predictions"]] == ["0", "1"]
    assert all("label" in p for p in npy["predictions"])
    body = refused.replace("\r\n", "\n").split("\n\n", 1)[1]  # after the headers
    assert json_documents(body)[0]["error"]["code"] == "unsupported_content_type"


def test_readme_python_client(mms, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(jpeg(5))
    (tmp_path / "b.png").write_bytes(png(6))
    make_sample_video(tmp_path / "talk.mp4", seconds=1, fps=30)
    names = {"pil_image": Image.new("RGB", (80, 60), "gray"),
             "array": np.full((48, 64), 127, dtype=np.uint8)}
    done = docs_runner.run_python(block("README.md#python1"), tmp_path, ports(mms), names)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 + 1  # four images, then the job's line
    assert [line.split()[0] for line in printed[:4]] == [f"frame_00000{i}" for i in range(4)]
    assert all(len(line.split()) == 3 for line in printed[:4])  # id, label, score: no error
    # The last job is the faces one; the synthetic clip has no face in its 30 frames.
    assert done["job"].summary.no_face == 30
    assert printed[-1] == "0 frames predicted; plot: " + str(done["job"].timeline_png)
    whole = (tmp_path / "build" / "talk" / "predictions.jsonl").read_text().splitlines()
    assert len(whole) == 30 and all('"label"' in line for line in whole)


@pytest.fixture()
def sagemaker(mms, monkeypatch):
    """boto3's SageMaker runtime calls go to the loopback stand-in before the real MMS."""
    with SageMakerProxy(mms.inference_url, "ferplus") as proxy:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": proxy.url}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield proxy


@pytest.mark.parametrize("name", ["infra/README.md#python1", "infra/README.md#python2"])
def test_infra_python_invokes_the_endpoint(sagemaker, name, tmp_path, capsys):
    paths = []
    for seed in range(3):
        paths.append(tmp_path / f"{seed}.jpg")
        paths[-1].write_bytes(jpeg(seed))
    docs_runner.run_python(block(name), tmp_path, names={"jpeg_paths": paths})
    printed = capsys.readouterr().out
    assert sagemaker.calls >= 1 and sagemaker.signed == sagemaker.calls
    assert "frame_000002" in printed and "error" not in printed
