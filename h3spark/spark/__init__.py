"""Spark: the SparkSession factory (classic, or Spark Connect), task slots, job groups, and Spark's failures in h3spark's tree."""

from h3spark.spark._connect import channel_host, is_connect, launch_session_id, server_master
from h3spark.spark._failures import carrying_errors, spark_errors, translate
from h3spark.spark._jobs import JobGroup, TaggedJob
from h3spark.spark._jvm_archive import build_jvm_archive, jvm_archive_options
from h3spark.spark._session import SparkStart, effective_master, get_spark, start_spark, stop_spark
from h3spark.spark._slots import task_slots

__all__ = ["get_spark", "effective_master", "start_spark", "SparkStart", "stop_spark", "build_jvm_archive", "jvm_archive_options", "task_slots", "JobGroup", "TaggedJob", "is_connect", "server_master", "channel_host", "launch_session_id", "spark_errors", "carrying_errors", "translate"]
