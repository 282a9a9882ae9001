"""The MLP's options, checked once for every framework's builder: layer widths and dropout.

    >>> mlp_widths(128), mlp_widths([64, 32.0])
    ([128], [64, 32])
"""

from __future__ import annotations

from h3spark.errors import ConfigError


def mlp_widths(hidden) -> list[int]:
    """``hidden`` (a width or a list of widths; whole floats count, as a search may give them) as ints."""
    sizes = list(hidden) if isinstance(hidden, (list, tuple)) else [hidden]
    if not sizes or not all(_is_width(size) for size in sizes):
        raise ConfigError("model", [f"The 'hidden' parameter of the MLP must be a positive int or a list of them. "
                                    f"Got {hidden!r} instead."])
    return [int(size) for size in sizes]


def _is_width(size) -> bool:
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        return False
    return size >= 1 and float(size).is_integer()


def check_dropout(dropout) -> float:
    """``dropout`` (the rate after each hidden layer; 0 adds no dropout layer) as a float in [0, 1)."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError("model", [f"The 'dropout' parameter of the MLP must be a number in the range [0, 1). "
                                    f"Got {dropout!r} instead."])
    return float(dropout)
