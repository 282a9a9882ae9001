"""spark-submit entry point of ``h3spark actors``: run a network of actors until its actors stop.

    spark-submit --master spark://127.0.0.1:7077 jobs/actors.py --config conf/actors_online.yaml \
        --set actors.transport=kafka --set actors.bootstrap_servers=127.0.0.1:9092

With Kafka and a cluster master each actor runs as one long-running Spark task; the in-process bus
(transport: memory) keeps them on threads of the driver.
"""

import sys

from h3spark.cli import job_main


def main(argv: list[str]) -> int:
    return job_main("actors", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
