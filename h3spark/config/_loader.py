"""Load YAML into typed configs, with every problem reported by file, line and key path.

    >>> config = load_config("conf/quickstart.yaml", overrides=["training.seed=7"])

Problems are collected and raised once as :class:`ConfigError`, whose lines look like
``line 14  training.batch_size: must be greater than 0. Got -1 instead.``
"""

from __future__ import annotations

import difflib
import math
import types
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from h3spark.config._base import ERROR_AT
from h3spark.config._yaml import load_value, parse_yaml, read_config_text
from h3spark.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)
_OVERRIDE_SOURCE = "--set"


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), model: type[ModelT] | None = None,
                context: dict[str, Any] | None = None) -> ModelT:
    """Read, override and validate a YAML config file; raise ConfigError on any problem.

    ``context`` is pydantic's validation context: checks that live above config, such as the
    model spec's (``h3spark.train.validation_context()``), reach the validators through it."""
    if model is None:
        from h3spark.config._root import H3SparkConfig as model  # noqa: N813 - the default root model
    source = str(path)
    data, lines = parse_yaml(read_config_text(Path(path), source), source)
    overridden = apply_overrides(data, overrides, source, model)
    return validate(data, model, source, lines, overridden, context)


def apply_overrides(data: dict[str, Any], overrides, source: str, model: type[BaseModel] | None = None) -> set[tuple]:
    """Apply ``KEY=VALUE`` overrides in place; return the key paths set.

    VALUE is read as YAML by the rules of a config file (``1e-3`` is a float, ``[64, 64]`` a list).
    Below a mapping of scalars in ``model`` (``spark.conf``, ``source.options``) the rest of KEY is
    one key: ``spark.conf.spark.sql.shuffle.partitions=4`` sets ``spark.sql.shuffle.partitions``.
    """
    problems, overridden = [], set()
    for override in overrides:
        key, sep, raw = override.partition("=")
        key = key.strip()
        if not sep or not key or "" in key.split("."):
            problems.append(f"{_OVERRIDE_SOURCE} {override!r}: expected KEY=VALUE with a dotted KEY, "
                            "e.g. --set training.lr=0.1.")
            continue
        hint = f" Quote a string value: --set \"{key}='{raw}'\"."
        try:
            value = load_value(raw, source, f"{_OVERRIDE_SOURCE}  {key}: ", hint) if raw.strip() else None
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        path = _split_key(key, model)
        _set_path(data, path, value)
        overridden.add(path)
    if problems:
        raise ConfigError(source, problems)
    return overridden


def _set_path(data: dict[str, Any], path: tuple, value: Any) -> None:
    target = data
    for part in path[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[path[-1]] = value


def _split_key(key: str, model: type[BaseModel] | None) -> tuple:
    """The key path of a dotted KEY; below a mapping of scalars (whose keys hold dots) the rest is one key."""
    parts = key.split(".")
    current: Any = model
    for index, part in enumerate(parts[:-1]):
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        if _is_scalar_mapping(field.annotation):
            return (*parts[: index + 1], ".".join(parts[index + 1:]))
        current = _model_of(field.annotation)
    return tuple(parts)


def _options(annotation) -> tuple:
    """The members of a Union (``None`` left out), else the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(arg for arg in get_args(annotation) if arg is not type(None))
    return (annotation,)


def _is_scalar_mapping(annotation) -> bool:
    for option in _options(annotation):
        if get_origin(option) is dict and len(get_args(option)) == 2:
            return all(value in (str, int, float, bool) for value in _options(get_args(option)[1]))
    return False


def validate(data: dict[str, Any], model: type[ModelT], source: str, lines: dict[tuple, int] | None = None,
             overridden: set[tuple] = frozenset(), context: dict[str, Any] | None = None) -> ModelT:
    """Validate a mapping into ``model``, translating pydantic's errors into ConfigError lines.

    Infinities and NaNs are refused everywhere (``lr: .inf``, ``1e309``): no setting makes sense with them.
    """
    lines = lines or {}
    non_finite = _non_finite(data, ())
    problems = [f"{_where(path, lines, overridden)}{_key(path)}: must be a finite number. Got {value} instead."
                for path, value in non_finite]
    try:
        result = model.model_validate(data, context=context)
    except ValidationError as error:
        items = [item for item in error.errors() if not _below_any(_loc(item), [path for path, _ in non_finite])]
        problems += [_describe(item, model, lines, overridden) for item in items]
    if problems:
        raise ConfigError(source, sorted(dict.fromkeys(problems), key=_line_of))
    return result


def _non_finite(value: Any, path: tuple) -> list[tuple[tuple, float]]:
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(path, value)]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _non_finite(item, path + (key,))]
    if isinstance(value, (list, tuple)):
        return [found for index, item in enumerate(value) for found in _non_finite(item, path + (index,))]
    return []


def _below_any(loc: tuple, paths: list[tuple]) -> bool:
    return any(loc[: len(path)] == path for path in paths)


def _loc(item: dict) -> tuple:
    loc = tuple(part for part in item["loc"] if not _is_union_tag(part))
    at = item.get("ctx", {}).get(ERROR_AT)
    return loc + tuple(at.split(".")) if at else loc


def _key(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _line_of(problem: str) -> tuple[int, str]:
    head = problem.split("  ", 1)[0]
    return (int(head[5:]), problem) if head.startswith("line ") else (1 << 30, problem)


def _describe(item: dict, model: type[BaseModel], lines: dict[tuple, int], overridden) -> str:
    loc = _loc(item)
    return f"{_where(loc, lines, overridden)}{_key(loc)}: {_message(item, model, loc)}"


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
