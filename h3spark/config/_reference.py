"""The config reference (docs/config_reference.md), generated from the config models themselves.

Every section reachable from :class:`H3SparkConfig` gets a table of its keys: type (with its
bounds), default and description, as the pydantic models declare them. A model reached from
two places (the preprocessing steps of ``preprocess`` and of an actor's ``pipeline``) is
described once and linked from the other.

    >>> "| `master` |" in config_reference()
    True
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from h3spark.config._root import H3SparkConfig

#: The command that writes docs/config_reference.md.
REFERENCE_COMMAND = "h3spark config reference --out docs/config_reference.md"

# the constraints pydantic keeps in a field's metadata (annotated-types objects), by attribute
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "length >="), ("max_length", "length <="))


@dataclass
class _Section:
    path: str
    model: type[BaseModel]
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)


def config_reference(root: type[BaseModel] = H3SparkConfig) -> str:
    """The reference of ``root`` (default: a whole config) as Markdown, one section per model, in the order a config reads."""
    sections: list[_Section] = []
    anchors: dict[type[BaseModel], str] = {}
    _collect("(top level)", root, sections, anchors)
    lines = [
        "# Config reference",
        "",
        f"Generated from the config models (`h3spark/config/`) by `{REFERENCE_COMMAND}`;",
        "a unit test fails when this file is not current. Edit the models' `Field(description=...)`, not this file.",
        "Keys not listed are config errors. A model spec (`training.model`, `gates.model`, an actor's",
        "`model.spec`) is described in [model_spec.md](model_spec.md).",
        "",
        "Sections: " + ", ".join(f"[`{s.path}`](#{_anchor(s.path)})" for s in sections),
    ]
    for section in sections:
        lines += ["", f"## `{section.path}`", "", _doc(section.model), "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        lines += [f"| `{key}` | {kind} | {default} | {text} |" for key, kind, default, text in section.rows]
    return "\n".join(lines) + "\n"


def _collect(path: str, model: type[BaseModel], sections: list[_Section], anchors: dict) -> None:
    """Add ``model``'s section at ``path``, then the sections of the models its fields hold."""
    section = _Section(path, model)
    anchors[model] = path
    sections.append(section)
    prefix = "" if path == "(top level)" else path + "."
    pending: dict[type[BaseModel], str] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        links = []
        for child in _models_in(info.annotation):
            if child not in anchors and child not in pending:
                pending[child] = _child_path(prefix + key, info.annotation, child)
            target = anchors.get(child) or pending[child]
            links.append(f"[`{target}`](#{_anchor(target)})")
        text = "; ".join(filter(None, [info.description, "see " + ", ".join(links) if links else ""]))
        section.rows.append((key, _cell(_type_name(info.annotation) + _bounds(info)), _cell(_default(info)), _cell(text)))
    for child, child_path in pending.items():
        if child not in anchors:
            _collect(child_path, child, sections, anchors)


def _child_path(key_path: str, annotation, child: type[BaseModel]) -> str:
    """``actors.actors.NAME`` for a dict of models, ``steps[]`` for a list, the kind of a tagged one."""
    text = _type_name(annotation)
    suffix = ".NAME" if text.startswith("dict[") else "[]" if text.startswith("list[") else ""
    kind = child.model_fields.get("kind")
    if kind is not None and typing.get_origin(kind.annotation) is typing.Literal and len(typing.get_args(kind.annotation)) == 1:
        return f"{key_path}{suffix} (kind: {typing.get_args(kind.annotation)[0]})"
    return key_path + suffix


def _models_in(annotation) -> list[type[BaseModel]]:
    """The config models an annotation holds (inside Optional, list, dict, unions), in order."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        members = [_type_name(arg) for arg in args]
        return "section" if all(_models_in(arg) for arg in args) else " | ".join(members)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join("..." if arg is Ellipsis else _type_name(arg) for arg in args)
        return f"{name}[{inner}]" if args else name
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return {typing.Any: "any"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(info: FieldInfo) -> str:
    found = [f"{sign} {getattr(item, attr)}" for item in info.metadata for attr, sign in _BOUNDS
             if getattr(item, attr, None) is not None]
    return f" ({', '.join(found)})" if found else ""


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default
    if isinstance(value, BaseModel):
        return "its defaults"
    return _json(value)


def _json(value) -> str:
    try:
        return "`" + json.dumps(list(value) if isinstance(value, tuple) else value) + "`"
    except TypeError:
        return f"`{value!r}`"


def _doc(model: type[BaseModel]) -> str:
    """The model's docstring (first paragraph, one line), else nothing."""
    text = (model.__doc__ or "").strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in text.splitlines())


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _anchor(path: str) -> str:
    """GitHub's heading anchor of ``## `PATH```."""
    return "".join(ch for ch in path.lower().replace(" ", "-") if ch.isalnum() or ch in "-_")
