"""Put on a ps-lite worker's PYTHONPATH by h3spark's launcher (and only there).

An uncaught exception in an MXNet worker normally leaves the process hanging in
ps-lite's finalize, waiting for peers that wait for it. This hook prints the
traceback and exits at once with status 1, so the launcher sees the failure.
Any other sitecustomize on the path still runs.
"""

import importlib.machinery
import importlib.util
import os
import sys
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))


def _exit_on_uncaught(kind, value, tb):
    traceback.print_exception(kind, value, tb)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130 if issubclass(kind, KeyboardInterrupt) else 1)


sys.excepthook = _exit_on_uncaught

_next = importlib.machinery.PathFinder.find_spec(
    "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _HERE])
if _next is not None and _next.loader is not None:
    _module = importlib.util.module_from_spec(_next)
    _next.loader.exec_module(_module)
