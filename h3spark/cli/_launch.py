"""``h3spark launch -n N -s S [--master URL] -- CMD...``: run an MXNet (or torch) distributed script."""

from __future__ import annotations

import argparse

from h3spark.errors import UsageError


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "launch", parents=[common.plain], help="run a distributed script on Spark, as MXNet's tools/launch.py does",
        description="Run CMD as every worker of a ps-lite job (scheduler and servers are started for it) "
                    "in one Spark barrier stage. A script that runs under MXNet's tools/launch.py --launcher local "
                    "runs unchanged. Example: h3spark launch -n 2 -s 1 -- python train.py --epochs 2")
    parser.add_argument("-n", "--num-workers", type=int, required=True, help="number of workers (one Spark task each)")
    parser.add_argument("-s", "--num-servers", type=int, default=None, help="number of servers (default: as many as workers)")
    parser.add_argument("--master", help="Spark master, e.g. spark://127.0.0.1:7077 (default: local[N])")
    parser.add_argument("--remote", metavar="URL", help="run on a Spark Connect server's resident driver instead of a "
                        "JVM of this process, e.g. sc://127.0.0.1:15002 (h3spark services up connect)")
    parser.add_argument("--kind", choices=("ps", "torch"), default="ps",
                        help="ps: MXNet ps-lite roles (DMLC_*); torch: MASTER_ADDR/RANK/WORLD_SIZE for torch.distributed")
    parser.add_argument("--local", action="store_true", help="run the roles as local processes, without Spark or Java")
    parser.add_argument("--start-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="fail when the tasks have not all started by then (default 30)")
    parser.add_argument("command", nargs="*", metavar="-- COMMAND", help="the command each worker runs, after '--' "
                        "(so that its own options are not read as launch's)")
    parser.set_defaults(func=_launch)


def _launch(args) -> int:
    command = args.command
    if not command:
        raise UsageError("give the command after '--', e.g. h3spark launch -n 2 -s 1 -- python train.py")
    servers = args.num_servers if args.num_servers is not None else args.num_workers
    chosen = [flag for flag, value in (("--master", args.master), ("--remote", args.remote), ("--local", args.local)) if value]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} each choose where the launch runs; give one of them.")
    spark = None if args.local else _spark_for(args.master, args.remote, args.num_workers)  # the JVM starts while h3spark.train loads
    from h3spark.train import launch

    launch(command, num_workers=args.num_workers, num_servers=servers, kind=args.kind,
           launcher="local" if args.local else "spark", spark=spark and spark.result(), start_timeout_s=args.start_timeout)
    print(f"h3spark launch: {args.num_workers} workers finished")
    return 0


def _spark_for(master: str | None, remote: str | None, num_workers: int):
    from pydantic import ValidationError

    from h3spark.config import SparkConfig
    from h3spark.spark import start_spark

    try:
        config = SparkConfig(master=master or f"local[{num_workers}]", app_name="h3spark-launch", remote=remote,
                             conf={"spark.ui.enabled": False})
    except ValidationError as error:
        problem = error.errors()[0]
        raise UsageError(f"--{problem['loc'][0]} {problem['input']!r} {problem['msg'].removeprefix('Value error, ')}") from None
    return start_spark(config, launch_only=True)
