"""A session started in the background: the JVM of a launch-only session, and every thread gets that session."""

from __future__ import annotations

from h3spark.config import SparkConfig
from h3spark.spark import get_spark, start_spark, stop_spark
from h3spark.spark._session import LAUNCH_JAVA_OPTIONS


def test_a_session_started_in_the_background_is_the_one_get_spark_returns_in_this_thread(spark):
    stop_spark()
    try:
        session = start_spark(SparkConfig(master="local[1]", app_name="background", conf={"spark.ui.enabled": False}),
                              launch_only=True).result()
        assert LAUNCH_JAVA_OPTIONS in session.sparkContext.getConf().get("spark.driver.extraJavaOptions")
        assert get_spark(SparkConfig(master="local[2]", app_name="another")) is session
        assert session.sparkContext.parallelize(range(4), 2).sum() == 6
    finally:
        stop_spark()
