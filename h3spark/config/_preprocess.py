"""The ``preprocess:`` section: a pipeline of preprocessing steps and what to do with bad rows.

    preprocess:
      label: label
      max_bad_fraction: 0.01
      steps:
        - {kind: impute, columns: [age, income], strategy: median}
        - {kind: standard_scale, columns: [age, income]}
        - {kind: one_hot, columns: [city]}
        - {kind: assemble, columns: [age, income, city]}

Each step kind is one model below; ``kind`` picks it, so a typo in a step's key is
reported with the keys that step knows.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from h3spark.config._base import StrictModel
from h3spark.config._validate import WithValidate

CAST_TYPES = ("float32", "float64", "int32", "int64", "string", "bool", "timestamp")
_COLUMNS = Field(min_length=1, description="input column names")
_MAX_CATEGORY_CHARS = Field(default=1024, gt=0, description="longest category kept in the vocabulary; a row holding a "
                            "longer value goes to quarantine")


class _Step(StrictModel):
    @field_validator("columns", check_fields=False)
    @classmethod
    def _unique_columns(cls, value):
        duplicates = sorted({name for name in value if list(value).count(name) > 1})
        if duplicates:
            raise ValueError(f"must not repeat a column; {', '.join(duplicates)} appear more than once")
        return value


class CastStep(_Step):
    """Parse or cast columns; a value that does not parse sends its row to quarantine."""

    kind: Literal["cast"]
    columns: dict[str, Literal[CAST_TYPES]] = _COLUMNS


class ImputeStep(_Step):
    """Fill missing values with a statistic of the column (or a constant)."""

    kind: Literal["impute"]
    columns: list[str] = _COLUMNS
    strategy: Literal["mean", "median", "most_frequent", "constant"] = "mean"
    fill_value: float | int | str | None = None

    @model_validator(mode="after")
    def _constant_needs_value(self) -> "ImputeStep":
        if self.strategy == "constant" and self.fill_value is None:
            raise ValueError("strategy 'constant' needs fill_value; add fill_value: 0 (or a string)")
        return self


class StandardScaleStep(_Step):
    kind: Literal["standard_scale"]
    columns: list[str] = _COLUMNS
    with_mean: bool = True
    with_std: bool = True


class MinMaxScaleStep(_Step):
    kind: Literal["min_max_scale"]
    columns: list[str] = _COLUMNS
    feature_range: tuple[float, float] = (0.0, 1.0)

    @field_validator("feature_range")
    @classmethod
    def _ordered(cls, value):
        if not value[0] < value[1]:
            raise ValueError("must be [low, high] with low < high")
        return value


class OneHotStep(_Step):
    """Each column becomes a vector with one slot per category (vocabulary sorted by value)."""

    kind: Literal["one_hot"]
    columns: list[str] = _COLUMNS
    handle_unknown: Literal["ignore", "error", "quarantine"] = "ignore"
    max_categories: int | None = Field(default=None, gt=0)
    max_category_chars: int = _MAX_CATEGORY_CHARS


class StringIndexStep(_Step):
    """Each column becomes an int64 index into its vocabulary."""

    kind: Literal["string_index"]
    columns: list[str] = _COLUMNS
    order: Literal["frequency", "alphabetical"] = "frequency"
    handle_unknown: Literal["keep", "error", "quarantine"] = "keep"
    max_categories: int | None = Field(default=None, gt=0, description="keep the most frequent only; others are unknown")
    max_category_chars: int = _MAX_CATEGORY_CHARS


class BucketizeStep(_Step):
    """Numbers to bucket indices, by given boundaries or num_buckets equal-width buckets."""

    kind: Literal["bucketize"]
    columns: list[str] = _COLUMNS
    boundaries: list[float] | None = None
    num_buckets: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _one_rule(self) -> "BucketizeStep":
        if (self.boundaries is None) == (self.num_buckets is None):
            raise ValueError("give exactly one of boundaries: [..] or num_buckets: N")
        if self.boundaries is not None and sorted(set(self.boundaries)) != list(self.boundaries):
            raise ValueError("boundaries must be strictly increasing")
        return self


class HashFeaturesStep(_Step):
    """Feature hashing: the columns' (name, value) pairs into one vector of num_features slots."""

    kind: Literal["hash_features"]
    columns: list[str] = _COLUMNS
    num_features: int = Field(default=1024, gt=0)
    output: str = "hashed"


class TextHashStep(_Step):
    """Text to a hashed bag of words (token counts in num_features slots)."""

    kind: Literal["text_hash"]
    columns: list[str] = _COLUMNS
    num_features: int = Field(default=1024, gt=0)
    lowercase: bool = True
    token_pattern: str = r"\w+"

    @field_validator("token_pattern")
    @classmethod
    def _compiles(cls, value):
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"is not a valid regular expression ({error})") from None
        return value


