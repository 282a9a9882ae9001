"""The executor side: one long-lived slot runs trials one after another, each in its own
forked process, so a trial that hangs past ``timeout_s`` or crashes can be killed
without touching the slot, the other trials or Spark's task (no Spark retries of a trial).
"""

from __future__ import annotations

import json
import multiprocessing
import numbers
import os
import signal
import threading
import time
import traceback

from h3spark.tune._naming import trial_dirname
from h3spark.tune._wire import LEASE_S, Connection, jsonable

_KILL_GRACE_S = 2.0


class SocketChannel:
    """Reports go to the driver's dispatcher over its TCP connection; the reply says stop or go."""

    def __init__(self, address, token: str):
        self._address, self._token = tuple(address), token
        self._connection = None

    def report(self, trial_id: int, step: int, metrics: dict, score) -> bool:
        if self._connection is None:
            self._connection = Connection(self._address, self._token)
        reply = self._connection.request({"op": "report", "trial_id": trial_id, "step": step,
                                          "metrics": metrics, "score": score})
        return bool(reply.get("stop"))


def make_channel(setup: dict):
    if setup.get("kafka"):
        from h3spark.tune._kafka import KafkaChannel

        return KafkaChannel(setup["kafka"])
    return SocketChannel(setup["address"], setup["token"])


def task_gpus() -> list[str]:
    """GPU addresses Spark assigned to this task (spark.task.resource.gpu.amount), else []."""
    try:
        from pyspark import TaskContext
    except ImportError:
        return []
    context = TaskContext.get()
    if context is None:
        return []
    resource = context.resources().get("gpu")
    return list(resource.addresses) if resource is not None else []


def run_slot(slot: int, train_fn, setup: dict, gpus: list[str] | None = None) -> dict:
    """Pull trials from the driver until it says done; return the slot's counts."""
    _preload()
    connection = Connection(tuple(setup["address"]), setup["token"])
    counts, result = {"slot": slot, "trials": 0}, None

    def renew(trial_id: int) -> bool:
        return bool(connection.request({"op": "renew", "slot": slot, "trial_id": trial_id}).get("held"))

    try:
        while True:
            reply = connection.request({"op": "next", "slot": slot, "result": result})
            if "trial" not in reply:
                return counts
            result = run_trial(slot, reply["trial"], train_fn, setup, gpus or [], renew)
            counts["trials"] += 1
    finally:
        connection.close()


def _preload() -> None:
    # Imported once in the slot, so that each forked trial starts with them loaded.
    from h3spark.tune._tensorboard import preload

    preload()


def run_trial(slot: int, trial: dict, train_fn, setup: dict, gpus: list[str], renew=None) -> dict:
    """Run one trial in a forked child; return its JSON record (failed, timeout, ... included).

    While it runs, ``renew(trial_id)`` keeps the driver's lease on it; a False answer (the
    driver gave the trial up) kills it. When waiting fails otherwise (``renew`` raises: the
    driver refused it or is gone), the trial is killed and joined before the error goes on,
    so no trial outlives the wait for it."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_trial_main, args=(writer, slot, trial, train_fn, setup, gpus, os.getpid()),
                               daemon=True)
    process.start()
    writer.close()
    try:
        record = _await_record(reader, process, slot, trial, setup, renew)
    except EOFError:
        record = None
    except BaseException:
        _stop(process)
        raise
    finally:
        reader.close()
    if record is None:
        process.join(_KILL_GRACE_S)
        return _crashed(process, slot, trial)
    # The result is in: let the process exit in the background, so the slot asks for its next trial now.
    threading.Thread(target=_reap, args=(process,), daemon=True).start()
    return record


def _await_record(reader, process, slot: int, trial: dict, setup: dict, renew) -> dict:
    """The child's record; renews the lease every quarter of lease_s; kills the child at timeout_s."""
    timeout_s = setup.get("timeout_s")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    interval = setup.get("lease_s", LEASE_S) / 4
    while True:
        wait = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
        if reader.poll(wait):
            return json.loads(reader.recv_bytes())
        if deadline is not None and time.monotonic() >= deadline:
            return _killed(process, slot, trial, f"stopped after timeout_s={timeout_s}: the trial ran longer "
                                                  "than its time limit", "timeout")
        if renew is not None and not renew(trial["trial_id"]):
            return _killed(process, slot, trial, "killed: the driver gave this trial up (its lease expired)", "failed")


