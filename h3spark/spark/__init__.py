"""Spark: the SparkSession factory."""

from h3spark.spark._session import get_spark, stop_spark

__all__ = ["get_spark", "stop_spark"]
