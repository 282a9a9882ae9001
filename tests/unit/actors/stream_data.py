"""Digits as CSV records, a pipeline fitted on them, and Kafka-like blocks of raw messages: what the streaming
job's unit and integration tests feed it."""

import numpy as np
import pyarrow as pa
from pydantic import TypeAdapter

from h3spark.actors import encode, raw_envelope, records_table, source_records
from h3spark.config import PreprocessStep
from h3spark.config._actors import ProducerSourceConfig
from h3spark.preprocess import Pipeline, preprocessor_for

#: Lines that are no digits record: a short line, a pixel that is no number, an empty line.
BAD_LINES = ["1,2,3", ",".join(["x"] * 65), ""]


def digits_csv() -> tuple[list[str], list[str]]:
    """scikit-learn's digits as CSV lines (64 pixels, then the label) and the column names."""
    return source_records(ProducerSourceConfig(bundled="digits"), "csv", ".")


def fitted_pipeline(records: list[str], columns: list[str]) -> Pipeline:
    """Pixels scaled to [0, 1] (min and max fitted on ``records``), assembled into ``features``."""
    pixels = [name for name in columns if name != "label"]
    steps = TypeAdapter(list[PreprocessStep]).validate_python([{"kind": "min_max_scale", "columns": pixels},
                                                               {"kind": "assemble", "columns": pixels}])
    pipeline = Pipeline([preprocessor_for(step) for step in steps], label="label")
    return pipeline.fit(records_table(raw_envelope("fit", records, "csv", columns)))


def batch_features(pipeline: Pipeline, records: list[str], columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The pipeline applied in batch to ``records``: (features, labels) of the rows it keeps."""
    result = pipeline.transform(records_table(raw_envelope("batch", records, "csv", columns)))
    features = np.asarray(result.table.column("features").combine_chunks().flatten()).reshape(result.table.num_rows, -1)
    return features, np.asarray(result.table.column("label")).astype(np.int64)


def raw_messages(records: list[str], columns: list[str], per_message: int, meta: dict | None = None) -> list[bytes]:
    return [bytes(encode(raw_envelope("producer", records[begin:begin + per_message], "csv", columns, meta)))
            for begin in range(0, len(records), per_message)]


def kafka_block(values: list[bytes], topic: str = "digits.raw", partition: int = 0, first_offset: int = 0) -> pa.Table:
    """Records as Spark's Kafka source hands them to a task (the columns the job selects)."""
    return pa.table({"topic": [topic] * len(values), "partition": pa.array([partition] * len(values), pa.int32()),
                     "offset": pa.array(range(first_offset, first_offset + len(values)), pa.int64()),
                     "value": pa.array(values, pa.binary())})
