"""The reference side of a drift expectation: a column's profile in another dataset.

``reference`` is a published h3spark dataset (typically the one a model was trained on) or
Parquet files. A published dataset whose expectations report profiled the column (``validate.
profile`` or a drift check in its own run) answers from the report, with no scan; otherwise
one Spark scan of that column of the reference computes the same profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from h3spark.config._validate import DriftExpectation
from h3spark.errors import DataError
from h3spark.preprocess._expect_checks import profile_kind
from h3spark.preprocess._expect_report import read_profile
from h3spark.preprocess._expect_step import Expect
from h3spark.preprocess._pipeline import Pipeline
from h3spark.spark import spark_errors
from h3spark.storage import filesystem_for, is_published, resolve_published, resolve_uri


@dataclass
class Reference:
    uri: str
    column: str
    kind: str     # "sketch" (numbers) or "counts" (categories)
    values: list  # [bucket or value, count] pairs
    origin: str   # "profile in its report" or "scanned"


def load_reference(spark, drift: DriftExpectation, name: str, workdir: str | None) -> Reference:
    """The profile of the reference column of ``columns.NAME.drift``; DataError (exit 2) when unusable."""
    column, where = drift.column or name, f"preprocess.validate.columns.{name}.drift.reference"
    uri = resolve_uri(drift.reference, workdir)
    fs = filesystem_for(uri)
    if not fs.exists(uri):
        raise DataError(f"{where}: {uri} does not exist. Point it at the dataset the model was trained on (a "
                        f"published h3spark dataset, or Parquet files holding column {column!r}).")
    published = is_published(uri, fs)
    folder = resolve_published(uri, fs) if published else uri
    profile = read_profile(folder, column) if published else None
    if profile is not None:
        return Reference(drift.reference, column, profile["kind"], profile["values"], "profile in its report")
    return _scan(spark, folder, column, where, drift.reference)


def _scan(spark, folder: str, column: str, where: str, shown: str) -> Reference:
    with spark_errors(f"reading the drift reference {folder}"):
        frame = spark.read.parquet(folder)
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    if column not in types:
        raise DataError(f"{where}: {shown} has no column {column!r} (it has {', '.join(types)}). Name the reference's "
                        "column with drift.column, or add the column to validate.profile (or keep:) of the run that "
                        "wrote the reference.")
    kind = profile_kind(types[column])
    if kind is None:
        raise DataError(f"{where}: column {column!r} of {shown} is {types[column]}; drift compares numbers, strings "
                        "or booleans.")
    step = Expect([column], [(column, kind)])
    Pipeline([step], label=None).fit(frame.select(column))
    values = step.state_["stats"][f"{column}|{kind}"]
    if not values:
        raise DataError(f"{where}: column {column!r} of {shown} holds no values, so there is nothing to compare with.")
    return Reference(shown, column, kind, values, "scanned")
