"""The public launch API: ``launch(command, ...)`` and ``distributed(train_fn, ...)``."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from typing import Any, Callable, Sequence

from h3spark.errors import UsageError, missing_dependency
from h3spark.train._task import LaunchSpec

logger = logging.getLogger(__name__)

KVSTORES = ("local", "device", "dist_sync", "dist_async", "dist_sync_device", "dist_async_device")
LAUNCHERS = ("spark", "local")


def launch(command: Sequence[str], num_workers: int, num_servers: int = 1, kind: str = "ps",
           launcher: str = "spark", spark=None, env: dict[str, str] | None = None, echo: bool = True,
           start_timeout_s: float = 30.0, printer=print) -> list:
    """Run ``command`` as every worker of a ps-lite (or torch) job; servers and scheduler as needed.

    >>> launch(["python", "examples/mxnet_dist_mlp.py"], num_workers=2, num_servers=1)
    """
    _check_counts(num_workers, num_servers, kind)
    if not command:
        raise UsageError("launch needs a command to run on every worker, e.g. -- python train.py")
    spec = LaunchSpec(kind=kind, command=list(command), num_workers=num_workers,
                      num_servers=num_servers if kind == "ps" else 0, env=dict(env or {}), echo=echo)
    return _run(spec, launcher, spark, start_timeout_s, printer)


def distributed(train_fn: Callable[..., Any] | str, num_workers: int = 2, num_servers: int = 1, kvstore: str = "dist_sync",
                args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, launcher: str = "spark", spark=None,
                env: dict[str, str] | None = None, echo: bool = True, start_timeout_s: float = 30.0,
                framework: str = "mxnet") -> list:
    """Run ``train_fn(*args, **kwargs)`` on every worker; return each worker's (JSON) return value.

    ``train_fn`` is a callable or ``"module:function"`` (imported in the workers only, so the
    driver need not have the framework; its args then travel as JSON).

    Workers see ``H3SPARK_KVSTORE`` (the ``kvstore`` to create) and ``H3SPARK_TASK``. With
    ``framework="torch"`` they get torch's env:// variables instead (MASTER_ADDR, RANK, ...).
    The return values come back as JSON, in task order (MXNet's ``kv.rank`` may differ).

    >>> distributed(my_train_fn, num_workers=2, num_servers=1, kvstore="dist_sync")
    [{'rank': 0, 'loss': 0.31}, {'rank': 1, 'loss': 0.31}]
    """
    if framework == "torch":
        _check_counts(num_workers, 0, "torch")
        spec = LaunchSpec(kind="torch", command=[], num_workers=num_workers, env=dict(env or {}),
                          payload=_serialise(train_fn, args, kwargs), echo=echo)
        return _run(spec, launcher, spark, start_timeout_s, print)
    if framework != "mxnet":
        raise UsageError(f"The 'framework' parameter of distributed must be 'mxnet' or 'torch'. Got {framework!r} instead.")
    if kvstore not in KVSTORES:
        raise UsageError(f"The 'kvstore' parameter of distributed must be one of {', '.join(KVSTORES)}. Got {kvstore!r} instead.")
    kind = "ps" if kvstore.startswith("dist") else "plain"
    _check_counts(num_workers, num_servers if kind == "ps" else 0, kind)
    if kind == "plain" and num_workers != 1:
        raise UsageError(f"kvstore {kvstore!r} trains in one process; use num_workers=1 or a dist_* kvstore. Got {num_workers} instead.")
    spec = LaunchSpec(kind=kind, command=[], num_workers=num_workers, num_servers=num_servers if kind == "ps" else 0,
                      env={**(env or {}), "H3SPARK_KVSTORE": kvstore}, payload=_serialise(train_fn, args, kwargs), echo=echo)
    return _run(spec, launcher, spark, start_timeout_s, print)


def _check_counts(num_workers: int, num_servers: int, kind: str) -> None:
    if not isinstance(num_workers, int) or num_workers < 1:
        raise UsageError(f"The 'num_workers' parameter must be an int in the range [1, inf). Got {num_workers!r} instead.")
    if kind == "ps" and (not isinstance(num_servers, int) or num_servers < 1):
        raise UsageError(f"The 'num_servers' parameter must be an int in the range [1, inf) for a ps-lite job. Got {num_servers!r} instead.")
    if kind not in ("ps", "torch", "plain"):
        raise UsageError(f"The 'kind' parameter must be 'ps' or 'torch'. Got {kind!r} instead.")


def _serialise(train_fn, args, kwargs) -> bytes:
    """JSON naming the function when it is h3spark's own (the engines: no pickle, no cloudpickle
    needed in the worker's environment), else cloudpickle of the function and its arguments."""
    by_name = _json_payload(train_fn, args, kwargs)
    if by_name is not None:
        return by_name
    import cloudpickle

    module = sys.modules.get(getattr(train_fn, "__module__", "") or "")
    # A function from a test file or a script is not importable in the worker child: send it by value.
    by_value = module is not None and not module.__name__.startswith(("h3spark", "__main__"))
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps((train_fn, tuple(args), dict(kwargs or {})))
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _json_payload(train_fn, args, kwargs) -> bytes | None:
    if isinstance(train_fn, str):
        if train_fn.count(":") != 1:
            raise UsageError(f"The 'train_fn' parameter of distributed must be a callable or 'module:function'. Got {train_fn!r} instead.")
        function = train_fn
    else:
        module, name = getattr(train_fn, "__module__", "") or "", getattr(train_fn, "__qualname__", "")
        if not module.startswith("h3spark.") or "." in name or "<" in name:
            return None
        function = f"{module}:{name}"
    try:
        return json.dumps({"function": function, "args": list(args), "kwargs": dict(kwargs or {})}).encode()
    except TypeError:
        if isinstance(train_fn, str):
            raise UsageError(f"distributed({train_fn!r}, ...) sends its args as JSON; they must be JSON-serialisable.") from None
        return None


def _run(spec: LaunchSpec, launcher: str, spark, start_timeout_s: float, printer) -> list:
    # Finds a launch's processes in the process table; a caller may choose it through the environment.
    spec.env.setdefault("H3SPARK_LAUNCH_ID", os.environ.get("H3SPARK_LAUNCH_ID") or uuid.uuid4().hex)
    if launcher not in LAUNCHERS:
        raise UsageError(f"The 'launcher' parameter must be one of {', '.join(LAUNCHERS)}. Got {launcher!r} instead.")
    logger.info("launch kind=%s workers=%d servers=%d launcher=%s", spec.kind, spec.num_workers, spec.num_servers, launcher)
    if launcher == "local":
        from h3spark.train._local_launch import run_local

        return run_local(spec, start_timeout_s, printer)
    try:
        from h3spark.train._spark_launch import run_barrier
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise missing_dependency("pyspark", "launching on Spark (use launcher='local' without Spark)") from error
    if spark is None:
        from h3spark.spark import get_spark

        spark = get_spark()
    return run_barrier(spark, spec, start_timeout_s, printer)
