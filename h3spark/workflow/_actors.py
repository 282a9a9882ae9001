"""The ``actors`` stage of ``h3spark run``: the config's network of actors, run to its end (as ``h3spark actors``)."""

from __future__ import annotations

import logging

from h3spark.storage import join_uri, resolve_uri
from h3spark.workflow._context import RunContext


def actors_stage(ctx: RunContext) -> None:
    """Run the network (a failed actor is a JobFailedError naming it); each actor's last report and the
    network's folder join the summary."""
    from h3spark.actors import run_network
    from h3spark.actors._child import make_transport
    from h3spark.actors._network import transport_settings
    from h3spark.actors._stats import report_line

    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python logs every connection at INFO
    section = ctx.config.actors
    transport = make_transport(transport_settings(section))
    try:
        result = run_network(ctx.config, str(ctx.workdir), transport, ctx.progress)
    finally:
        transport.close()
    ctx.outputs["actors"] = result
    for name, state in result.states.items():
        ctx.report(f"actor {name}", report_line(name, {**result.reports.get(name, {}), "state": state}).split(": ", 1)[1])
    ctx.outputs["actors_home"] = join_uri(resolve_uri(section.dir, str(ctx.workdir)), ctx.config.name)
    ctx.report("actors", ctx.outputs["actors_home"])
