"""Expectations on the input (``preprocess.validate``), checked in the preprocessing fit's pass.

    checks = Expectations.plan(section.validate, frame, workdir)  # schema read; drift references loaded
    checks.attach(pipeline)       # an ``expect`` step goes first: its statistics ride on the first fit scan
    pipeline.fit(frame)           # or the one-pass barrier stage, which fits and transforms
    checks.settle(pipeline)       # takes the step out again and evaluates every expectation
    checks.enforce(uri)           # fail: ExpectationError listing every violation (exit 1); warn: log them

Types come from the input's schema (no scan). Not-null fractions, ranges, allowed values,
uniqueness, the row count and drift sketches are statistics kinds (``_profile``) of the
``expect`` step, which the fit computes together with the steps of its first depth, in the
same scan, as exact mergeable partials; only a pipeline with nothing else to fit scans for
them alone. The step never reaches a saved pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from h3spark.config._validate import ValidateConfig
from h3spark.errors import ExpectationError
from h3spark.ingest import CORRUPT_COLUMN
from h3spark.preprocess._expect_checks import column_outcomes, profile_kind, request_kinds, row_outcomes
from h3spark.preprocess._expect_report import FORMAT, REPORT_JSON, write_report
from h3spark.preprocess._expect_step import Expect
from h3spark.preprocess._reference import load_reference
from h3spark.storage import resolve_uri

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One expectation checked: the config key, the column, what was found against the bound."""

    expectation: str
    column: str | None
    passed: bool
    observed: Any
    bound: Any
    message: str
    detail: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.expectation}: {self.message}"


class Expectations:
    """The checks of one ``validate:`` section against one input (see the module docstring)."""

    def __init__(self, config: ValidateConfig, schema: dict[str, str], references: dict[str, Any]):
        self.config, self.schema, self.references = config, schema, references
        self.outcomes: list[Outcome] = []
        self.profiles: dict[str, dict] = {}
        self.rows: int | None = None

    @classmethod
    def plan(cls, config: ValidateConfig, frame, workdir: str | None) -> "Expectations":
        """Read the input's schema and load every drift reference (a missing one fails here, exit 2)."""
        schema = {f.name: f.dataType.simpleString() for f in frame.schema.fields if f.name != CORRUPT_COLUMN}
        references = {name: load_reference(frame.sparkSession, spec.drift, name, workdir)
                      for name, spec in config.columns.items() if spec.drift is not None}
        return cls(config, schema, references)

    def requests(self) -> list[tuple[str, str]]:
        """The (column, kind) statistics the checks need from the scan."""
        found = {(name, kind) for name, spec in self.config.columns.items()
                 for kind in request_kinds(spec, self.schema.get(name))}
        found |= {(name, profile_kind(self.schema.get(name))) for name in self.config.profile
                  if profile_kind(self.schema.get(name))}
        return sorted(found)

    def attach(self, pipeline) -> None:
        """Put the ``expect`` step first in ``pipeline`` (nothing when no check needs a scan)."""
        requests = self.requests()
        if requests or self.config.rows is not None:
            pipeline.steps.insert(0, Expect(sorted({column for column, _ in requests}), requests))

    def settle(self, pipeline) -> None:
        """Take the fitted ``expect`` step out of ``pipeline`` and evaluate every expectation."""
        state = pipeline.steps.pop(0).state_ if pipeline.steps and pipeline.steps[0].kind == Expect.kind else None
        self.evaluate(state)

    def evaluate(self, state: dict | None) -> list[Outcome]:
        stats, self.rows = (state or {}).get("stats", {}), (state or {}).get("rows")
        outcomes = row_outcomes(self.config.rows, self.rows) + self._extra_columns()
        for name, spec in self.config.columns.items():
            outcomes += column_outcomes(name, spec, self.schema, stats, self.references.get(name))
        self.outcomes = [Outcome(**outcome) for outcome in outcomes]
        self.profiles = {name: {"kind": kind, "type": self.schema[name], "values": stats[f"{name}|{kind}"]}
                         for name, kind in self.requests() if kind in ("sketch", "counts")}
        return self.outcomes

    def schema_failed(self) -> bool:
        """Whether a check that needs no scan fails (a missing column, a wrong type, an extra column)."""
        outcomes = self._extra_columns() + [outcome for name, spec in self.config.columns.items()
                                            for outcome in column_outcomes(name, spec, self.schema, None)]
        return any(not outcome["passed"] for outcome in outcomes)

    def _extra_columns(self) -> list[dict]:
        if self.config.allow_extra_columns:
            return []
        extra = [name for name in self.schema if name not in self.config.columns]
        found = f"the input has columns no expectation names: {', '.join(extra)}" if extra else "no other columns"
        return [{"expectation": "allow_extra_columns", "column": None, "passed": not extra, "observed": extra,
                 "bound": [], "message": found + " (allow_extra_columns: false)"}]

    @property
    def violations(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.passed]

    def enforce(self, dataset_uri: str, workdir: str | None) -> None:
        """on_failure fail: write the report to report_uri and raise ExpectationError; warn: log each violation."""
        violations = self.violations
        if not violations:
            logger.info("expectations: all %d hold dataset=%s", len(self.outcomes), dataset_uri)
            return
        if self.config.on_failure == "warn":
            for outcome in violations:
                logger.warning("expectation violated (on_failure: warn): %s dataset=%s", outcome.line(), dataset_uri)
            return
        folder = resolve_uri(self.config.report_uri or dataset_uri.rstrip("/") + "_expectations", workdir)
        page = write_report(folder, self.report(dataset_uri, published=False))
        lines = [outcome.line() for outcome in violations]
        raise ExpectationError("\n  ".join([
            f"{len(violations)} of {len(self.outcomes)} expectations of preprocess.validate are violated, so nothing "
            f"was published to {dataset_uri}. Fix the data, or the bounds, or set validate.on_failure: warn. "
            f"Report: {page}", *lines]), lines)

    def report(self, dataset_uri: str, published: bool) -> dict:
        """The report (JSON-able): every outcome, the schema and the recorded profiles."""
        return {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(), "dataset": dataset_uri,
                "published": published, "on_failure": self.config.on_failure, "passed": not self.violations,
                "checked": len(self.outcomes), "failed": len(self.violations), "rows": self.rows,
                "schema": self.schema, "results": [asdict(outcome) for outcome in self.outcomes],
                "profiles": self.profiles}

    def summary(self) -> dict:
        """What the manifest records about the checks."""
        return {"checked": len(self.outcomes), "failed": len(self.violations), "on_failure": self.config.on_failure,
                "report": REPORT_JSON}
