"""What an ingested dataset's manifest claims: only the features and label columns the data has."""

import ast
from pathlib import Path

from pyspark.sql.types import ArrayType, DoubleType, FloatType, LongType, StringType, StructField, StructType

import h3spark
from h3spark.ingest import load_bundled, manifest_columns

PACKAGE = Path(h3spark.__file__).parent


def _schema(**columns) -> StructType:
    return StructType([StructField(name, data_type) for name, data_type in columns.items()])


def test_a_source_without_such_columns_claims_none():
    plain = _schema(x1=DoubleType(), x2=DoubleType(), y=LongType())
    assert manifest_columns(plain) == {"features": None, "label": None}


def test_a_label_column_is_claimed_and_a_features_column_only_when_it_holds_numbers():
    assert manifest_columns(_schema(features=StringType(), label=LongType())) == {"features": None, "label": "label"}
    vectors = _schema(features=ArrayType(FloatType()), label=StringType())
    assert manifest_columns(vectors) == {"features": "features", "label": "label"}
    assert manifest_columns(_schema(features=ArrayType(StringType()))) == {"features": None, "label": None}


def test_bundled_datasets_have_the_columns_their_manifest_claims():
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(load_bundled("iris").schema)  # as spark.createDataFrame(table) has it
    assert manifest_columns(schema) == {"features": "features", "label": "label"}


def test_the_corrupt_record_column_and_the_replacement_character_have_one_home():
    """preprocess (above ingest) imports them from ingest instead of defining its own."""
    names = {"CORRUPT_COLUMN", "REPLACEMENT_CHARACTER"}
    homes = sorted(f"{path.relative_to(PACKAGE)}:{target.id}" for path in PACKAGE.rglob("*.py")
                   for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assign)
                   for target in node.targets if isinstance(target, ast.Name) and target.id in names)
    assert homes == ["ingest/_columns.py:CORRUPT_COLUMN", "ingest/_columns.py:REPLACEMENT_CHARACTER"]
