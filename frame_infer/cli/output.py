"""``--json``: what a command prints for a program rather than a person.

With ``--json`` a command writes exactly one JSON object on one line to stdout and
everything meant for a person (tables, progress, "wrote ...") to stderr, so
``frame-infer COMMAND --json ... | jq`` reads the object alone. The object's keys per
command are listed in docs/API.md, "Machine-readable output (``--json``)"; every object
has ``command`` and ``exit_code`` (the process's exit code).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import PurePath
from typing import TextIO


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: the same flag and help on every command that has it."""
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on one line to stdout (keys: docs/API.md); "
                             "the human output goes to stderr")


def human_stream(json_mode: bool) -> TextIO:
    """Where the human output goes: stderr with ``--json`` (stdout is for the object)."""
    return sys.stderr if json_mode else sys.stdout


def emit_json(document: dict, stream: TextIO | None = None) -> None:
    """Write ``document`` as one line of JSON (paths as strings) and flush it."""
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(document, default=_path, ensure_ascii=False) + "\n")
    stream.flush()


def _path(value):
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON: convert it in the command")
