"""``h3spark gates CONFIG``: train the config's ``gates:`` network (a spec cut into gates, fed by sentinels).

    h3spark gates conf/gates_digits.yaml                                   # one process, in-process bus
    h3spark gates conf/gates_digits.yaml --set gates.transport=kafka \\
        --set gates.bootstrap_servers=127.0.0.1:9092 --set gates.placement=processes

It prints a line per training epoch and per validation or test pass, then a summary: each sentinel,
each gate's updates and gradient delays, the training throughput.
"""

from __future__ import annotations

from h3spark.cli._common import add_config_argument, load_from_args, print_summary
from h3spark.errors import ConfigError, JobFailedError, TaskFailure


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "gates", parents=[common.config], help="train a network cut into gates (actors holding layers), "
        "asynchronously and pipelined, with sentinels that train, validate and test",
        description=__doc__.split("\n\n", 1)[1], formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument("--timeout", dest="timeout_s", type=float, default=None, metavar="SECONDS",
                        help="give up (exit 2) when the network has not finished by then")
    parser.set_defaults(func=_gates)


def _gates(args) -> int:
    import logging

    from h3spark.gates import GateNetwork
    from h3spark.spark import stop_spark
    from h3spark.train.engines.stage import limit_threads
    from h3spark.workflow import choose_workdir

    config = load_from_args(args)
    if config.gates is None:
        raise ConfigError(args.config, ["the config has no gates: section; see conf/gates_digits.yaml for one."])
    if args.verbose < 2:  # kafka-python logs every connection at INFO
        logging.getLogger("kafka").setLevel(logging.WARNING)
    if config.gates.resolved_placement == "threads":  # the gates compute in this process
        limit_threads(config.gates.engine, config.gates.threads)
    workdir = choose_workdir(config, args.workdir)
    network = GateNetwork.from_config(config, str(workdir), progress=lambda line: print(line, flush=True))
    try:
        result = network.run(timeout_s=args.timeout_s)
    finally:
        stop_spark()
    report = [("report", f"h3spark report {network.result_uri.rsplit('/', 1)[0]}")] if network.result_uri else []
    print_summary(f"h3spark gates {config.name}: done in {result.seconds:.1f} s", result.summary_rows() + report)
    if result.failed:
        failures = [TaskFailure.from_traceback(f"gates role {name}", None, result.errors[name]) for name in result.failed]
        raise JobFailedError.of(f"{len(failures)} role(s) of the gates network failed: {', '.join(result.failed)}",
                                failures)
    return 0
