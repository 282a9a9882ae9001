"""Control messages: commands to actors and to their network, end-of-stream markers and status reports.

A network NAME has two topics of its own: ``NAME.control`` (commands) and ``NAME.status`` (each
actor's reports). Every control message is an envelope of kind ``control`` whose meta says the
``op``:

- to an actor (``target``: its name, or ``*`` for all): ``start`` (or ``resume``), ``pause``,
  ``stop``, ``snapshot``. An actor ignores commands created before it started.
- to the network: ``add`` (``actor``: a name, ``config``: its ActorConfig as JSON) and ``remove``
  (``target``: a name).
- ``end`` on a data topic: its sender's stream ends here (producers send one after their last
  record, actors one on each output topic when they stop).
- ``report`` on the status topic: an actor's state and counters (see :func:`report_line`).
"""

from __future__ import annotations

from h3spark.actors._envelope import Envelope

ACTOR_OPS = ("start", "resume", "pause", "stop", "snapshot")
NETWORK_OPS = ("add", "remove")
END = "end"
REPORT = "report"
ALL = "*"


def control_topic(network: str) -> str:
    return f"{network}.control"


def status_topic(network: str) -> str:
    return f"{network}.status"


def command(op: str, target: str = ALL, sender: str = "h3spark", **meta) -> Envelope:
    """A command for ``target`` (an actor's name, or ``*``)."""
    if op not in ACTOR_OPS + NETWORK_OPS:
        raise ValueError(f"op must be one of {', '.join(ACTOR_OPS + NETWORK_OPS)}. Got {op!r} instead")
    return Envelope("control", sender, meta={"op": op, "target": target, **meta})


def end_marker(sender: str, model_version: int | None = None) -> Envelope:
    """The end of ``sender``'s stream on the topic it is published to."""
    return Envelope("control", sender, model_version=model_version, meta={"op": END})


def report(sender: str, status: dict, model_version: int | None = None) -> Envelope:
    return Envelope("control", sender, model_version=model_version, meta={"op": REPORT, **status})
