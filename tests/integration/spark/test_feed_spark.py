"""DataIterator over a dataset Spark wrote (array<float>, nullable elements, no manifest columns)."""

import numpy as np

from h3spark.feed import DataIterator
from h3spark.storage import describe_splits, publishing, write_manifest


def test_iterator_reads_what_spark_writes(spark, workdir):
    rows = [(float(i), [float(i), i + 0.5, i + 1.0], i % 3, "train" if i < 40 else "test") for i in range(50)]
    frame = spark.createDataFrame(rows, "id double, features array<float>, label long, split string")
    uri = f"file://{workdir}/spark-data"
    with publishing(uri) as tmp_uri:
        frame.repartition(3).write.partitionBy("split").parquet(tmp_uri)
        write_manifest(tmp_uri, {"rows": 50, "features": "features", "label": "label", "splits": describe_splits(tmp_uri)})
    seen = []
    for rank in range(2):
        data = DataIterator(uri, batch_size=8, shuffle=True, rank=rank, num_workers=2, expect={"features": (3,)})
        assert data.dataset_.split == "train" and len(data) == 3
        for features, labels in data:
            assert features.dtype == np.float32
            np.testing.assert_array_equal(labels, features[:, 0].astype(np.int64) % 3)
            seen += features[:, 0].astype(int).tolist()
    assert sorted(seen) == list(range(40))
