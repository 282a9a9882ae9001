"""One actor from its settings: in a thread, a process of its own, or a Spark task.

    python -m h3spark.actors SETTINGS.json

The settings (JSON, written by the network): ``network``, ``name``, ``config`` (the actor's
ActorConfig as JSON), ``transport`` (``kind``: memory or kafka, ``bootstrap_servers``,
``max_record_bytes``), ``workdir``, ``home`` (the actor's folder: snapshots, quarantine) and
``progress_s``. The process ends with status 0 when the actor stopped, 2 (or 1) for an error h3spark
names, 1 with a traceback for any other. SIGTERM and SIGINT stop it as a ``stop`` command does.
"""

from __future__ import annotations

import json
import logging
import signal
import sys

from h3spark.actors._actor import Actor
from h3spark.actors._kafka import KafkaTransport
from h3spark.actors._memory import MemoryBus
from h3spark.actors._sentinel import Sentinel
from h3spark.actors._transport import Transport
from h3spark.config import ActorConfig
from h3spark.errors import H3SparkError, UsageError

logger = logging.getLogger(__name__)


def make_transport(settings: dict) -> Transport:
    """The transport ``settings["transport"]`` describes (a memory bus only reaches this process)."""
    kind, limit = settings.get("kind"), settings.get("max_record_bytes", 1_000_000)
    if kind == "kafka":
        return KafkaTransport(settings["bootstrap_servers"], max_record_bytes=limit)
    if kind == "memory":
        return MemoryBus(max_record_bytes=limit)
    raise UsageError(f"unknown transport kind {kind!r}; use memory or kafka")


def run_actor(settings: dict, transport: Transport | None = None, outcome: dict | None = None) -> dict:
    """Build (or restore) the actor of ``settings`` and run it until it stops; its final report.
    ``outcome["actor"]`` is set to the actor while it runs (so its thread can be asked to stop)."""
    config = ActorConfig.model_validate(settings["config"])
    owned = transport is None
    transport = transport or make_transport(settings["transport"])
    try:
        kind = Sentinel if config.sentinel is not None else Actor
        actor = kind.from_config(settings["name"], config, transport, settings["workdir"], settings["network"],
                                 settings["home"], settings.get("progress_s", 5.0))
        if outcome is not None:
            outcome["actor"] = actor
        return actor.run()
    finally:
        if owned:
            transport.close()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    if len(argv) != 1:
        print("usage: python -m h3spark.actors SETTINGS.json", file=sys.stderr)
        return 2
    with open(argv[0]) as handle:
        settings = json.load(handle)
    outcome: dict = {}
    for signum in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C reaches the whole process group: stop cleanly too
        signal.signal(signum, lambda signum, frame: _stop(outcome))
    try:
        run_actor(settings, outcome=outcome)
    except H3SparkError as error:
        print(f"h3spark: actor {settings.get('name')}: {error}", file=sys.stderr)
        return error.exit_code
    return 0


def _stop(outcome: dict) -> None:
    """SIGTERM or SIGINT: the actor stops after the message it handles (snapshot and final report included)."""
    actor = outcome.get("actor")
    if actor is None:
        raise SystemExit(143)
    actor.stopping = True
