"""Trial directory names: readable, stable, filesystem-safe and bounded in length.

    >>> trial_dirname(7, {"lr": 0.01, "hidden": 128})
    '0007_lr=0.01,hidden=128_5c0e6b1d'

The hash covers the exact params (canonical JSON), so two trials whose readable part was
shortened or sanitised to the same text still get different names.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from h3spark.storage import join_uri

MAX_NAME_CHARS = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def params_digest(params: dict[str, Any]) -> str:
    """8 hex digits that identify a params dict independently of key order."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(canonical.encode()).hexdigest()[:8]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_dirname(trial_id: int, params: dict[str, Any], max_chars: int = MAX_NAME_CHARS) -> str:
    """``NNNN_k=v,k=v_hash`` with unsafe characters replaced by '-' and the middle cut to fit."""
    readable = ",".join(f"{key}={format_value(value)}" for key, value in params.items())
    readable = _UNSAFE.sub("-", readable) or "params"
    head, tail = f"{trial_id:04d}_", f"_{params_digest(params)}"
    room = max(1, max_chars - len(head) - len(tail))
    return head + readable[:room].rstrip(",") + tail


def trial_logdir(experiment_dir: str, trial_id: int, params: dict[str, Any]) -> str:
    """``EXPERIMENT_DIR/trials/NAME``: where a trial writes; the driver derives it, never reads it from a message."""
    return join_uri(experiment_dir, f"trials/{trial_dirname(trial_id, params)}")
