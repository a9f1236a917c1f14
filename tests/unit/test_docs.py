"""The code blocks of the docs against the code as it is, without servers: every Python
block compiles and imports what exists; every shell and Python block is marked run or
help-only (tests/helpers/docs_runner.py); help-only shell blocks parse, name existing
commands with options their --help lists, and `make -n` accepts their make targets.
The run blocks are executed in tests/integration/test_docs_run.py."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from ..helpers import docs_runner

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "infra/README.md", "packaging/README.md", "docs/API.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks():
    for doc in DOCS:
        for number, match in enumerate(BLOCK.finditer((ROOT / doc).read_text()), 1):
            yield pytest.param(match.group(1), id=f"{doc}#{number}")


@pytest.mark.parametrize("code", list(python_blocks()))
def test_python_blocks_compile_and_import_what_exists(code):
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "frame_infer", "model_handler"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("frame_infer", "model_handler"):
                    importlib.import_module(alias.name)


def test_there_are_python_blocks_to_check():
    assert len(list(python_blocks())) >= 3


@pytest.mark.parametrize("block", docs_runner.blocks("sh") + docs_runner.blocks("python"),
                         ids=lambda b: b.name)
def test_every_code_block_says_whether_a_test_runs_it(block):
    assert block.mode in docs_runner.MODES, (
        f"{block.name} has no marker: put <!-- docs-test: run --> or <!-- docs-test: "
        "help-only: REASON --> on the line before its fence")
    assert block.mode == "run" or block.reason, f"{block.name}: say why it cannot run here"


@pytest.mark.parametrize("block", docs_runner.blocks("sh"), ids=lambda b: b.name)
def test_shell_blocks_parse_and_use_commands_and_options_that_exist(block):
    assert docs_runner.shell_problems(block) == []


def test_a_renamed_option_or_command_is_caught():
    """The checker itself: an option --help does not list, an unknown command, bad shell."""
    block = docs_runner.Block("x.md", 1, "sh", "help-only", "synopsis",
                              "frame-infer predict F --endpoint URL --out O [--no-such 1]\n"
                              "  [--also-missing]\nframe-infer nonsense --x\nif then\n")
    problems = docs_runner.shell_problems(block)
    assert problems[0].startswith("bash -n:")
    assert [p.split(" (")[0] for p in problems[1:]] == [
        "frame-infer predict has no option --no-such",
        "frame-infer predict has no option --also-missing",
        "frame-infer has no command 'nonsense'"]


def test_blocks_and_their_markers_are_found():
    run = [b.name for b in docs_runner.blocks("sh") + docs_runner.blocks("python")
           if b.mode == "run"]
    assert {"README.md#python1", "README.md#sh6", "docs/API.md#sh1"} <= set(run)
