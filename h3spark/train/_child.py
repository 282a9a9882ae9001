"""``python -m h3spark.train._child FN_PATH RESULT_PATH``: run a train_fn in a worker child.

FN_PATH holds the call that the launch task wrote: JSON naming one of h3spark's engine
functions, or the cloudpickled ``(train_fn, args, kwargs)`` of a user's function, which it wrote
itself (mode 0600, private temp dir); the return value is written as JSON, so results
travel back to the driver without pickle.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    fn_path, result_path = argv
    with open(fn_path, "rb") as handle:
        train_fn, args, kwargs = _load_call(handle.read())
    try:
        text = _call(train_fn, args, kwargs)
    except Exception as error:  # the launcher names its type and message; the traceback still prints
        with open(error_path(result_path), "w", encoding="utf-8") as handle:
            json.dump({"error_type": type(error).__name__, "message": str(error)}, handle)
        raise
    with open(result_path, "w", encoding="utf-8") as handle:
        handle.write(text)
    sys.stdout.flush()
    return 0


def _call(train_fn, args, kwargs) -> str:
    result = train_fn(*args, **kwargs)
    try:
        return json.dumps(result)
    except TypeError as error:
        raise TypeError(f"train_fn must return a JSON-serialisable value (dict, list, str, "
                        f"number, bool or None). Got {type(result).__name__} instead: {error}") from None


def error_path(result_path: str) -> str:
    """Where the child writes the exception its train_fn raised, as JSON (beside the result)."""
    return os.path.join(os.path.dirname(result_path), "error.json")


def _load_call(payload: bytes):
    """JSON ``{"function": "module:name", "args", "kwargs"}`` for h3spark's engines, else cloudpickle."""
    if payload[:1] == b"{":
        import importlib

        call = json.loads(payload)
        module, name = call["function"].split(":", 1)
        return getattr(importlib.import_module(module), name), call["args"], call["kwargs"]
    import cloudpickle

    return cloudpickle.loads(payload)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
