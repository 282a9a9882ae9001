"""Search spaces: the domains a hyperparameter can range over (config validates them; tune samples them).

    >>> space = {"lr": LogUniform(1e-4, 1e-1), "hidden": Int(32, 256), "act": ["relu", "tanh"]}

A plain list is a :class:`Choice`; any other plain value is a constant. Every domain maps
the unit interval onto its values (``from_unit``), which random search and differential
evolution share, and discrete domains list their values for grid search.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from h3spark.errors import ConfigError

_SOURCE = "experiment.space"


class Domain:
    """A set of values one hyperparameter may take."""

    def from_unit(self, u: float) -> Any:
        """The value at ``u`` in [0, 1]."""
        raise NotImplementedError

    def grid_values(self, name: str) -> list:
        raise ConfigError(_SOURCE, [f"{name}: {self!r} is continuous, so grid search cannot enumerate it. "
                                    "Give a list of values, or use random_search or differential_evolution."])

    def sample(self, rng: np.random.Generator) -> Any:
        return self.from_unit(float(rng.random()))


def _invalid(owner: str, parameter: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(_SOURCE, [f"The '{parameter}' parameter of {owner} must be {expected}. Got {got!r} instead."])


def _number(owner: str, parameter: str, value: Any, kind=(int, float)) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = "an int" if kind is int else "a number"
        raise _invalid(owner, parameter, expected, value)


class Int(Domain):
    """Integers from ``low`` to ``high`` inclusive, every ``step``."""

    def __init__(self, low: int, high: int, step: int = 1):
        for parameter, value in (("low", low), ("high", high), ("step", step)):
            _number("Int", parameter, value, int)
        if high < low:
            raise _invalid("Int", "high", f"an int >= low ({low})", high)
        if step < 1:
            raise _invalid("Int", "step", "an int >= 1", step)
        self.low, self.high, self.step = low, high, step

    def grid_values(self, name):
        return list(range(self.low, self.high + 1, self.step))

    def from_unit(self, u):
        count = (self.high - self.low) // self.step + 1
        return self.low + self.step * min(int(u * count), count - 1)

    def __repr__(self):
        return f"Int({self.low}, {self.high}, step={self.step})"


class Float(Domain):
    """Floats uniform in [low, high]."""

    def __init__(self, low: float, high: float):
        _number("Float", "low", low)
        _number("Float", "high", high)
        if not high > low:
            raise _invalid("Float", "high", f"a number > low ({low})", high)
        self.low, self.high = float(low), float(high)

    def from_unit(self, u):
        return self.low + u * (self.high - self.low)

    def __repr__(self):
        return f"Float({self.low}, {self.high})"


class LogUniform(Domain):
    """Floats in [low, high] whose logarithm is uniform (learning rates, regularisation)."""

    def __init__(self, low: float, high: float):
        _number("LogUniform", "low", low)
        _number("LogUniform", "high", high)
        if not low > 0:
            raise _invalid("LogUniform", "low", "a number > 0", low)
        if not high > low:
            raise _invalid("LogUniform", "high", f"a number > low ({low})", high)
        self.low, self.high = float(low), float(high)

    def from_unit(self, u):
        return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))

    def __repr__(self):
        return f"LogUniform({self.low}, {self.high})"


class Choice(Domain):
    """One of a list of values (str, int, float or bool)."""

    def __init__(self, values):
        if not isinstance(values, (list, tuple)) or not values:
            raise _invalid("Choice", "values", "a non-empty list", values)
        for value in values:
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise _invalid("Choice", "values", "a list of str, int, float, bool or null", value)
        self.values = list(values)

    def grid_values(self, name):
        return list(self.values)

    def from_unit(self, u):
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def __repr__(self):
        return f"Choice({self.values!r})"


_KINDS = {"int": Int, "float": Float, "uniform": Float, "loguniform": LogUniform, "log_uniform": LogUniform}


def parse_space(space: dict[str, Any]) -> dict[str, Domain]:
    """Normalise a space given in Python or YAML into ``{name: Domain}`` (insertion order kept)."""
    if not isinstance(space, dict) or not space:
        raise _invalid("the search", "space", "a non-empty mapping of hyperparameter names to values", space)
    domains = {}
    for name, value in space.items():
        if not isinstance(name, str) or not name:
            raise _invalid("the search", "space", "keyed by non-empty strings", name)
        domains[name] = _parse_domain(name, value)
    return domains


def _parse_domain(name: str, value: Any) -> Domain:
    if isinstance(value, Domain):
        return value
    if isinstance(value, (list, tuple)):
        return Choice(value)
    if isinstance(value, dict):
        return _domain_from_mapping(name, value)
    return Choice([value])


def _domain_from_mapping(name: str, value: dict) -> Domain:
    spec = dict(value)
    kind = spec.pop("type", None)
    if kind == "choice":
        if set(spec) != {"values"}:
            raise ConfigError(_SOURCE, [f"{name}: a choice takes only 'values'. Got keys {sorted(spec)} instead."])
        return Choice(spec["values"])
    if kind not in _KINDS:
        raise ConfigError(_SOURCE, [f"{name}: 'type' must be one of int, float, loguniform, choice. Got {kind!r} instead."])
    allowed = {"low", "high", "step"} if kind == "int" else {"low", "high"}
    unknown = sorted(set(spec) - allowed)
    if unknown or not {"low", "high"} <= set(spec):
        raise ConfigError(_SOURCE, [f"{name}: a {kind} range needs 'low' and 'high'"
                                    f"{' (and optional step)' if kind == 'int' else ''}. Got keys {sorted(spec)} instead."])
    return _KINDS[kind](**spec)
