"""The layout's promises, read from the source: boundaries, no cycles, a lazy CLI.

- ``model_handler`` (copied into every ``.mar``) imports nothing from ``frame_infer``.
- The client imports nothing from serving or deploy; serving nothing from the client or
  deploy.
- No module imports a module that imports it back (module-level imports).
- ``frame-infer --help`` imports no command module; the repo refers to no file outside it.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("frame_infer", "model_handler")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute names of the project modules ``path`` imports (relative ones resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    modules = source_modules()
    return {m for m in found if m in modules and m != name}


def test_model_handler_imports_nothing_from_frame_infer():
    for name, path in source_modules().items():
        if name.startswith("model_handler"):
            text = path.read_text()
            assert "frame_infer" not in {m.split(".")[0] for m in imports(path)}, name
            assert "import frame_infer" not in text and "from frame_infer" not in text, name


@pytest.mark.parametrize("package, forbidden", [
    ("frame_infer.client", ("frame_infer.serving", "frame_infer.deploy", "frame_infer.cli")),
    ("frame_infer.serving", ("frame_infer.client", "frame_infer.deploy", "frame_infer.cli")),
    ("frame_infer.models", ("frame_infer.client", "frame_infer.deploy", "frame_infer.cli")),
    ("frame_infer.deploy", ("frame_infer.serving", "frame_infer.cli")),
])
def test_packages_keep_to_their_side(package, forbidden):
    for name, path in source_modules().items():
        if name == package or name.startswith(package + "."):
            crossing = sorted(m for m in imports(path)
                              if any(m == f or m.startswith(f + ".") for f in forbidden))
            assert not crossing, f"{name} imports {crossing}"


def test_no_import_cycles_at_module_level():
    graph = {name: {m for m in imports(path, top_level_only=True)}
             for name, path in source_modules().items()}
    # A package's __init__ importing its own submodules is not a cycle of the layout.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_help_imports_no_command_module():
    code = ("import sys; from frame_infer.cli import build_parser; build_parser().format_help();"
            "print(sorted(m for m in sys.modules if m.startswith('frame_infer.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = eval(result.stdout)  # a printed list of module names
    assert loaded == ["frame_infer.cli", "frame_infer.errors"], loaded


def test_every_command_module_exists_and_names_its_extra():
    import importlib.util

    from frame_infer.cli import COMMANDS

    extras = {"serving", "models", "client", "deploy"}
    for name, (module, extra, summary) in COMMANDS.items():
        assert importlib.util.find_spec(f"frame_infer.cli.{module}"), name
        assert set(extra.split(",")) <= extras and summary, name


def test_make_test_model_offers_exactly_the_generator_kinds():
    from frame_infer.cli import make_test_model
    from frame_infer.models import testgen

    assert make_test_model.KINDS == testgen.KINDS


def test_nothing_refers_to_files_outside_the_repository():
    places = [ROOT / "README.md", ROOT / "docs", ROOT / "frame_infer", ROOT / "model_handler",
              ROOT / "infra", ROOT / "packaging", ROOT / "benchmarks"]
    offenders = []
    for place in places:
        for path in ([place] if place.is_file() else sorted(place.rglob("*"))):
            if path.is_file() and path.suffix in (".py", ".md", ".yaml", ".txt", ""):
                text = path.read_text(errors="replace")
                for needle in ("shared/", "PLATFORM-NOTES", "STYLE.md", "DEVELOPERS.md"):
                    if needle in text:
                        offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not offenders, offenders
    assert (ROOT / "docs" / "API.md").is_file()
    assert "docs/API.md" in (ROOT / "README.md").read_text()


def test_image_error_codes_of_the_wire_are_the_services():
    """The client treats exactly these codes as final: they must be the codes the service
    gives single images (every ``ImageError("code", ...)`` in model_handler)."""
    from model_handler.wire import IMAGE_ERROR_CODES

    used = set()
    for path in sorted((ROOT / "model_handler").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ImageError":
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path.name}: code not a literal"
                used.add(first.value)
    assert used == set(IMAGE_ERROR_CODES)
