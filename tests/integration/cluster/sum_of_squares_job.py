"""spark-submit job for the standalone cluster: a sum of squares computed by Python tasks on the workers."""

import sys

from pyspark.sql import SparkSession


def main(argv: list[str]) -> int:
    n = int(argv[0])
    spark = SparkSession.builder.appName("h3spark-test-sum-of-squares").getOrCreate()
    rdd = spark.sparkContext.parallelize(range(n), 4)
    total = rdd.map(lambda x: x * x).sum()
    executors = rdd.mapPartitions(lambda _: [__import__("sys").executable]).distinct().collect()
    print(f"RESULT {total}")
    print(f"PYTHON {','.join(sorted(executors))}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
