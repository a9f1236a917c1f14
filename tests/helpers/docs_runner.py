"""Run the code blocks of the Markdown docs, or check what cannot run here.

Every ```sh and ```python block carries a marker on the line before its fence:

- ``<!-- docs-test: run -->``: executed by a test (tests/integration/test_docs_run.py) in
  a temp folder, ``frame-infer`` being ``sys.executable -m frame_infer.cli`` on this
  checkout, the docs' local MMS ports (8080, 8081) replaced by those of the test's
  server, AWS replaced by loopback stand-ins the test starts;
- ``<!-- docs-test: help-only: REASON -->``: it needs what a test cannot have (Docker,
  real AWS, the whole demo, the internet) or is a synopsis with ``[optional]`` parts.
  It is still checked (tests/unit/test_docs.py): a shell block parses (``bash -n``, after
  the synopsis brackets are dropped), every ``frame-infer X`` command in it exists and
  ``X --help`` lists every option the block gives it, and every ``make`` line is a
  target that ``make -n`` accepts.

The options are read from ``--help`` at run time, so the check follows the command line
as it is (an option renamed in the code but not in the docs fails it).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "infra/README.md", "docs/API.md", "packaging/README.md")
MODES = ("run", "help-only")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_MARKER = re.compile(r"<!-- docs-test: ([\w-]+)(?::\s*(.*?))? -->")
_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
DOC_PORTS = {"inference": 8080, "management": 8081}
"""The local MMS ports the docs show (frame-infer serve's defaults)."""


@dataclass(frozen=True)
class Block:
    doc: str
    number: int
    """1-based among the doc's code blocks of its language."""
    language: str
    mode: str | None
    """``run`` or ``help-only``; None when the marker is missing."""
    reason: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.doc}#{self.language}{self.number}"


def blocks(language: str, docs=DOCS) -> list[Block]:
    """The ``language`` blocks of ``docs`` with their markers, in document order."""
    found = []
    for doc in docs:
        path = ROOT / doc
        if not path.exists():
            continue
        text, number = path.read_text(), 0
        for fence in _FENCE.finditer(text):
            if fence.group(1) != language:
                continue
            number += 1
            before = text[:fence.start()].rstrip().rsplit("\n", 1)[-1]
            marker = _MARKER.search(before)
            found.append(Block(doc, number, language, marker and marker.group(1),
                               (marker and marker.group(2)) or "", fence.group(2)))
    return found


def commands(script: str) -> list[str]:
    """The block's commands, one string each: comments dropped, lines ending in ``\\``
    and indented synopsis lines joined to the command they continue."""
    joined: list[str] = []
    continued = False
    for raw in script.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continued = False
            continue
        if joined and (continued or raw[:1].isspace()):
            joined[-1] += " " + line.strip().rstrip("\\").strip()
        else:
            joined.append(line.strip().rstrip("\\").strip())
        continued = line.endswith("\\")
    return joined


def frame_infer_calls(command: str) -> list[tuple[str, list[str]]]:
    """``(subcommand, options)`` for each ``frame-infer X ...`` in a command line (after
    ``;``, ``&&`` or ``|`` too); options include those inside ``[...]``."""
    calls = []
    for part in re.split(r"&&|\|\||;|\s\|\s", command):  # a|b: synopsis alternatives
        found = re.search(r"(?:^|[\s/])frame-infer\s+([a-z][a-z-]*)(.*)$", part.strip())
        if found:
            calls.append((found.group(1), _OPTION.findall(found.group(2))))
    return calls


@lru_cache(maxsize=None)
def help_text(subcommand: str) -> str:
    """``frame-infer SUBCOMMAND --help`` as the command line prints it now."""
    from frame_infer.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([subcommand, "--help"])
    return out.getvalue()


def check_call(subcommand: str, options: list[str]) -> list[str]:
    """Problems with one documented call: an unknown command, options ``--help`` lacks."""
    from frame_infer.cli import COMMANDS

    if subcommand not in COMMANDS:
        return [f"frame-infer has no command {subcommand!r}"]
    listed = set(_OPTION.findall(help_text(subcommand)))
    return [f"frame-infer {subcommand} has no option {option} (its --help lists "
            f"{', '.join(sorted(listed))})" for option in options if option not in listed]


def shell_problems(block: Block) -> list[str]:
    """What is wrong with a shell block that cannot run here (see the module doc)."""
    problems = []
    script = re.sub(r"\[[^\]\n]*\]", "", block.text)  # a synopsis' [--optional parts]
    script = re.sub(r"[A-Z]+\|[A-Za-z/|]+", "X", script)  # `FOLDER|s3://...` alternatives
    parsed = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    if parsed.returncode != 0:
        problems.append(f"bash -n: {parsed.stderr.strip()}")
    for command in commands(block.text):
        for subcommand, options in frame_infer_calls(command):
            problems += check_call(subcommand, options)
        if command.startswith("make "):
            problems += _make_problems(command)
    return problems


def _make_problems(command: str) -> list[str]:
    args = shlex.split(command)[1:]
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True,
                         text=True)
    return [] if dry.returncode == 0 else [f"{command}: make -n failed: {dry.stderr.strip()}"]


def local_ports(text: str, inference: int, management: int) -> str:
    """``text`` with the docs' local MMS ports replaced by a test server's."""
    text = text.replace(f"127.0.0.1:{DOC_PORTS['inference']}", f"127.0.0.1:{inference}")
    return text.replace(f"127.0.0.1:{DOC_PORTS['management']}", f"127.0.0.1:{management}")


def frame_infer_env(extra: dict | None = None) -> dict[str, str]:
    """The environment of a run block: this checkout first on the Python path; the shell
    prelude of :func:`run_shell` makes ``frame-infer`` ``sys.executable -m frame_infer.cli``
    (the console script in the venv would import another checkout)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    # `python` in a block is this interpreter (the venv's), as after activating it.
    bins = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    return {**os.environ, "PYTHONPATH": path, "PATH": bins,
            "FRAME_INFER_PYTHON": sys.executable, **(extra or {})}


def run_shell(block: Block, cwd: Path, ports: tuple[int, int],
              env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a shell block (its local MMS ports replaced by ``ports``) with bash in ``cwd``."""
    prelude = ('set -euo pipefail\n'
               'frame-infer() { "$FRAME_INFER_PYTHON" -m frame_infer.cli "$@"; }\n')
    return subprocess.run(["bash", "-c", prelude + local_ports(block.text, *ports)],
                          cwd=cwd, env=frame_infer_env(env), capture_output=True, text=True,
                          timeout=timeout)


def run_python(block: Block, cwd: Path, ports: tuple[int, int] | None = None,
               names: dict | None = None) -> dict:
    """Execute a Python block in ``cwd`` with ``names`` predefined (the inputs it takes
    for granted, e.g. ``pil_image``); returns its namespace."""
    code = local_ports(block.text, *ports) if ports else block.text
    namespace = {"__name__": "__docs__", **(names or {})}
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        exec(compile(code, block.name, "exec"), namespace)  # noqa: S102 - our own docs
    finally:
        os.chdir(previous)
    return namespace
