"""Reading YAML for configs: bounded in size, nesting and alias expansion, with plain floats.

    >>> data, lines = parse_yaml("training:\\n  lr: 1e-3\\n", "c.yaml")
    >>> data["training"]["lr"], lines[("training", "lr")]
    (0.001, 2)

PyYAML reads YAML 1.1, where ``1e-3`` is a string; here it is a float, in files and in
``--set`` values alike. A config is small: a file over :data:`MAX_CONFIG_BYTES`, nesting
deeper than :data:`MAX_DEPTH` or aliases that expand to more than :data:`MAX_NODES` values
(a "billion laughs") are refused before anything walks the expanded document.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from h3spark.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 50_000

# Floats YAML 1.1 misses: an exponent without a dot (1e-12) or without a sign (1.5e3). A digit
# comes first, and after a leading dot, so that float() reads what is left once yaml drops the "_".
_FLOAT = re.compile(r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+|[-+]?\.[0-9][0-9_]*[eE][-+]?[0-9]+)$")

# What yaml's scalar constructors raise for a value that their resolver or an explicit tag let
# through but Python refuses (2020-13-01, !!float abc, 0x_, !!bool maybe, !!timestamp x).
_VALUE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
_KINDS = {"timestamp": "date", "float": "number", "int": "integer", "bool": "boolean"}


class _TooDeep(Exception):
    def __init__(self, line: int):
        self.line = line


class _TooMany(Exception):
    pass


class _BadValue(Exception):
    def __init__(self, line: int, problem: str, remedy: str):
        self.line, self.problem, self.remedy = line, problem, remedy


class _ConfigLoader(yaml.SafeLoader):
    """yaml's SafeLoader that stops composing past MAX_DEPTH (before Python's recursion limit)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def fetch_flow_collection_start(self, TokenClass):  # noqa: N803 - yaml's name
        # checked while scanning: past this point the scanner's look-ahead for keys grows quadratic
        if self.flow_level >= MAX_DEPTH:
            raise _TooDeep(self.get_mark().line + 1)
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent, index):
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:
                raise _TooMany()
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except _VALUE_ERRORS as error:  # the innermost node's call turns it into _BadValue
            raise self._bad_value(node, error) from None

    def _bad_value(self, node: yaml.Node, error: Exception) -> _BadValue:
        kind = node.tag.rsplit(":", 1)[-1]
        noun = _KINDS.get(kind, kind)
        detail = f" ({error})" if isinstance(error, ValueError) else ""
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode) and self.resolve(yaml.ScalarNode, node.value, (True, False)) == node.tag:
            article = "an" if noun[0] in "aeiou" else "a"
            return _BadValue(line, f"{node.value!r} reads as {article} {noun} but is not a valid one{detail}.",
                             " Quote it to keep it a string.")
        return _BadValue(line, f"{node.value!r} is not a valid {noun}, which its !!{kind} tag asks for{detail}.",
                         " Correct it or drop the tag.")


_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def read_config_text(path: Path, source: str) -> str:
    """The text of a config file, refused unread when it is a directory, missing or too big."""
    if not path.exists():
        raise ConfigError(source, ["file not found. Check the path, or run 'h3spark validate' on an existing file."])
    if path.is_dir():
        raise ConfigError(source, ["is a directory, not a YAML file."])
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(source, [_too_big(size)])
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(source, [f"line {line}  byte 0x{data[error.start]:02x} is not UTF-8 text. Save the file "
                                   "as UTF-8."]) from None


def _too_big(size: int) -> str:
    return (f"the file holds {size:,} bytes, more than the {MAX_CONFIG_BYTES:,} (1 MiB) a config may hold. "
            "Keep data out of the config: point source.path at it.")


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[tuple, int]]:
    """Return the YAML mapping and the 1-based line of every key path in it."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(source, [_too_big(len(text.encode("utf-8", "replace")))])
    node, data = _load(text, source, where="")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"line 1  the top level must be a mapping of sections (name:, spark:, ...). "
                                   f"Got {type(data).__name__} instead."])
    lines: dict[tuple, int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def load_value(text: str, source: str, where: str, hint: str = "") -> Any:
    """One YAML value (a ``--set`` VALUE) read by the same rules as a file; ``where`` prefixes
    problems, ``hint`` follows a YAML syntax error."""
    return _load(text, source, where, hint)[1]


def _load(text: str, source: str, where: str, hint: str = "") -> tuple[yaml.Node | None, Any]:
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, source, where)
        return node, (loader.construct_document(node) if node is not None else None)
    except _TooMany:
        raise ConfigError(source, [f"{where}more than {MAX_NODES:,} values; a config needs far fewer. "
                                   "Keep data out of the config: point source.path at it."]) from None
    except _TooDeep as error:
        raise ConfigError(source, [f"{where or f'line {error.line}  '}nesting deeper than {MAX_DEPTH} levels; "
                                   "a config needs far fewer. Flatten it."]) from None
    except _BadValue as error:
        raise ConfigError(source, [f"{where or f'line {error.line}  '}{error.problem}{hint or error.remedy}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = where or (f"line {mark.line + 1}  " if mark else "")
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(source, [f"{at}broken YAML: {problem}.{hint}"]) from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_expansion(root: yaml.Node, source: str, where: str) -> None:
    """Count the values and depth the document has once every alias is expanded, without expanding it."""
    size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth), both saturated past the limits
    on_path = {id(root)}
    stack = [(root, _children(root), iter(_children(root)))]
    while stack:
        node, children, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            on_path.discard(id(node))
            parts = [size[id(c)] for c in children]
            size[id(node)] = (min(1 + sum(n for n, _ in parts), MAX_NODES + 1),
                              min(1 + max((d for _, d in parts), default=0), MAX_DEPTH + 1))
        elif id(child) in on_path:
            raise ConfigError(source, [f"{where or f'line {child.start_mark.line + 1}  '}an alias refers to a "
                                       "node that contains it, so the value never ends. Remove that alias."])
        elif id(child) not in size:
            on_path.add(id(child))
            grandchildren = _children(child)
            stack.append((child, grandchildren, iter(grandchildren)))
    values, depth = size[id(root)]
    if values > MAX_NODES:
        raise ConfigError(source, [f"{where}aliases expand to more than {MAX_NODES:,} values (an alias bomb?). "
                                   "Write the values out, or use fewer aliases."])
    if depth > MAX_DEPTH:
        raise ConfigError(source, [f"{where}aliases nest deeper than {MAX_DEPTH} levels once expanded; "
                                   "a config needs far fewer. Flatten it."])


def _collect_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value  # a scalar: a mapping as a key failed construction already
            lines[path + (key,)] = key_node.start_mark.line + 1
            _collect_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, path + (index,), lines)
