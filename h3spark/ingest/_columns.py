"""The columns of ingested data: what a manifest may claim, and the rows a reader could not read.

A published dataset's manifest names its ``features`` (vector) and ``label`` columns for
the feeder and the trainers. The ingest stage publishes a source's columns as they are, so
it claims the conventional names only where the data has such columns.

Spark's CSV reader drops a row's extra fields and pads a short row with nulls without a
word, and puts U+FFFD in place of bytes that are not UTF-8. With a corrupt-record column in
the schema, it keeps the raw text of a row with the wrong number of fields there instead
(as its JSON reader does for broken JSON). :func:`checked_rows` refuses such rows where
nothing could quarantine them; preprocessing sends them to its quarantine with a reason.

    >>> manifest_columns(frame.schema)
    {'features': None, 'label': 'label'}
"""

from __future__ import annotations

import operator
from functools import reduce

from h3spark.errors import DataError

FEATURES = "features"
LABEL = "label"
CORRUPT_COLUMN = "_corrupt_record"  # Spark's default spark.sql.columnNameOfCorruptRecord
REPLACEMENT_CHARACTER = "\ufffd"
_NUMBERS = ("byte", "short", "integer", "long", "float", "double", "decimal", "boolean")


def manifest_columns(schema) -> dict:
    """``features``/``label`` for the manifest of data with this Spark schema: the conventional
    name where the data has such a column (features: an array of numbers), else None."""
    types = {field.name: field.dataType for field in schema.fields}
    vector = FEATURES in types and types[FEATURES].typeName() == "array" and _is_number(types[FEATURES].elementType)
    return {"features": FEATURES if vector else None, "label": LABEL if LABEL in types else None}


def _is_number(data_type) -> bool:
    return data_type.typeName().split("(")[0] in _NUMBERS


def checked_rows(frame, where: str):
    """The frame without its corrupt-record column; a DataError naming ``where`` when the reader
    marked a row malformed or replaced undecodable bytes (for a stage that publishes rows as they are).

    One Spark job looks for a row that fails any check; the row it finds tells which one."""
    from pyspark.sql import functions as F

    text = [field.name for field in frame.schema.fields if field.dataType.typeName() == "string"
            and field.name != CORRUPT_COLUMN]
    conditions = [F.col(CORRUPT_COLUMN).isNotNull()] if CORRUPT_COLUMN in frame.columns else []
    conditions += [F.col(name).contains(REPLACEMENT_CHARACTER) for name in text]
    if conditions:
        # whole rows: Spark refuses a query of a raw file's corrupt-record column alone
        example = frame.filter(reduce(operator.or_, conditions)).limit(1).collect()
        if example:
            row = {key: value for key, value in example[0].asDict().items() if value is not None}
            raise DataError(f"{where} has rows that are {_problem_of(row, text)}, e.g. {_shortened(row)}. The ingest "
                            "stage publishes rows as they are read: fix the source, or add a preprocess: section, which "
                            "sends bad rows to quarantine with a reason.")
    return frame.drop(CORRUPT_COLUMN) if CORRUPT_COLUMN in frame.columns else frame


def _problem_of(row: dict, text: list[str]) -> str:
    """Which check a bad row failed: malformed first, else its first text column holding U+FFFD."""
    if row.get(CORRUPT_COLUMN) is not None:
        return "malformed (a CSV row with more or fewer fields than the header, or broken JSON)"
    name = next(name for name in text if REPLACEMENT_CHARACTER in (row.get(name) or ""))
    return f"not UTF-8 in column {name!r} (the reader put U+FFFD in place of undecodable bytes)"


def _shortened(row: dict, limit: int = 300) -> str:
    text = repr(row)
    return text if len(text) <= limit else text[:limit] + "..."
