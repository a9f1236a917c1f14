"""The Python in the README files runs against the code as it is: every block compiles and
every name it imports from this project exists (the blocks that need AWS or a video are
not executed here; their imports are what drifts)."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

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
