"""The architecture as a test: imports flow downward, with no cycle between packages or modules.

Data flows ingest -> preprocess -> storage -> feed -> train/tune -> actors; the CLI and the
workflow sit on top. Function-level (lazy) imports count too: a lazy import hides a cycle
from Python, not from the reader.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "h3spark"

# Lowest first. A package may import only from packages before it in this list.
LAYERS = ["errors", "config", "spark", "storage", "transport", "ingest", "preprocess", "feed", "train", "tune",
          "actors", "gates", "serve", "web", "report", "workflow", "services", "cli"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every h3spark module ``path`` imports, top-level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("h3spark"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("h3spark"))
    return found


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "h3spark"


def _graph() -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}


def test_every_package_has_a_layer():
    packages = {_package_of(module) for module in _graph()} - {"h3spark"}
    assert packages <= set(LAYERS), f"place the new package(s) {sorted(packages - set(LAYERS))} in LAYERS"


def test_imports_flow_downward():
    upward = []
    for module, imported in _graph().items():
        source = _package_of(module)
        if source == "h3spark":
            continue
        for target in imported:
            destination = _package_of(target)
            if destination not in (source, "h3spark") and LAYERS.index(destination) > LAYERS.index(source):
                upward.append(f"{module} imports {target} ({source} is below {destination})")
    assert not upward, "\n".join(upward)


def test_config_depends_on_nothing_but_errors():
    for module, imported in _graph().items():
        if _package_of(module) == "config":
            assert {_package_of(target) for target in imported} <= {"config", "errors"}, module


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle among modules (each edge from a module to a module it imports), or None."""
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            target = target if target in graph else target.rsplit(".", 1)[0]
            if target not in graph or target == module:
                continue
            if state[target] == 1:
                return stack[stack.index(target):] + [target]
            if state[target] == 0 and (found := visit(target)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if state[module] == 0 and (found := visit(module)):
            return found
    return None


def test_no_import_cycle_between_modules():
    # a module importing its own package's __init__ (which re-exports it) is not a design cycle
    graph = {module: {target for target in imported if not module.startswith(target + ".")}
             for module, imported in _graph().items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
