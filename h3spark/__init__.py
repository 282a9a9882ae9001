"""h3spark: one programming model from raw data on Hadoop and Spark to trained models."""

__version__ = "0.1.0"
