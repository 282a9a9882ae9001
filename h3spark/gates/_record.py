"""A gates run's result on disk: ``GATES_DIR/RUN_ID/gates.json``, so that ``h3spark report RUN_DIR`` can
draw each sentinel's curves and each gate's delays after the run.

It holds the :class:`GatesResult` as JSON: ``epochs`` and ``scores`` (sentinel -> its status
messages: epoch, loss, accuracy, seconds; a score's pass, kind and ``at_s``), ``sentinels`` and
``gates`` (their final reports, a gate's ``delays``: delay in updates -> count), ``errors``.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from h3spark.gates._report import GatesResult
from h3spark.storage import filesystem_for, join_uri

RESULT_NAME = "gates.json"


def write_result(result: GatesResult, folder: str) -> str:
    """Write ``result`` as ``folder/gates.json`` (replacing one there); its URI."""
    uri = join_uri(folder, RESULT_NAME)
    fs = filesystem_for(uri)
    fs.makedirs(folder)
    data = json.dumps({**asdict(result), "failed": result.failed}, indent=1, default=str).encode()
    fs.delete(uri + ".tmp")
    fs.write_bytes(uri + ".tmp", data)
    fs.delete(uri)
    fs.rename(uri + ".tmp", uri)
    return uri
