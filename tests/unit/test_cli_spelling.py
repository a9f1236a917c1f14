"""One spelling per idea (issue 13): every option documented, every command with
examples, old spellings kept as hidden aliases that say what to write, S3 locations
checked as s3:// URIs before any work."""
from __future__ import annotations

import argparse
import re

import pytest

from frame_infer.cli import COMMANDS, build_parser, main
from frame_infer.cli.aliases import OldSpelling, renamed_options
from frame_infer.errors import InputError


def command_parser(name: str) -> argparse.ArgumentParser:
    """The sub-parser of command ``name``, built as ``frame-infer NAME`` builds it."""
    sub = next(a for a in build_parser(name)._actions
               if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(argv)


def mentions(text: str, option: str) -> bool:
    """``option`` as a whole word of ``text`` (``--s3`` is not in ``--s3-endpoint-url``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_has_help_and_the_command_has_examples(name):
    parser = command_parser(name)
    text = parser.format_help()
    assert f"Examples:\n  frame-infer {name}" in text, text
    visible = {a.dest for a in parser._actions if a.help is not argparse.SUPPRESS}
    for action in parser._actions:
        if action.help is argparse.SUPPRESS:  # only an old spelling of a visible option
            assert isinstance(action, OldSpelling) and action.dest in visible, action
        else:
            assert action.help and action.help.strip(), f"{name}: {action.option_strings}"


def test_the_top_level_help_has_examples_and_lists_every_command():
    parser = build_parser()
    text = parser.format_help()
    assert "Examples:\n  frame-infer demo" in text
    assert all(name in text for name in COMMANDS)
    assert all(a.help for a in parser._actions)


# (command line with the old spelling, the same with the new one, old, new)
RENAMED = [
    (["predict", "f", "--endpoint", "e", "--out", "o", "--batch-size", "8"],
     ["predict", "f", "--endpoint", "e", "--out", "o", "--frames-per-request", "8"],
     "--batch-size", "--frames-per-request"),
    (["run", "v.mp4", "--endpoint", "e", "--out", "o", "--batch-size", "8"],
     ["run", "v.mp4", "--endpoint", "e", "--out", "o", "--frames-per-request", "8"],
     "--batch-size", "--frames-per-request"),
    (["predict", "f", "--endpoint", "e", "--out", "o", "--endpoint-url", "http://h:1"],
     ["predict", "f", "--endpoint", "e", "--out", "o", "--s3-endpoint-url", "http://h:1"],
     "--endpoint-url", "--s3-endpoint-url"),
    (["run", "v.mp4", "--endpoint", "e", "--out", "o", "--endpoint-url", "http://h:1"],
     ["run", "v.mp4", "--endpoint", "e", "--out", "o", "--s3-endpoint-url", "http://h:1"],
     "--endpoint-url", "--s3-endpoint-url"),
    (["upload", "f", "s3://b/p", "--endpoint-url", "http://h:1"],
     ["upload", "f", "s3://b/p", "--s3-endpoint-url", "http://h:1"],
     "--endpoint-url", "--s3-endpoint-url"),
    (["report", "o", "--s3", "s3://b/r"], ["report", "o", "--bucket", "s3://b/r"],
     "--s3", "--bucket"),
    (["report", "o", "--endpoint-url", "http://h:1"],
     ["report", "o", "--s3-endpoint-url", "http://h:1"], "--endpoint-url", "--s3-endpoint-url"),
    (["serve", "--model-store", "st", "--model", "m.mar"],
     ["serve", "--model-store", "st", "--archive", "m.mar"], "--model", "--archive"),
    (["deploy", "--stack", "s", "--model", "m.mar"], ["deploy", "--stack", "s", "--archive",
                                                      "m.mar"], "--model", "--archive"),
    (["deploy", "--stack", "s", "--endpoint-url", "http://h:1"],
     ["deploy", "--stack", "s", "--aws-endpoint-url", "http://h:1"],
     "--endpoint-url", "--aws-endpoint-url"),
    (["transform", "s3://b/f", "--bucket", "s3://b/t", "--results", "res"],
     ["transform", "s3://b/f", "--bucket", "s3://b/t", "--out", "res"], "--results", "--out"),
    (["transform", "s3://b/f", "--bucket", "s3://b/t", "--max-concurrent", "3"],
     ["transform", "s3://b/f", "--bucket", "s3://b/t", "--concurrency", "3"],
     "--max-concurrent", "--concurrency"),
    (["transform", "s3://b/f", "--bucket", "s3://b/t", "--shard-frames", "64"],
     ["transform", "s3://b/f", "--bucket", "s3://b/t", "--frames-per-request", "64"],
     "--shard-frames", "--frames-per-request"),
    (["transform", "s3://b/f", "--bucket", "s3://b/t", "--endpoint-url", "http://h:1"],
     ["transform", "s3://b/f", "--bucket", "s3://b/t", "--s3-endpoint-url", "http://h:1"],
     "--endpoint-url", "--s3-endpoint-url"),
]


@pytest.mark.parametrize("old_argv, new_argv, old, new", RENAMED,
                         ids=[f"{r[0][0]} {r[2]}" for r in RENAMED])
def test_old_spelling_still_works_warns_and_is_hidden(old_argv, new_argv, old, new, capsys):
    new_args = parse(new_argv)
    assert not capsys.readouterr().err
    assert vars(parse(old_argv)) == vars(new_args)  # same dest, same value
    err = capsys.readouterr().err
    note = f"frame-infer {old_argv[0]}: {old} is deprecated and goes away in the next " \
           f"release; write {new}\n"
    assert err == note  # one line, naming the new spelling
    parser = command_parser(old_argv[0])
    assert renamed_options(parser)[old] == new
    text = parser.format_help()
    assert mentions(text, new) and not mentions(text, old)


def test_the_old_spelling_satisfies_a_required_option(capsys):
    assert parse(["serve", "--model", "store/m.mar"]).archive == "store/m.mar"
    with pytest.raises(SystemExit) as exit_info:
        parse(["serve", "--port", "8080"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --archive" in capsys.readouterr().err


def test_transform_out_with_an_s3_uri_is_the_old_bucket(capsys, tmp_path):
    """Before issue 13 transform's --out was the S3 location and --results the folder."""
    args = parse(["transform", "s3://b/f", "--out", "s3://b/t", "--results", str(tmp_path)])
    assert (args.bucket, args.out) == ("s3://b/t", tmp_path)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "write --bucket s3://bucket/prefix" in err[0]
    assert "--results is deprecated" in err[1] and err[1].endswith("write --out")
    new = parse(["transform", "s3://b/f", "--bucket", "s3://b/t", "--out", str(tmp_path)])
    assert (new.bucket, new.out) == ("s3://b/t", tmp_path) and not capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        parse(["transform", "s3://b/f", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --bucket" in capsys.readouterr().err


@pytest.mark.parametrize("given, bucket, note", [
    ("s3://frames-bucket", "frames-bucket", False),
    ("s3://frames-bucket/", "frames-bucket", False),
    ("frames-bucket", "frames-bucket", True),
])
def test_deploy_bucket_takes_an_s3_uri_and_still_a_bare_name(given, bucket, note, capsys):
    assert parse(["deploy", "--stack", "s", "--bucket", given]).bucket == bucket
    err = capsys.readouterr().err
    assert (err == "frame-infer deploy: --bucket frames-bucket (a bare name) is deprecated "
                   "and goes away in the next release; write --bucket s3://frames-bucket\n"
            if note else not err)


BAD = "my-bucket/prefix"  # the s3:// forgotten
NO_BUCKET = "s3:///prefix"


@pytest.mark.parametrize("argv, fragment", [
    (["upload", "frames", BAD], "s3://bucket/prefix"),
    (["predict", NO_BUCKET, "--endpoint", "e", "--out", "out"], "has no bucket"),
    (["predict", "frames", "--endpoint", "e", "--out", "out", "--async-s3", BAD],
     "s3://bucket/prefix"),
    (["run", "clip.mp4", "--endpoint", "e", "--out", "out", "--bucket", BAD],
     "s3://bucket/prefix"),
    (["run", "clip.mp4", "--endpoint", "e", "--out", "out", "--bucket", NO_BUCKET],
     "has no bucket"),
    (["run", "clip.mp4", "--endpoint", "e", "--out", "out", "--async-s3", NO_BUCKET],
     "has no bucket"),
    (["report", "out", "--bucket", BAD], "s3://bucket/prefix"),
    (["report", "out", "--s3", BAD], "s3://bucket/prefix"),
    (["transform", BAD, "--bucket", "s3://b/t"], "s3://bucket/prefix"),
    (["transform", "s3://b/f", "--bucket", BAD], "s3://bucket/prefix"),
    (["transform", "s3://b/f", "--bucket", "s3://b/t", "--model-artifact", BAD],
     "s3://bucket/prefix"),
    (["transform", "s3://b/f", "--out", NO_BUCKET], "has no bucket"),
    (["deploy", "--stack", "s", "--bucket", "s3://frames/some/prefix"], "s3://bucket"),
    (["deploy", "--stack", "s", "--bucket", "Frames_Bucket"], "write s3://bucket"),
    (["deploy", "--stack", "s", "--async-output", BAD], "s3://bucket/prefix"),
])
def test_a_bad_s3_uri_fails_at_the_parser_before_any_work(argv, fragment, capsys,
                                                          tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"not looked at")
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and f"frame-infer {argv[0]}: error: argument" in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # nothing cut or written


def test_serve_finds_the_store_from_the_archive_path(tmp_path):
    from frame_infer.cli.serve import archive_in_store

    store = tmp_path / "store"
    assert archive_in_store(str(store / "m.mar"), None) == (store, "m.mar")
    assert archive_in_store("m.mar", store) == (store, "m.mar")
    assert archive_in_store(str(store / "m.mar"), store) == (store, "m.mar")
    with pytest.raises(InputError, match="is not in --model-store"):
        archive_in_store(str(tmp_path / "other" / "m.mar"), store)


def test_long_commands_have_no_progress():
    for name in ("extract", "upload", "predict", "run", "transform", "demo"):
        assert mentions(command_parser(name).format_help(), "--no-progress"), name
