"""The messages of a gates network, as actor envelopes (docs/actors.md; docs/gates.md lists these).

Every message names its batch (``meta.batch``, the sentinel's own counter) and the sentinel that
owns it (``meta.sentinel``); a gate answers the sentinel's inbox from that name, so sentinels can
come and go without the gates knowing them beforehand.

=================  ==========  ======================================================================
message            kind        content
=================  ==========  ======================================================================
forward            features    ``x``: the batch's activations; ``meta.mode`` train or eval;
                               ``meta.versions``: each gate passed so far -> its weight version then
result             predictions ``logits`` from the last gate to the sentinel; ``computed_with``: its version
backward           gradients   ``grad``: d loss / d output of the gate it goes to
done               control     ``op: done``: the first gate applied the batch's backward pass
command            control     ``op``: stop, start (a test sentinel), forget (drop a sentinel's batches)
status             control     on the status topic: ``op`` started, progress, epoch, score, finished, report
=================  ==========  ======================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from h3spark.actors import Envelope

DRIVER = "gates-driver"


def forward(sender: str, sentinel: str, batch: int, mode: str, x: np.ndarray, versions: dict[str, int],
            version: int | None = None) -> Envelope:
    return Envelope("features", sender, model_version=version, arrays={"x": x},
                    meta={"sentinel": sentinel, "batch": batch, "mode": mode, "versions": versions})


def result(sender: str, incoming: Envelope, logits: np.ndarray, versions: dict[str, int], version: int) -> Envelope:
    meta = {**incoming.meta, "versions": versions}
    return Envelope("predictions", sender, model_version=version, computed_with=version, arrays={"logits": logits},
                    meta=meta)


def backward(sender: str, sentinel: str, batch: int, grad: np.ndarray, computed_with: int,
             version: int | None = None) -> Envelope:
    return Envelope("gradients", sender, model_version=version, computed_with=computed_with, arrays={"grad": grad},
                    meta={"sentinel": sentinel, "batch": batch})


def done(sender: str, sentinel: str, batch: int, version: int) -> Envelope:
    return Envelope("control", sender, model_version=version, meta={"op": "done", "sentinel": sentinel, "batch": batch})


def command(op: str, sender: str = DRIVER, **meta: Any) -> Envelope:
    return Envelope("control", sender, meta={"op": op, **meta})


def status(op: str, sender: str, **meta: Any) -> Envelope:
    return Envelope("control", sender, meta={"op": op, "role": sender, **meta})
