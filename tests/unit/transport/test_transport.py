"""The shared token check and the one home of kafka-python."""

import ast
import sys
from pathlib import Path

import pytest

from h3spark.errors import DependencyError
from h3spark.transport import kafka, new_token, take_token

PACKAGE = Path(__file__).resolve().parents[3] / "h3spark"


def test_a_message_counts_only_with_this_token_which_is_taken_off():
    token = new_token()
    message = {"token": token, "kind": "started"}
    assert take_token(message, token) and message == {"kind": "started"}
    assert len(token) == 32 and new_token() != token
    for refused in ({"kind": "started"}, {"token": new_token()}, {"token": 7}, {"token": "é" * 32}, ["token", token], None):
        assert not take_token(refused, token)


def test_a_missing_kafka_python_is_an_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "kafka", None)  # what `import kafka` sees when the package is absent
    with pytest.raises(DependencyError, match="needs the 'kafka-python' package, which is not installed. "
                                              "Install it with: pip install kafka-python"):
        kafka.producer("127.0.0.1:9092")


def test_kafka_python_is_imported_by_one_module_only():
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(name == "kafka" or name.startswith("kafka.") for name in names):
                importers.add(path.relative_to(PACKAGE.parent).as_posix())
    assert importers == {"h3spark/transport/kafka.py"}
