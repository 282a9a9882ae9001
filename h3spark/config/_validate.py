"""The ``preprocess.validate:`` section: what the input must look like before anything is published.

    preprocess:
      validate:
        on_failure: fail             # fail: exit 1, nothing published; warn: publish, log the violations
        rows: {min: 1000}
        columns:
          age:    {type: integer, not_null: 0.99, min: 0, max: 120}
          city:   {type: string, allowed: [oslo, rome]}
          id:     {unique: true}
          income: {drift: {reference: datasets/train_v1, metric: psi, max: 0.2}}
        profile: [income]            # recorded in the report: a later run's drift reference

The checks ride on the preprocessing fit's statistics pass (see h3spark.preprocess._expectations).
"""

from __future__ import annotations

import difflib
import warnings
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from h3spark.config._base import ERROR_AT, StrictModel
from h3spark.config._paths import escape_message, escapes_workdir

# families match several Spark types; the other names match Spark's simpleString exactly
TYPE_FAMILIES = {"integer": ("tinyint", "smallint", "int", "bigint"), "floating": ("float", "double"),
                 "number": ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")}
COLUMN_TYPES = (*TYPE_FAMILIES, "tinyint", "smallint", "int", "bigint", "float", "double", "decimal", "string",
                "boolean", "binary", "date", "timestamp", "timestamp_ntz", "array")
NUMERIC_TYPES = ("integer", "floating", "number", "tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


class DriftExpectation(StrictModel):
    """The column's distribution against a reference's: PSI over the reference's quantile bins, or KS."""

    reference: str = Field(description="a published h3spark dataset (the profile in its expectations report, else its "
                           "Parquet files) or Parquet files holding the column")
    column: str | None = Field(default=None, description="the column in the reference; default: the same name")
    metric: Literal["psi", "ks"] = "psi"
    max: float = Field(gt=0, description="the largest PSI (0.1 slight, 0.25 major by convention) or KS statistic")
    bins: int = Field(default=10, ge=2, le=100, description="PSI bins: quantiles of the reference (numeric columns)")

    @field_validator("reference")
    @classmethod
    def _inside_workdir(cls, value: str) -> str:
        return _within_workdir(value)

    @model_validator(mode="after")
    def _ks_is_a_fraction(self) -> "DriftExpectation":
        if self.metric == "ks" and self.max >= 1:
            raise ValueError(f"a KS statistic lies in [0, 1], so max {self.max:g} never fails; use a bound below 1")
        return self


class ColumnExpectations(StrictModel):
    """Expectations on one input column."""

    type: Literal[COLUMN_TYPES] | None = Field(default=None, description="Spark type name or family")
    not_null: float | None = Field(default=None, ge=0, le=1, description="the least fraction of rows holding a value "
                                   "(null and NaN are missing); 1 means no missing values")
    min: float | None = Field(default=None, description="the smallest value allowed (inclusive)")
    max: float | None = Field(default=None, description="the largest value allowed (inclusive)")
    allowed: list[bool] | list[int] | list[float] | list[str] | None = Field(
        default=None, min_length=1, description="every non-null value must be one of these (all of one type)")
    unique: bool = Field(default=False, description="no non-null value appears twice")
    drift: DriftExpectation | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_expectations(cls, data):
        if isinstance(data, dict):
            for key in data:
                if key not in cls.model_fields:
                    close = difflib.get_close_matches(str(key), list(cls.model_fields), n=1, cutoff=0.6)
                    hint = f"Did you mean '{close[0]}'? " if close else ""
                    raise PydanticCustomError("unknown_expectation", "unknown expectation. {hint}Known: {known}.", {
                        "hint": hint, "known": ", ".join(cls.model_fields), ERROR_AT: str(key)})
        return data

    @field_validator("allowed", mode="before")
    @classmethod
    def _one_type(cls, value):
        kinds = sorted({_kind(item) for item in value}) if isinstance(value, list) else []
        if len(kinds) > 1:
            raise ValueError(f"must hold values of one type (strings, numbers or booleans); got {', '.join(kinds)}")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> "ColumnExpectations":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}; no value could pass")
        numeric = self.type is None or self.type in NUMERIC_TYPES
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"min and max need a numeric column, and type is {self.type!r}")
        if not self.is_set():
            raise ValueError("states no expectation; give at least one of " + ", ".join(self.model_fields))
        return self

    def is_set(self) -> bool:
        return any(getattr(self, name) is not None and getattr(self, name) is not False for name in type(self).model_fields)


def _within_workdir(path: str) -> str:
    """A relative path lands under the workdir (as dataset.uri does); climbing out with '..' is refused."""
    if escapes_workdir(path):
        raise ValueError(escape_message(path))
    return path


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


class RowCountExpectation(StrictModel):
    """Bounds on the number of input rows (inclusive)."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> "RowCountExpectation":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}; no row count could pass")
        return self


class ValidateConfig(StrictModel):
    """Expectations on the input, checked in the preprocessing fit's pass; a report goes next to the manifest."""

    on_failure: Literal["fail", "warn"] = Field(
        default="fail", description="fail: exit 1 listing every violation, nothing published; warn: log them, publish")
    rows: RowCountExpectation | None = None
    columns: dict[str, ColumnExpectations] = Field(default_factory=dict)
    allow_extra_columns: bool = Field(default=True, description="false: a column not named in columns is a violation")
    profile: list[str] = Field(default_factory=list, description="columns whose distribution the report records, "
                               "so that a later run can use this dataset as a drift reference")
    report_uri: str | None = Field(default=None, description="where a failing run's report goes (nothing is "
                                   "published); default: the dataset URI + '_expectations'")

    @field_validator("report_uri")
    @classmethod
    def _inside_workdir(cls, value: str | None) -> str | None:
        return value if value is None else _within_workdir(value)

    @model_validator(mode="after")
    def _something_to_do(self) -> "ValidateConfig":
        if self.rows is None and not self.columns and not self.profile:
            raise ValueError("states no expectation; add rows:, columns: or profile:, or remove validate:")
        return self


with warnings.catch_warnings():
    # the YAML key is 'validate': pydantic warns that the field shadows BaseModel.validate (v1's deprecated
    # classmethod, unused here); a subclass inherits the field without the warning
    warnings.filterwarnings("ignore", message='Field name "validate"', category=UserWarning)

    class WithValidate(StrictModel):
        """A config section holding a ``validate:`` section."""

        validate: ValidateConfig | None = Field(default=None, description="expectations on the input, checked in the "
                                                "fit's pass (see ValidateConfig)")
