"""The layout's promises, read from the source: boundaries, no cycles, a lazy CLI.

- ``model_handler`` (copied into every ``.mar``) imports nothing from ``frame_infer``.
- The client imports nothing from serving or deploy; serving nothing from the client or
  deploy.
- No module imports a module that imports it back, at module level or inside a
  function (the message names each cycle, file and line of every step).
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


def imported_names(path: Path, node: ast.Import | ast.ImportFrom) -> set[str]:
    """Absolute names an import statement of ``path`` may refer to (relative resolved)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if node.level:
        base = package.split(".")
        base = base[:len(base) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return {module} | {f"{module}.{alias.name}" for alias in node.names}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute names of the project modules ``path`` imports (relative ones resolved)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= imported_names(path, node)
    modules = source_modules()
    return {m for m in found if m in modules and m != module_name(path)}


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


def import_lines(path: Path, tree: ast.AST | None = None) -> dict[str, tuple[int, bool]]:
    """The project modules ``path`` (or ``tree``, read as ``path``) imports -> (first
    line, True if inside a function)."""
    found: dict[str, tuple[int, bool]] = {}

    def visit(node: ast.AST, in_function: bool) -> None:
        if type_checking_only(node):  # never runs: a type annotation's import
            children = node.orelse
        else:
            children = list(ast.iter_child_nodes(node))
            in_function = in_function or isinstance(node, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef, ast.Lambda))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for module in imported_names(path, node):
                found.setdefault(module, (node.lineno, in_function))
        for child in children:
            visit(child, in_function)

    visit(ast.parse(path.read_text()) if tree is None else tree, False)
    modules = source_modules()
    name = module_name(path)
    return {m: where for m, where in found.items() if m in modules and m != name}


def type_checking_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): imports for annotations only."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
            or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph() -> dict[str, dict[str, tuple[int, bool]]]:
    """Every import of the project, module level and inside functions alike: an import
    deferred into a function still needs the other module, so a cycle through it is a
    cycle of the layout. Not counted: a package's ``__init__`` importing its own
    submodules, and ``if TYPE_CHECKING:`` imports (they never run)."""
    graph = {name: import_lines(path) for name, path in source_modules().items()}
    return {name: {m: w for m, w in edges.items() if not m.startswith(name + ".")}
            for name, edges in graph.items()}


def import_cycles(graph: dict[str, dict]) -> list[list[str]]:
    """One cycle (first module repeated at the end) per strongly connected component of
    more than one module (Tarjan's algorithm), each starting at its smallest name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for name in sorted(graph):
        if name not in index:
            connect(name)
    return [shortest_cycle(graph, min(c), c) for c in sorted(components, key=min)]


def shortest_cycle(graph: dict[str, dict], start: str, within: set[str]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``within`` (breadth first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return paths[node] + [start]
                if nxt in within and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{start} is in a cycle without a way back")  # not reachable


def describe(graph: dict[str, dict], cycle: list[str]) -> str:
    """``a -> b (a.py:12, in a function) -> a (b.py:3)``: each step with the file and
    line of its import."""
    steps = [cycle[0]]
    for here, there in zip(cycle, cycle[1:]):
        line, in_function = graph[here][there]
        where = f"{source_modules()[here].relative_to(ROOT)}:{line}"
        steps.append(f"{there} ({where}{', in a function' if in_function else ''})")
    return " -> ".join(steps)


def test_no_import_cycles():
    graph = import_graph()
    cycles = import_cycles(graph)
    assert not cycles, ("import cycles (the module on the left imports the next one, at "
                        "the file and line shown):\n  "
                        + "\n  ".join(describe(graph, c) for c in cycles))


def test_the_cycle_test_sees_imports_inside_functions():
    graph = {"p.a": {"p.b": (3, False)}, "p.b": {"p.a": (9, True)}, "p.c": {"p.a": (1, False)}}
    assert import_cycles(graph) == [["p.a", "p.b", "p.a"]]
    assert import_cycles({"p.a": {"p.b": (3, False)}, "p.b": {}}) == []


def test_the_cycle_test_reads_imports_inside_functions_and_skips_type_checking():
    path = ROOT / "frame_infer" / "client" / "timeline.py"  # resolves the relative names
    tree = ast.parse("from .records import Report\n"
                     "def plot():\n    from .report import write_report\n"
                     "if TYPE_CHECKING:\n    from .job import JobResult\n"
                     "else:\n    from .manifest import frame_id\n")
    assert import_lines(path, tree) == {"frame_infer.client.records": (1, False),
                                        "frame_infer.client.report": (3, True),
                                        "frame_infer.client.manifest": (7, False)}


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
    from model_handler import wire

    used = set()
    for path in sorted((ROOT / "model_handler").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ImageError":
                first = node.args[0]
                if isinstance(first, ast.Name):  # a constant of the wire module
                    assert hasattr(wire, first.id), f"{path.name}: {first.id} not in wire"
                    used.add(getattr(wire, first.id))
                else:
                    assert isinstance(first, ast.Constant), f"{path.name}: code not a literal"
                    used.add(first.value)
    assert used == set(wire.IMAGE_ERROR_CODES)
