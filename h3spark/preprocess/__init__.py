"""Preprocess: Preprocessor, Worker and Pipeline, fitted on Spark and applied to Arrow blocks.

    >>> from h3spark.preprocess import Assemble, Impute, OneHot, Pipeline, StandardScale
    >>> pipeline = Pipeline([Impute(["x"]), StandardScale(["x"]), OneHot(["city"]), Assemble(["x", "city"])])
    >>> pipeline.fit(spark_dataframe)            # one Spark scan per fit depth
    >>> result = pipeline.transform(arrow_table) # the same numpy/pyarrow code the Spark tasks run
"""

from h3spark.preprocess._base import Preprocessor, Worker, preprocessor_for
from h3spark.preprocess._block import BadRowError, Block
from h3spark.preprocess._categorical import HashFeatures, OneHot, StringIndex, TextHash
from h3spark.preprocess._custom import PythonFunction, Split
from h3spark.preprocess._expectations import Expectations, Outcome
from h3spark.preprocess._job import PreprocessResult, pipeline_from_config, preprocess
from h3spark.preprocess._pipeline import Pipeline, TransformResult
from h3spark.preprocess._tabular import Bucketize, Cast, Impute, MinMaxScale, StandardScale
from h3spark.preprocess._vectors import Assemble, Image

__all__ = [
    "Preprocessor",
    "Worker",
    "Pipeline",
    "TransformResult",
    "Block",
    "BadRowError",
    "Cast",
    "Impute",
    "StandardScale",
    "MinMaxScale",
    "Bucketize",
    "OneHot",
    "StringIndex",
    "HashFeatures",
    "TextHash",
    "Image",
    "Split",
    "PythonFunction",
    "Assemble",
    "preprocess",
    "pipeline_from_config",
    "preprocessor_for",
    "PreprocessResult",
    "Expectations",
    "Outcome",
]
