"""The SparkSession factory: a later session does not inherit an earlier one's options."""

from h3spark.config import SparkConfig
from h3spark.spark import get_spark, stop_spark


def test_options_of_a_stopped_session_do_not_leak_into_the_next(spark):
    stop_spark()
    first = get_spark(SparkConfig(master="local[1]", app_name="first", conf={"spark.h3spark.marker": "one"}))
    assert first.conf.get("spark.h3spark.marker") == "one"
    stop_spark()
    second = get_spark(SparkConfig(master="local[2]", app_name="second"))
    try:
        assert second.sparkContext.master == "local[2]"
        assert second.sparkContext.appName == "second"
        assert second.conf.get("spark.h3spark.marker", None) is None
    finally:
        stop_spark()
