"""``h3spark actors``: run a network of actors, change it while it runs, show it, feed it.

    h3spark actors CONFIG                    run the network of CONFIG's actors: section until its actors stop
    h3spark actors add CONFIG NAME           add actor NAME (as CONFIG describes it) to the running network
    h3spark actors remove NAME               ask actor NAME to leave the running network (it snapshots first)
    h3spark actors status                    each actor's state, step, messages and scores
    h3spark actors produce CONFIG PRODUCER   run one producer of CONFIG (raw records to its topic) and end
"""

from __future__ import annotations

from pathlib import Path

from h3spark.cli._common import load_from_args, print_summary
from h3spark.errors import ConfigError, JobFailedError, TaskFailure, UsageError

ACTIONS = {"add": ("CONFIG", "NAME"), "remove": ("NAME",), "status": (), "produce": ("CONFIG", "PRODUCER")}
_USAGE = ("h3spark actors CONFIG | add CONFIG NAME | remove NAME | status | produce CONFIG PRODUCER  "
          "(see h3spark actors --help)")


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "actors", parents=[common.config], help="run a network of actors (models sharing predictions and weights "
        "over Kafka or in one process), change it while it runs, show it, feed it",
        description=__doc__.split("\n\n", 1)[1], formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    parser.add_argument("words", nargs="+", metavar="CONFIG | ACTION ...", help=_USAGE)
    parser.add_argument("--network", metavar="NAME", help="remove/status: the network (default: the only one there)")
    parser.add_argument("--dir", metavar="DIR", help="remove/status: the networks' folder (default: WORKDIR/actors)")
    parser.add_argument("--timeout", dest="timeout_s", type=float, default=300.0, metavar="SECONDS",
                        help="add/remove: how long to wait for the network to apply the change (0: do not wait)")
    parser.set_defaults(func=_actors)


def _actors(args) -> int:
    action = args.words[0]
    if action not in ACTIONS:
        _refuse_extra(args, ("network", "dir"), "run")
        return _run(args, action)
    expected = ACTIONS[action]
    if len(args.words) - 1 != len(expected):
        raise UsageError(f"'h3spark actors {action}' takes {' '.join(expected) or 'no arguments'}. "
                         f"Got {' '.join(args.words[1:]) or 'nothing'} instead.\nusage: {_USAGE}")
    handler = {"add": _add, "remove": _remove, "status": _status, "produce": _produce}[action]
    return handler(args, *args.words[1:])


def _refuse_extra(args, options: tuple[str, ...], action: str) -> None:
    if len(args.words) > 1 and action == "run":
        raise UsageError(f"'h3spark actors CONFIG' takes one config; got {' '.join(args.words)}. Actions: add, remove, "
                         f"status, produce.\nusage: {_USAGE}")
    for option in options:
        if getattr(args, option) is not None:
            raise UsageError(f"'h3spark actors {action}' takes no --{option}.\nusage: {_USAGE}")


def _load(args, path: str):
    args.config = path
    config = load_from_args(args)
    if config.actors is None:
        raise ConfigError(path, ["the config has no actors: section; see conf/actors_online.yaml for one."])
    return config


def _run(args, path: str) -> int:
    import logging

    from h3spark.actors import Network
    from h3spark.spark import stop_spark
    from h3spark.workflow import RunContext

    ctx = RunContext.create(_load(args, path), args.workdir)
    if args.verbose < 2:  # kafka-python logs every connection at INFO
        logging.getLogger("kafka").setLevel(logging.WARNING)
    network = Network.from_config(ctx.config, str(ctx.workdir), progress=lambda line: print(line, flush=True))
    try:
        result = network.run()
    finally:
        stop_spark()
    rows = [("actor " + name, _summary(state, result.reports.get(name, {}))) for name, state in result.states.items()]
    rows += [("producer " + name, _produced(record)) for name, record in result.producers.items()]
    print_summary(f"h3spark actors {ctx.config.name}: done in {result.seconds:.1f} s",
                  [("workdir", str(ctx.workdir)), ("state", network.home)] + rows
                  + [("report", f"h3spark report {network.home}")])
    if result.failed:
        failures = [TaskFailure.from_traceback(f"actor {name}", None, result.errors.get(name, "failed"))
                    for name in result.failed]
        raise JobFailedError.of(f"{len(failures)} actor(s) failed: {', '.join(result.failed)}", failures)
    return 0


def _summary(state: str, report: dict) -> str:
    parts = [state, f"step {report.get('step', 0)}", f"{report.get('handled', 0)} messages"]
    for key, label in (("evaluated", "held-out accuracy"), ("predicted", "accuracy of predictions")):
        if report.get(key):
            parts.append(f"{label} {report[key]['accuracy']:.4f} on {report[key]['rows']} rows")
    parts.append(f"{report.get('quarantined', 0)} rows quarantined")
    return ", ".join(parts)


