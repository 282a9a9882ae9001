"""Each expectation of ``validate.columns`` / ``validate.rows`` against the statistics of the scan.

An outcome is a dict: ``expectation`` (its config key), ``column``, ``passed``, ``observed``,
``bound`` and a ``message`` naming the column, what was found and the bound. Types are Spark's
``simpleString`` names (``bigint``, ``double``, ``string``, ``decimal(10,2)``, ``array<float>``).
"""

from __future__ import annotations

from h3spark.config._validate import TYPE_FAMILIES, ColumnExpectations, RowCountExpectation
from h3spark.preprocess._drift import ks, psi
from h3spark.preprocess._profile import decode_float, kind_with

_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")
_SHOWN_VALUES = 10


def is_numeric(actual: str) -> bool:
    return actual in _NUMERIC or actual.startswith("decimal")


def is_scalar(actual: str) -> bool:
    return not actual.startswith(("array", "map", "struct"))


def profile_kind(actual: str | None) -> str | None:
    """How a column's distribution is recorded: numbers as a sketch, strings and booleans as counts."""
    if actual is None:
        return None
    if is_numeric(actual):
        return "sketch"
    return "counts" if actual in ("string", "boolean") else None


def type_matches(expected: str, actual: str) -> bool:
    base = actual.split("(", 1)[0].split("<", 1)[0]
    return base in TYPE_FAMILIES.get(expected, (expected,))


def _applies(key: str, actual: str) -> str | None:
    """Why expectation ``key`` cannot be checked on a column of type ``actual``; None when it can."""
    if key in ("min", "max") and not is_numeric(actual):
        return "needs a numeric column"
    if key in ("allowed", "unique") and not is_scalar(actual):
        return "needs a column of single values"
    if key == "drift" and profile_kind(actual) is None:
        return "needs a numeric, string or boolean column"
    return None


def _kind(key: str, spec: ColumnExpectations, actual: str) -> str | None:
    """The statistics kind expectation ``key`` reads."""
    if key in ("min", "max"):
        return kind_with("bounds", [spec.min, spec.max])
    return {"not_null": "nulls", "allowed": kind_with("allowed", spec.allowed), "unique": "keys",
            "drift": profile_kind(actual)}.get(key)


def stated(spec: ColumnExpectations) -> list[str]:
    return [key for key in type(spec).model_fields if getattr(spec, key) is not None and getattr(spec, key) is not False]


def request_kinds(spec: ColumnExpectations, actual: str | None) -> list[str]:
    """The statistics kinds the scan computes for one column (none for a missing one)."""
    if actual is None:
        return []
    keys = [key for key in stated(spec) if key != "type" and _applies(key, actual) is None]
    return sorted({_kind(key, spec, actual) for key in keys})


def row_outcomes(spec: RowCountExpectation | None, rows: int | None) -> list[dict]:
    if spec is None or rows is None:
        return []
    found = []
    if spec.min is not None:
        found.append(_outcome("rows.min", None, rows >= spec.min, rows, spec.min,
                              f"the input has {rows} rows; bound: at least {spec.min}"))
    if spec.max is not None:
        found.append(_outcome("rows.max", None, rows <= spec.max, rows, spec.max,
                              f"the input has {rows} rows; bound: at most {spec.max}"))
    return found


def column_outcomes(name: str, spec: ColumnExpectations, schema: dict[str, str], stats: dict | None,
                    reference=None) -> list[dict]:
    """The outcome of each expectation stated for column ``name``; with ``stats`` None, only those
    that need no scan (a missing column, the type, an expectation the type cannot meet)."""
    actual, found = schema.get(name), []
    for key in stated(spec):
        where = f"columns.{name}.{key}"
        bound = _bound(spec, key)
        if actual is None:
            found.append(_outcome(where, name, False, "missing", bound,
                                  f"column {name!r} is not in the input (it has {_some(list(schema))})"))
        elif key == "type":
            matches = type_matches(spec.type, actual)
            found.append(_outcome(where, name, matches, actual, spec.type,
                                  f"column {name!r} is {actual}" + ("" if matches else f", not {spec.type}")))
        elif _applies(key, actual):
            found.append(_outcome(where, name, False, actual, bound, f"column {name!r} is {actual}; {key} "
                                  f"{_applies(key, actual)}"))
        elif stats is not None:
            stat = stats[f"{name}|{_kind(key, spec, actual)}"]
            found.append(_drift(where, name, spec, stat, profile_kind(actual), reference) if key == "drift" else
                         _CHECKS[key](where, name, spec, stat))
    return found