def _reap(process) -> None:
    process.join(_KILL_GRACE_S)
    if process.is_alive():  # e.g. a non-daemon thread left running by train_fn
        process.kill()
        process.join()


def _stop(process) -> None:
    """Terminate the trial process (SIGKILL after a grace) and reap it."""
    process.terminate()
    process.join(_KILL_GRACE_S)
    if process.is_alive():
        process.kill()
        process.join()


def _killed(process, slot: int, trial: dict, error: str, status: str) -> dict:
    _stop(process)
    return {"trial_id": trial["trial_id"], "status": status, "slot": slot, "ended_at": time.time(), "error": error}


def _crashed(process, slot: int, trial: dict) -> dict:
    if process.is_alive():
        process.kill()
        process.join(_KILL_GRACE_S)
    return {"trial_id": trial["trial_id"], "status": "failed", "slot": slot, "ended_at": time.time(),
            "error": f"the trial process exited with code {process.exitcode} before returning a result"}


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this trial when its slot dies (a cancelled Spark task), so no trial is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def _trial_main(writer, slot: int, trial: dict, train_fn, setup: dict, gpus: list[str], parent_pid: int) -> None:
    started_at = time.time()
    _die_with_parent(parent_pid)
    # trials side by side share the host's cores (DataIterator's read threads); at most this many run here
    os.environ.setdefault("LOCAL_WORLD_SIZE", str(setup.get("slots", 1)))
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    record = {"trial_id": trial["trial_id"], "slot": slot, "started_at": started_at, "gpus": gpus}
    record.update(_train(trial, train_fn, setup, gpus))
    record["ended_at"] = time.time()
    writer.send_bytes(json.dumps(jsonable(record)).encode())
    writer.close()


def _train(trial: dict, train_fn, setup: dict, gpus: list[str]) -> dict:
    from h3spark.tune._context import TrialContext, TrialStopped

    name = trial_dirname(trial["trial_id"], trial["params"])
    ctx = TrialContext(trial["trial_id"], name, trial["params"], setup, make_channel(setup), gpus)
    status, metrics, error = "completed", {}, None
    try:
        ctx.start()
        metrics = _checked(train_fn(dict(trial["params"]), ctx), setup["metric"])
    except TrialStopped:
        status, metrics = "stopped", dict(ctx.last_metrics)
    except BaseException:  # the trial's failure is a result, never the slot's
        status, error, metrics = "failed", traceback.format_exc(limit=-20), dict(ctx.last_metrics)
    try:
        ctx.finish(status, metrics)
    except Exception:
        if error is None:
            status, error = "failed", traceback.format_exc(limit=-20)
    # no paths but the model's, relative to the logdir: the driver derives the logdir itself
    return {"status": status, "metrics": jsonable(metrics), "error": error,
            "model": ctx.model_path and os.path.relpath(ctx.model_path, ctx.logdir)}


def _checked(metrics, metric: str) -> dict:
    """The returned metrics, whose ``metric`` must be a number: a trial without a score fails, it is never dropped."""
    if not isinstance(metrics, dict):
        raise TypeError(f"train_fn must return a dict of metrics. Got {type(metrics).__name__} instead.")
    if metric not in metrics:
        raise KeyError(f"train_fn returned no {metric!r} metric; it returned {sorted(metrics)}. "
                       f"Return it, or set metric= to one of those.")
    value = metrics[metric]
    if hasattr(value, "item") and not isinstance(value, numbers.Real):  # a one-element array or tensor
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"train_fn returned {metric}={value!r} ({type(value).__name__}); the metric must be a number. "
                        f"Return a float, or set metric= to a numeric metric.")
    return {**metrics, metric: value}
