"""Cold start of the local services with their jars cached: start, wait until ready, stop.

Each run uses a fresh state directory (so it includes formatting storage, as on a fresh CI
machine) and ports 10000 above the defaults, so services already running are not disturbed.

    python benchmarks/services.py            # median of 3 runs per service, plus all three at once
    python benchmarks/services.py --quick    # one run per service (about a minute)

The last line printed is one JSON object: {"kafka_start_s": ..., "hdfs_start_s": ..., "spark_start_s": ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from h3spark import services
from h3spark.services import ServicesConfig

OFFSET_CONFIG = ServicesConfig(
    kafka_port=19092, kafka_controller_port=19093, hdfs_port=18020, hdfs_http_port=19870,
    hdfs_datanode_port=19866, hdfs_datanode_http_port=19864, hdfs_datanode_ipc_port=19867,
    spark_port=17077, spark_webui_port=18080, spark_worker_webui_port=18081, connect_port=25002)


def time_start(names: list[str]) -> float:
    """Seconds from ``up`` to every named service ready, in a fresh state dir; stops them after."""
    with tempfile.TemporaryDirectory(prefix="h3spark-bench-") as state:
        os.environ["H3SPARK_STATE_DIR"] = state
        try:
            started = time.perf_counter()
            services.up(names, OFFSET_CONFIG)
            return time.perf_counter() - started
        finally:
            services.down(names)


def warm_caches() -> None:
    """Resolve the jars first, so that no download is timed."""
    from h3spark.services._maven import ensure_jars

    ensure_jars("kafka")
    ensure_jars("hdfs")
    services.ensure_spark_kafka_package()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run per service instead of the median of 3")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else 3
    warm_caches()
    figures: dict[str, float] = {}
    print(f"{'service':<16}{'runs':>6}{'median s':>10}{'min s':>8}{'max s':>8}")
    groups = [[name] for name in services.SERVICE_NAMES] + ([] if args.quick else [list(services.SERVICE_NAMES)])
    for names in groups:
        times = [time_start(names) for _ in range(runs)]
        label = names[0] if len(names) == 1 else "all"
        figures[f"{label}_start_s"] = round(statistics.median(times), 2)
        print(f"{label:<16}{runs:>6}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
