"""A storage failure inside a Spark task on the real local HDFS reaches the user as a StorageError naming it.

HDFS stays up (it is shared): the file a planned scan needs is removed from HDFS before the
tasks read it, so the task fails in Hadoop's client, a JVM-side storage error, not a Python one.
"""

import uuid

import pytest

from h3spark.errors import StorageError
from h3spark.preprocess import Pipeline
from h3spark.preprocess._tabular import StandardScale
from h3spark.storage import filesystem_for


def test_a_file_gone_from_hdfs_under_a_planned_scan_is_a_storage_error_naming_it(spark, hdfs_service):
    root = f"{hdfs_service.uri}/tests/failures-{uuid.uuid4().hex[:8]}"
    fs = filesystem_for(root, hdfs_service.webhdfs_url)
    csv = f"{root}/rows.csv"
    try:
        fs.write_bytes(csv, ("x,label\n" + "".join(f"{i * 0.5},{i % 2}\n" for i in range(40))).encode())
        frame = spark.read.options(header="true", inferSchema="true").csv(csv)
        fs.delete(csv)  # after Spark planned the scan
        with pytest.raises(StorageError) as caught:
            Pipeline([StandardScale(["x"])], label="label").fit(frame)
    finally:
        fs.delete(root)
    message = str(caught.value)
    assert message.startswith("a preprocessing task failed: FileNotFoundException: ") and "rows.csv" in message
    assert "\tat " not in message and "Job aborted" not in message