def _produced(record: dict) -> str:
    if record.get("error"):
        return f"{record['state']}: {record['error']}"
    return (f"{record.get('state')}, {record.get('records', 0)} records + {record.get('holdout_records', 0)} held out "
            f"in {record.get('messages', 0)} messages")


def _network_of(args, path: str):
    """(config, actors dir) of CONFIG, for add and produce."""
    from h3spark.storage import resolve_uri
    from h3spark.workflow import choose_workdir

    config = _load(args, path)
    return config, resolve_uri(config.actors.dir, choose_workdir(config, args.workdir))


def _add(args, path: str, name: str) -> int:
    from h3spark.actors import command
    from h3spark.actors._registry import find_network, require_running, send_command

    _refuse_extra(args, ("network", "dir"), "add")
    config, actors_dir = _network_of(args, path)
    actor = config.actors.actors.get(name)
    if actor is None:
        raise UsageError(f"{path} describes no actor {name!r}; it has {', '.join(config.actors.actors)}.")
    home, state = find_network(actors_dir, config.name)
    require_running(state)
    send_command(state, command("add", name, sender="h3spark-cli", actor=name, config=actor.model_dump(mode="json")))
    print(f"asked the network {config.name} to add actor {name}")
    return _await(home, name, ("running", "paused", "stopped", "failed"), args.timeout_s, "joined")


def _remove(args, name: str) -> int:
    from h3spark.actors import command
    from h3spark.actors._registry import find_network, require_running, send_command

    home, state = find_network(_actors_dir(args), args.network)
    require_running(state)
    if state["actors"].get(name, {}).get("state") in (None, "stopped", "removed", "failed"):
        running = [actor for actor, info in state["actors"].items() if info.get("state") in ("starting", "running", "paused")]
        raise UsageError(f"no running actor {name!r} in the network {state['network']!r} (running: "
                         f"{', '.join(running) or 'none'}).")
    send_command(state, command("remove", name, sender="h3spark-cli"))
    print(f"asked actor {name} to leave the network {state['network']}")
    return _await(home, name, ("removed", "stopped", "failed"), args.timeout_s, "left")


def _await(home: str, name: str, states: tuple[str, ...], timeout_s: float, verb: str) -> int:
    from h3spark.actors._registry import wait_for

    if timeout_s <= 0:
        return 0
    state = wait_for(home, lambda s: s["actors"].get(name, {}).get("state") in states, timeout_s)
    if state is None:
        raise UsageError(f"actor {name} has not {verb} within {timeout_s:.0f} s; see h3spark actors status "
                         f"(and {home}/{name}/actor.log when it runs as a process).")
    info = state["actors"][name]
    print(f"actor {name}: {info['state']}" + (f" ({info['error']})" if info.get("error") else ""))
    return 1 if info["state"] == "failed" else 0


def _actors_dir(args) -> str:
    from h3spark.config import DEFAULT_WORKDIR
    from h3spark.storage import resolve_uri

    if args.overrides:
        raise UsageError("'h3spark actors remove|status' load no config, so take no --set.")
    workdir = Path(args.workdir or DEFAULT_WORKDIR).expanduser().resolve()
    return resolve_uri(args.dir, workdir) if args.dir else resolve_uri("actors", workdir)


def _status(args) -> int:
    from h3spark.actors._registry import find_network
    from h3spark.actors._stats import report_line

    home, state = find_network(_actors_dir(args), args.network)
    print(f"network {state['network']}: {state['state']} ({state['launcher']}, {state['transport']['kind']} "
          f"transport; supervisor pid {state['supervisor']['pid']} on {state['supervisor']['host']}; state in {home})")
    for name, info in state["actors"].items():
        print("  " + report_line(name, info) + (f", pid {info['pid']}" if info.get("pid") else ""))
    for name, record in state.get("producers", {}).items():
        print(f"  producer {name}: {_produced(record)}")
    return 0


def _produce(args, path: str, name: str) -> int:
    from h3spark.actors import run_producer
    from h3spark.actors._child import make_transport
    from h3spark.actors._network import transport_settings
    from h3spark.workflow import choose_workdir

    _refuse_extra(args, ("network", "dir"), "produce")
    config = _load(args, path)
    producer = config.actors.producers.get(name)
    if producer is None:
        raise UsageError(f"{path} describes no producer {name!r}; it has {', '.join(config.actors.producers) or 'none'}.")
    if config.actors.transport == "memory":
        raise UsageError("a producer run alone needs transport: kafka (the in-process bus ends with this process).")
    transport = make_transport(transport_settings(config.actors))
    try:
        result = run_producer(name, producer, transport, str(choose_workdir(config, args.workdir)))
    finally:
        transport.close()
    print_summary(f"h3spark actors produce {name}: done in {result.seconds:.1f} s", [
        ("topic", producer.topic), ("records", str(result.records)), ("held out", str(result.holdout_records)),
        ("messages", str(result.messages))])
    return 0
