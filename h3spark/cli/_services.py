"""``h3spark services up|down|status [kafka] [hdfs] [spark] [postgres] [connect]``: local services for development and tests."""

from __future__ import annotations

import argparse
import time

_PORT_FLAGS = (
    ("--kafka-port", "kafka_port", "Kafka broker port (default 9092; env H3SPARK_KAFKA_PORT)"),
    ("--kafka-controller-port", "kafka_controller_port", "KRaft controller port (default 9093)"),
    ("--hdfs-port", "hdfs_port", "NameNode RPC port (default 8020; env H3SPARK_HDFS_PORT)"),
    ("--hdfs-http-port", "hdfs_http_port", "NameNode HTTP/WebHDFS port (default 9870)"),
    ("--spark-port", "spark_port", "Spark master port (default 7077; env H3SPARK_SPARK_PORT)"),
    ("--spark-webui-port", "spark_webui_port", "Spark master web UI port (default 8080)"),
    ("--postgres-port", "postgres_port", "PostgreSQL port (default 5433; env H3SPARK_POSTGRES_PORT)"),
    ("--connect-port", "connect_port", "Spark Connect server port (default 15002; env H3SPARK_CONNECT_PORT)"),
)
_NAMES_HELP = "kafka, hdfs, spark, postgres and/or connect (default: all five)"


def register(subparsers, common) -> None:
    p = subparsers.add_parser("services", parents=[common.plain], help="start, stop or show the local Kafka, HDFS, "
                              "Spark standalone, PostgreSQL and Spark Connect services (for development and tests)")
    actions = p.add_subparsers(dest="services_action", metavar="ACTION", parser_class=type(p))
    up = actions.add_parser("up", parents=[common.plain], help="start services and wait until they are ready")
    up.add_argument("names", nargs="*", metavar="SERVICE", help=_NAMES_HELP)
    for flag, dest, text in _PORT_FLAGS:
        up.add_argument(flag, dest=dest, type=int, metavar="PORT", help=text)
    up.add_argument("--timeout", dest="timeout_s", type=float, metavar="SECONDS",
                    help="how long to wait for each service to be ready (default 180)")
    down = actions.add_parser("down", parents=[common.plain], help="stop services started by 'services up'")
    down.add_argument("names", nargs="*", metavar="SERVICE", help=_NAMES_HELP)
    status = actions.add_parser("status", parents=[common.plain], help="print where the running services listen")
    status.add_argument("names", nargs="*", metavar="SERVICE", help=_NAMES_HELP)
    p.set_defaults(func=_run, services_parser=p)


def _run(args: argparse.Namespace) -> int:
    action = getattr(args, "services_action", None)
    if action is None:
        args.services_parser.print_help()
        return 2
    return {"up": _up, "down": _down, "status": _status}[action](args)


def _up(args: argparse.Namespace) -> int:
    from h3spark import services

    names = services.resolve_names(args.names)
    already = services.status()
    overrides = {dest: getattr(args, dest) for _, dest, _ in _PORT_FLAGS}
    overrides["timeout_s"] = args.timeout_s
    config = services.ServicesConfig.from_env(overrides)
    started = time.monotonic()
    endpoints = services.up(names, config)
    for name in names:
        print(endpoints[name].line())
    if all(name in already for name in names):
        print(f"already running: {', '.join(names)}")
    else:
        print(f"ready in {time.monotonic() - started:.1f} s; stop with: h3spark services down")
    return 0


def _down(args: argparse.Namespace) -> int:
    from h3spark import services

    stopped = services.down(args.names)
    print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    """One line per running service on stdout (scripts read them); the others named on stderr."""
    import sys

    from h3spark import services

    names = services.resolve_names(args.names)
    running = services.status()
    for name in names:
        if name in running:
            print(running[name].line())
    missing = [name for name in names if name not in running]
    if missing:
        print(f"not running: {', '.join(missing)} (start with: h3spark services up {' '.join(missing)})",
              file=sys.stderr)
    return 0
