"""spark-submit job: batch-read a Kafka topic with spark.read.format("kafka") and print what it holds."""

import sys

from pyspark.sql import SparkSession


def main(argv: list[str]) -> int:
    bootstrap, topic = argv
    spark = SparkSession.builder.appName("h3spark-test-read-kafka").getOrCreate()
    frame = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap)
             .option("subscribe", topic).option("startingOffsets", "earliest").load())
    values = sorted(row.value.decode() for row in frame.select("value").collect())
    print(f"COUNT {len(values)}")
    print(f"VALUES {','.join(values)}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
