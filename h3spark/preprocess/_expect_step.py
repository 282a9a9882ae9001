"""The ``expect`` step: carries the expectations' statistics requests through a pipeline's fit.

Expectations put it first in the pipeline and take it out after the fit, so it never reaches
a saved pipeline; its ``state_`` holds the finished statistics and the row count.
"""

from __future__ import annotations

from h3spark.preprocess._base import Preprocessor
from h3spark.preprocess._stats import ROWS_KEY, by_frequency, finish


class Expect(Preprocessor):
    """A pass-through step whose fit computes the expectations' statistics (built by Expectations only)."""

    kind = "expect"

    def __init__(self, columns=None, requests=()):
        super().__init__(columns=list(columns or []), requests=[list(request) for request in requests])

    @property
    def spec(self) -> dict:
        return self.params

    def inputs(self) -> list[str]:
        return list(self.params["columns"])

    def outputs(self) -> list[str]:
        return []

    def statistics(self) -> list[tuple[str, str]]:
        return [(column, kind) for column, kind in self.params["requests"]]

    @property
    def needs_fit(self) -> bool:
        return True  # the row count comes with any scan, even with no column statistics

    def _fit(self, merged: dict) -> dict:
        stats = {}
        for column, kind in self.statistics():
            value = finish(merged, column, kind)
            stats[f"{column}|{kind}"] = [[v, value[v]] for v in by_frequency(value)] if kind == "counts" else value
        return {"rows": int(merged.get(ROWS_KEY, 0)), "stats": stats}

    def _workers(self) -> list:
        return []
