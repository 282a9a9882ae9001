"""Load YAML into typed configs, with every problem reported by file, line and key path.

    >>> config = load_config("conf/quickstart.yaml", overrides=["training.seed=7"])

Problems are collected and raised once as :class:`ConfigError`, whose lines look like
``line 14  training.batch_size: must be greater than 0. Got -1 instead.``
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from h3spark.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)
_OVERRIDE_SOURCE = "--set"


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), model: type[ModelT] | None = None) -> ModelT:
    """Read, override and validate a YAML config file; raise ConfigError on any problem."""
    if model is None:
        from h3spark.config._root import H3SparkConfig as model  # noqa: N813 - the default root model
    source = str(path)
    text = _read_text(Path(path), source)
    data, lines = parse_yaml(text, source)
    overridden = apply_overrides(data, overrides, source)
    return validate(data, model, source, lines, overridden)


def _read_text(path: Path, source: str) -> str:
    if not path.exists():
        raise ConfigError(source, ["file not found. Check the path, or run 'h3spark validate' on an existing file."])
    if path.is_dir():
        raise ConfigError(source, ["is a directory, not a YAML file."])
    return path.read_text(encoding="utf-8")


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[tuple, int]]:
    """Return the YAML mapping and the 1-based line of every key path in it."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}  " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(source, [f"{where}broken YAML: {problem}."]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"line 1  the top level must be a mapping of sections (name:, spark:, ...). Got {type(data).__name__} instead."])
    lines: dict[tuple, int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _collect_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, path + (index,), lines)


def apply_overrides(data: dict[str, Any], overrides, source: str) -> set[tuple]:
    """Apply ``key.path=value`` overrides in place (values parsed as YAML); return the paths set."""
    problems, overridden = [], set()
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            problems.append(f"{_OVERRIDE_SOURCE} {override!r}: expected KEY=VALUE, e.g. --set training.lr=0.1.")
            continue
        path = tuple(part for part in key.strip().split("."))
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        target = data
        for part in path[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[path[-1]] = value
        overridden.add(path)
    if problems:
        raise ConfigError(source, problems)
    return overridden


def validate(data: dict[str, Any], model: type[ModelT], source: str, lines: dict[tuple, int] | None = None,
             overridden: set[tuple] = frozenset()) -> ModelT:
    """Validate a mapping into ``model``, translating pydantic's errors into ConfigError lines."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [_describe(item, model, lines or {}, overridden) for item in error.errors()]
        raise ConfigError(source, sorted(problems, key=_line_of)) from None


def _line_of(problem: str) -> tuple[int, str]:
    head = problem.split("  ", 1)[0]
    return (int(head[5:]), problem) if head.startswith("line ") else (1 << 30, problem)


def _describe(item: dict, model: type[BaseModel], lines: dict[tuple, int], overridden) -> str:
    loc = tuple(part for part in item["loc"] if not _is_union_tag(part))
    key = ".".join(str(part) for part in loc) or "(top level)"
    where = _where(loc, lines, overridden)
    return f"{where}{key}: {_message(item, model, loc)}"


def _is_union_tag(part) -> bool:
    # pydantic adds the member's name (e.g. 'function-after[...]') to locs inside unions
    return isinstance(part, str) and ("[" in part or part in {"int", "float", "str", "bool", "list", "dict"})


def _where(loc: tuple, lines: dict[tuple, int], overridden) -> str:
    if any(path[: len(loc)] == loc or loc[: len(path)] == path for path in overridden):
        return f"{_OVERRIDE_SOURCE}  "
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return f"line {lines[loc[:end]]}  "
    return ""


def _message(item: dict, model: type[BaseModel], loc: tuple) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown key." + _did_you_mean(str(loc[-1]), _known_keys(model, loc[:-1]))
    if kind == "missing":
        return "required, but missing. Add it to the config."
    message = item["msg"]
    for prefix, replacement in (("Input should be", "must be"), ("Value error, ", ""), ("Assertion failed, ", "")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix):]
    message = message.rstrip(".") + "."
    if "input" in item and not isinstance(item["input"], dict):
        message += f" Got {_show(item['input'])} instead."
    return message


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f" Did you mean '{close[0]}'?"
    return f" Known keys here: {', '.join(sorted(known))}." if known else ""


def _known_keys(model: type[BaseModel], path: tuple) -> list[str]:
    """Field names of the model found at ``path`` (best effort through nested models)."""
    current: Any = model
    for part in path:
        field = getattr(current, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return []
        current = _model_of(field.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_of(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None
