"""Faces in photos (issue 19): ``predict PHOTOS --faces`` and ``Client.predict(images,
faces=True)`` against the real MMS, with the real BlazeFace detector on real photographs
(the packaged astronaut, matplotlib's Grace Hopper), side by side, turned upright from
EXIF, and a photo without a face."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from frame_infer.cli import main
from frame_infer import Client
from frame_infer.client.samples import real_face_photos
from frame_infer.errors import ExitCode

from ..helpers.mms import model_url
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration


def photo_folder(folder):
    """a_pair.jpg: the two faces side by side; b_hopper.png: Grace Hopper stored on its
    side with EXIF orientation 6 (viewers turn it upright); c_wall.png: no face."""
    folder.mkdir(parents=True)
    astronaut, hopper = real_face_photos()
    pair = Image.new("RGB", (900, 640), (200, 200, 200))
    pair.paste(astronaut.resize((300, 300)), (40, 170))
    pair.paste(hopper.resize((340, 400)), (520, 120))
    pair.save(folder / "a_pair.jpg", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": stored turned 90 degrees counter-clockwise
    hopper.rotate(90, expand=True).save(folder / "b_hopper.jpg", exif=exif.tobytes())
    Image.new("RGB", (320, 240), (90, 140, 90)).save(folder / "c_wall.png")
    return folder


def test_predict_faces_in_a_photo_folder_gives_a_row_per_face_and_resumes(mms, tmp_path, capsys):
    photos = photo_folder(tmp_path / "photos")
    out = tmp_path / "out"
    argv = ["predict", str(photos), "--faces", "--endpoint", model_url(mms), "--out", str(out),
            "--no-progress", "--json"]
    assert main(argv) == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert (summary["rows"], summary["predicted"], summary["no_face"]) == (4, 3, 1)
    rows = read_rows(out)
    assert [(r["index"], r["face"], r["file"]) for r in rows] == [
        (0, 0, "a_pair.jpg"), (0, 1, "a_pair.jpg"), (1, 0, "b_hopper.jpg"),
        (2, None, "c_wall.png")]
    left, right = rows[0]["box"], rows[1]["box"]
    assert 40 <= left[0] + left[2] / 2 <= 340 and 520 <= right[0] + right[2] / 2 <= 860
    assert all(0.5 <= r["detection_score"] <= 1 for r in rows[:3])
    # Upright by EXIF: Hopper's face is taller than wide in the upright 512x600 photo.
    x, y, w, h = rows[2]["box"]
    assert y + h / 2 < 400 and "label" in rows[2] and "label" not in rows[3]
    # A rerun sends nothing and cuts nothing; a changed photo is cut again.
    assert main(argv) == ExitCode.OK
    again = json.loads(capsys.readouterr().out)["summary"]
    assert again["requests"] == 0 and again["skipped"] == 4
    Image.new("RGB", (320, 240), (10, 10, 200)).save(photos / "c_wall.png")
    assert main(argv) == ExitCode.OK
    third = json.loads(capsys.readouterr().out)["summary"]
    assert third["rows"] == 4 and third["skipped"] == 0


def test_a_folder_without_any_face_warns_and_names_what_to_try(mms, tmp_path, capsys):
    photos = tmp_path / "walls"
    photos.mkdir()
    for i in range(2):
        Image.new("RGB", (320, 240), (40 * i, 90, 90)).save(photos / f"wall{i}.png")
    code = main(["predict", str(photos), "--faces", "--endpoint", model_url(mms), "--out",
                 str(tmp_path / "out"), "--no-progress", "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)["summary"]
    assert code == ExitCode.OK and summary["no_face"] == 2
    assert "no face was found in any of the 2 frames" in summary["warnings"][0]
    assert "warning: no face was found" in captured.err and "--min-face" in captured.err


def test_client_predict_with_faces_answers_each_face(mms, tmp_path):
    photos = photo_folder(tmp_path / "photos")
    with Client(model_url(mms)) as client:
        results = client.predict(sorted(photos.iterdir()), faces=True)
        plain = client.predict([photos / "a_pair.jpg"])
    assert [(r.index, r.face, r.no_face) for r in results] == [
        (0, 0, False), (0, 1, False), (1, 0, False), (2, None, True)]
    assert all(r.ok and r.label and r.box and r.detection_score for r in results[:3])
    assert results[3].label is None and results[3].source.endswith("c_wall.png")
    assert results[0].id == "frame_000000_face0"
    assert len(plain) == 1 and plain[0].face is None and not plain[0].no_face


def test_an_unreadable_photo_is_named_before_anything_is_sent(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code = main(["predict", str(photos), "--faces", "--endpoint", "http://127.0.0.1:20001/p",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == ExitCode.USAGE
    assert "broken.jpg is not a readable image" in capsys.readouterr().err


def test_predict_faces_on_an_s3_prefix_of_photos(mms, s3_server, tmp_path, capsys,
                                                monkeypatch):
    """The photos are fetched from the prefix (through --s3-endpoint-url) and cut as a
    local folder's: the same rows; a rerun fetches and sends nothing."""
    import boto3

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="albums")
    photos = photo_folder(tmp_path / "photos")
    for path in photos.iterdir():
        s3.upload_file(str(path), "albums", f"trip/{path.name}")
    out = tmp_path / "out"
    argv = ["predict", "s3://albums/trip", "--faces", "--s3-endpoint-url", s3_server,
            "--endpoint", model_url(mms), "--out", str(out), "--no-progress", "--json"]
    assert main(argv) == ExitCode.OK
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert (summary["rows"], summary["predicted"], summary["no_face"]) == (4, 3, 1)
    assert [(r["face"], r["file"]) for r in read_rows(out)] == [
        (0, "a_pair.jpg"), (1, "a_pair.jpg"), (0, "b_hopper.jpg"), (None, "c_wall.png")]
    fetched = {p.name: p.stat().st_mtime_ns for p in (out / "photos").iterdir()}
    assert main(argv) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["summary"]["requests"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "photos").iterdir()} == fetched