def _bound(spec: ColumnExpectations, key: str):
    value = getattr(spec, key)
    if key == "drift":
        return {"metric": value.metric, "max": value.max, "reference": value.reference}
    return value


def _not_null(where, name, spec, stat) -> dict:
    rows, missing = stat["rows"], stat["missing"]
    fraction = (rows - missing) / rows if rows else 1.0
    return _outcome(where, name, fraction >= spec.not_null, fraction, spec.not_null,
                    f"{fraction:.2%} of column {name!r} holds a value ({missing} of {rows} rows missing); "
                    f"bound: at least {spec.not_null:g}")


def _min(where, name, spec, stat) -> dict:
    return _outcome(where, name, stat["below"] == 0, stat["min"], spec.min,
                    f"the smallest value of {name!r} is {_num(stat['min'])}; {stat['below']} of {stat['checked']} "
                    f"values are below the bound {spec.min:g}")


def _max(where, name, spec, stat) -> dict:
    return _outcome(where, name, stat["above"] == 0, stat["max"], spec.max,
                    f"the largest value of {name!r} is {_num(stat['max'])}; {stat['above']} of {stat['checked']} "
                    f"values are above the bound {spec.max:g}")


def _allowed(where, name, spec, stat) -> dict:
    examples = ", ".join(f"{value!r} x {count}" for value, count in stat["examples"])
    allowed = _some([repr(value) for value in spec.allowed])
    return _outcome(where, name, stat["bad"] == 0, stat["bad"], spec.allowed,
                    f"{stat['bad']} of {stat['checked']} values of {name!r} are not allowed"
                    + (f" (the smallest: {examples})" if examples else "") + f"; allowed: {allowed}",
                    {"examples": stat["examples"]})


def _unique(where, name, spec, stat) -> dict:
    shown = f", e.g. {', '.join(str(value) for value in stat['examples'])}" if stat["examples"] else ""
    how = "" if stat["exact"] else " (compared by a 64-bit hash)"
    return _outcome(where, name, stat["duplicate_rows"] == 0, stat["duplicate_rows"], 0,
                    f"{stat['repeated_values']} values of {name!r} appear more than once ({stat['duplicate_rows']} of "
                    f"{stat['rows']} rows repeat one{how}){shown}; bound: 0 repeats",
                    {"repeated_values": stat["repeated_values"], "examples": stat["examples"]})


def _drift(where, name, spec, stat, kind, reference) -> dict:
    drift, bound = spec.drift, _bound(spec, "drift")
    against = f"against {reference.uri} (column {reference.column!r}, {reference.origin})"
    if reference.kind != kind or (drift.metric == "ks" and kind != "sketch"):
        return _outcome(where, name, False, None, bound, f"{drift.metric.upper()} of {name!r} {against} cannot be "
                        f"computed: the column holds {_what(kind)}, the reference {_what(reference.kind)}"
                        + ("; KS needs numbers on both sides" if drift.metric == "ks" else ""))
    if not stat:
        return _outcome(where, name, False, None, bound, f"column {name!r} holds no values to compare {against}")
    value, detail = psi(kind, reference.values, stat, drift.bins) if drift.metric == "psi" else ks(reference.values,
                                                                                                    stat)
    return _outcome(where, name, value <= drift.max, round(value, 6), bound,
                    f"the {drift.metric.upper()} of {name!r} {against} is {value:.4g}; bound: at most {drift.max:g}",
                    detail)


def _what(kind: str) -> str:
    return "numbers" if kind == "sketch" else "categories"


_CHECKS = {"not_null": _not_null, "min": _min, "max": _max, "allowed": _allowed, "unique": _unique}


def _outcome(expectation, column, passed, observed, bound, message, detail=None) -> dict:
    return {"expectation": expectation, "column": column, "passed": bool(passed), "observed": observed,
            "bound": bound, "message": message, "detail": detail or {}}


def _num(value) -> str:
    return "none (no values)" if value is None else f"{decode_float(value):.6g}"


def _some(items: list[str]) -> str:
    shown = ", ".join(str(item) for item in items[:_SHOWN_VALUES])
    return shown + (f" and {len(items) - _SHOWN_VALUES} more" if len(items) > _SHOWN_VALUES else "")
