"""No test skips on its own: a missing prerequisite goes through require() in tests/conftest.py (skip
outside CI, fail under CI). Only a GPU test (tests/integration/gpu) may skip, when there is no CUDA."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SKIPPING = {"skip", "skipif", "importorskip", "xfail"}
ALLOWED_FUNCTIONS = {"conftest.py": {"require"}}  # file under tests/ -> functions that may skip


def skips_in(source: str, name: str) -> list[str]:
    """``line: code`` of each pytest/unittest skip, skipif, importorskip or xfail in ``source``
    (the file ``name`` under tests/) outside the functions allowed to skip."""
    tree = ast.parse(source, filename=name)
    allowed = [range(node.lineno, node.end_lineno + 1) for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ALLOWED_FUNCTIONS.get(name, ())]
    found = [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr in SKIPPING and _from_test_library(node.value)
             and not any(node.lineno in lines for lines in allowed)]
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def _from_test_library(node: ast.AST) -> bool:
    """``pytest.X``, ``pytest.mark.X`` or ``unittest.X``."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in ("pytest", "unittest")


def test_only_gpu_tests_and_require_skip():
    offenders = {}
    for path in sorted(TESTS.rglob("*.py")):
        name = path.relative_to(TESTS).as_posix()
        if name.startswith("integration/gpu/"):
            continue
        found = skips_in(path.read_text(), name)
        if found:
            offenders[name] = found
    assert offenders == {}, ("use require(condition, reason) from tests/conftest.py instead of skipping "
                             f"(it fails under CI): {offenders}")


def test_the_scan_finds_each_kind_of_skip_and_allows_require():
    source = ("import pytest, unittest\n"
              "mx = pytest.importorskip('mxnet')\n"
              "@pytest.mark.skipif(True, reason='x')\n"
              "def test_a():\n    pytest.skip('no')\n"
              "@unittest.skip('x')\n"
              "def test_b():\n    pytest.xfail('x')\n"
              "def require(ok, reason):\n    pytest.skip(reason)\n"
              "text = 'pytest.skip(in a string)'\n")
    assert [line.split(":")[0] for line in skips_in(source, "integration/test_x.py")] == ["2", "3", "5", "6", "8", "10"]
    assert [line.split(":")[0] for line in skips_in(source, "conftest.py")] == ["2", "3", "5", "6", "8"]
