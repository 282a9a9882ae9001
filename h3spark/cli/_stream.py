"""``h3spark stream CONFIG``: the config's ``stream:`` job (Spark Structured Streaming), raw topic to features topic.

    h3spark stream conf/stream.yaml                     # until Ctrl-C (or SIGTERM)
    h3spark stream conf/stream.yaml --until-drained     # what the raw topic holds now, then stop
    h3spark stream conf/stream.yaml --max-batches 10 --timeout 600

It prints a line per micro-batch (rows in, feature rows out, rows quarantined) and a summary. Spark's
Kafka package is resolved as 'h3spark services up kafka' does and added to spark.jars.packages.
"""

from __future__ import annotations

import signal

from h3spark.cli._common import add_config_argument, load_from_args, print_summary
from h3spark.errors import ConfigError, UsageError

KAFKA_ARTIFACT = "spark-sql-kafka-0-10"


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "stream", parents=[common.config], help="apply a fitted pipeline to a raw Kafka topic with Spark Structured "
        "Streaming and publish the feature rows to a topic, as actors read them",
        description=__doc__.split("\n\n", 1)[1], formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument("--until-drained", action="store_true",
                        help="process what the topic holds when the job starts, then stop")
    parser.add_argument("--max-batches", type=int, default=None, metavar="N", help="stop after N micro-batches")
    parser.add_argument("--timeout", dest="timeout_s", type=float, default=None, metavar="SECONDS",
                        help="stop after that long")
    parser.set_defaults(func=_stream)


def _stream(args) -> int:
    import logging

    from h3spark.actors import StreamJob
    from h3spark.spark import get_spark, stop_spark
    from h3spark.workflow import choose_workdir

    for option, value in (("--max-batches", args.max_batches), ("--timeout", args.timeout_s)):
        if value is not None and value <= 0:
            raise UsageError(f"{option} must be greater than 0. Got {value} instead.")
    config = load_from_args(args)
    if config.stream is None:
        raise ConfigError(args.config, ["the config has no stream: section; see docs/actors.md (Streaming ingest) "
                                        "for one."])
    workdir = str(choose_workdir(config, args.workdir))
    if args.verbose < 2:  # kafka-python logs every connection at INFO
        logging.getLogger("kafka").setLevel(logging.WARNING)
    spark = get_spark(with_kafka_package(config.spark))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        job = StreamJob(config, workdir, spark, progress=lambda line: print(line, flush=True))
        signal.signal(signal.SIGTERM, lambda signum, frame: job.stop_requested.set())  # stops as Ctrl-C does
        result = job.run(until_drained=args.until_drained, max_batches=args.max_batches, timeout_s=args.timeout_s)
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_spark()
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(result.reasons.items())) or "none"
    print_summary(f"h3spark stream {config.name}: {result.stopped_by} after {result.seconds:.1f} s", [
        ("micro-batches", str(result.batches)), ("rows in", str(result.rows_in)),
        ("feature rows out", f"{result.rows_out} in {result.messages} messages to {config.stream.output}"),
        ("rows quarantined", f"{result.rows_bad} ({reasons})"), ("messages skipped", str(result.skipped)),
        ("quarantine", result.quarantine), ("checkpoint", result.checkpoint)])
    return 0


def with_kafka_package(spark_config):
    """``spark_config`` with Spark's Kafka source in spark.jars.packages (unless the config names it already)."""
    from h3spark.services import ensure_spark_kafka_package

    packages = str(spark_config.conf.get("spark.jars.packages", ""))
    if KAFKA_ARTIFACT in packages:
        return spark_config
    joined = ",".join(part for part in (packages, ensure_spark_kafka_package()) if part)
    return spark_config.model_copy(update={"conf": {**spark_config.conf, "spark.jars.packages": joined}})
