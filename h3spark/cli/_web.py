"""``h3spark web CONFIG``: the live page of an actor network, and browser windows as Downpour SGD workers.

    h3spark web conf/web_digits.yaml              serve the page; prints its URL and the token for writes
    h3spark web conf/web_digits.yaml --port 0     on any free port
    H3SPARK_WEB_TOKEN=... h3spark web CONFIG      with a token of your own (web.token_env names the variable)
"""

from __future__ import annotations

import argparse
import time

from h3spark.cli._common import load_from_args, print_summary
from h3spark.errors import UsageError


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "web", parents=[common.config], help="serve the live page of an actor network (curves, draw a digit) and "
        "train in browser windows (Downpour SGD); prints the URL and the token",
        description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", metavar="CONFIG", help="a config with a web: section and/or an actors: section")
    parser.add_argument("--host", help="address to bind (default web.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default web.port, 8765; 0: a free one)")
    parser.add_argument("--for", dest="for_s", type=float, metavar="SECONDS",
                        help="stop after this many seconds (default: until Ctrl-C)")
    parser.set_defaults(func=_web)


def _web(args) -> int:
    from h3spark.config import WebConfig
    from h3spark.web import WebApp
    from h3spark.workflow import RunContext

    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in [0, 65535]. Got {args.port} instead.")
    if args.for_s is not None and args.for_s <= 0:
        raise UsageError(f"--for must be a number of seconds > 0. Got {args.for_s} instead.")
    ctx = RunContext.create(load_from_args(args), args.workdir)
    config = ctx.config
    web = config.web or WebConfig()
    changes = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    config = config.model_copy(update={"web": web.model_copy(update=changes)})
    app = WebApp(config, str(ctx.workdir), progress=lambda line: print(line, flush=True))
    started = time.monotonic()
    try:
        app.serve()
        print(f"h3spark web {config.name}: {app.page_url()}\n  worker page: {app.page_url('worker')}\n"
              f"  token: {app.token} ({app.token_source}; pages without it are read-only)\n  (Ctrl-C stops)",
              flush=True)
        app.start_network()
        time.sleep(args.for_s) if args.for_s else _wait_forever()
    except KeyboardInterrupt:
        print("h3spark web: stopping")
    finally:
        app.stop()
    master = app.master
    rows = [("workdir", str(ctx.workdir)), ("network", app.mode)]
    if master is not None:
        scores = master.scores or {}
        rows.append(("downpour", f"version {master.version}, {master.applied} pushes applied, {master.refused} refused"
                     + (f", held-out accuracy {scores['accuracy']:.4f}" if scores else "")))
    print_summary(f"h3spark web {config.name}: done in {time.monotonic() - started:.1f} s", rows)
    return 0


def _wait_forever() -> None:
    while True:
        time.sleep(3600)