class ImageStep(_Step):
    """Reshape flat pixel lists and scale them to float32 in [0, 1]."""

    kind: Literal["image"]
    columns: list[str] = _COLUMNS
    shape: list[int] = Field(min_length=1)
    max_value: float | None = Field(default=None, gt=0, description="pixel maximum; default: fitted from the data")

    @field_validator("shape")
    @classmethod
    def _positive(cls, value):
        if any(size <= 0 for size in value):
            raise ValueError("every dimension must be greater than 0")
        return value


class SplitStep(_Step):
    """A seeded split by a hash of each row's content (or of key columns)."""

    kind: Literal["split"]
    fractions: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})
    seed: int = 0
    key: list[str] | None = None
    column: str = "split"

    @field_validator("fractions")
    @classmethod
    def _fractions_sum_to_one(cls, value):
        if not value or any(fraction <= 0 for fraction in value.values()):
            raise ValueError("must map split names to fractions greater than 0")
        if abs(sum(value.values()) - 1.0) > 1e-9:
            raise ValueError(f"must add up to 1; they add up to {sum(value.values()):g}")
        bad = [name for name in value if not re.fullmatch(r"[A-Za-z0-9_-]+", name)]
        if bad:
            raise ValueError(f"split names may use letters, digits, '_' and '-' only; got {bad}")
        return value


class PythonStep(_Step):
    """A user-defined worker: ``module:function`` taking and returning a pyarrow.Table."""

    kind: Literal["python"]
    function: str
    params: dict[str, Any] = Field(default_factory=dict)
    columns: list[str] = Field(default_factory=list, description="columns it reads (for fit ordering)")
    outputs: list[str] = Field(default_factory=list, description="columns it writes")

    @field_validator("function")
    @classmethod
    def _import_path(cls, value):
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
            raise ValueError("must be an import path 'package.module:function'")
        return value


class AssembleStep(_Step):
    """Concatenate numeric and vector columns into one float32 feature vector."""

    kind: Literal["assemble"]
    columns: list[str] = _COLUMNS
    output: str = "features"


_ALL_STEPS = (CastStep, ImputeStep, StandardScaleStep, MinMaxScaleStep, OneHotStep, StringIndexStep, BucketizeStep,
              HashFeaturesStep, TextHashStep, ImageStep, SplitStep, PythonStep, AssembleStep)
PreprocessStep = Annotated[Union[_ALL_STEPS], Field(discriminator="kind")]
# kind -> model, e.g. STEP_MODELS["impute"] is ImputeStep
STEP_MODELS = {model.model_fields["kind"].annotation.__args__[0]: model for model in _ALL_STEPS}


class PreprocessConfig(WithValidate):
    """A pipeline of steps, fitted on Spark and applied to every row; output to ``dataset.uri``.
    ``validate:`` (see :class:`ValidateConfig`) states what the input must look like."""

    steps: list[PreprocessStep] = Field(min_length=1)
    features: str = "features"
    label: str | None = "label"
    keep: list[str] = Field(default_factory=list, description="extra input columns copied to the output")
    max_bad_fraction: float = Field(default=0.01, ge=0, le=1)
    strict: bool = False
    max_state_mib: float = Field(default=16, gt=0, description="largest fitted pipeline (its JSON, saved in the "
                                 "manifest); a larger one fails the job, naming the step that holds the most")
    quarantine_uri: str | None = Field(default=None, description="default: the dataset URI + '_quarantine'")
    row_groups_per_file: int = Field(default=4, gt=0)
    cache_input: bool = Field(default=True, description="cache the input between fit scans (fit_mode scans, Spark's "
                              "reader only: the pyarrow reader reads the row groups again)")
    fit_mode: Literal["auto", "one_pass", "scans"] = Field(
        default="auto", description="one_pass: each task holds its rows, fits through a barrier allGather of exact "
        "statistics, then transforms them (one read of the input); scans: one Spark scan per fit depth, then the "
        "transform; auto: scans where the tasks read the source with pyarrow (see reader), else one_pass when the input "
        "fits one_pass_max_mib and its partitions fit the cluster's slots")
    one_pass_max_mib: int = Field(default=2048, gt=0, description="largest input (Spark's size estimate) for one_pass")
    reader: Literal["auto", "pyarrow", "spark"] = Field(
        default="auto", description="pyarrow: the tasks read a Parquet source's row groups themselves (no JVM row "
        "conversion); spark: Spark's reader; auto: pyarrow for a Parquet file or flat directory of them with one "
        "schema and no source.options, else spark")
