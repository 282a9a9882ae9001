"""tensorboardX's home in h3spark: the SummaryWriter and the HParams summaries, with one install hint.

The engines write their scalars with :func:`summary_writer`; tune's trial logdirs add the
HParams summaries built here (``h3spark.tune._tensorboard`` decides when to write them).
tensorboardX is imported when a function here is called.
"""

from __future__ import annotations

import sys
import time

from h3spark.errors import missing_dependency

# tensorboardX's own default: events reach disk every flush_secs (its flush() does not drain the queue).
DEFAULT_FLUSH_S = 120.0
_STATUS = {"completed": "STATUS_SUCCESS", "stopped": "STATUS_SUCCESS", "running": "STATUS_RUNNING"}


def import_tensorboardx():
    """The tensorboardX module (with its summary helpers loaded); the install hint when it is missing."""
    try:
        _guard_torch_import()
        import tensorboardX
        import tensorboardX.summary  # noqa: F401
    except ImportError:
        raise missing_dependency("tensorboardX", "Writing TensorBoard logs") from None
    return tensorboardX


class _NoTorchForTypeHints:
    """A meta path finder that refuses ``import torch`` to tensorboardX's writer module while it loads.

    tensorboardX.writer imports torch at its top, when installed, for a type hint alone: 2-10 s at
    the start of every MXNet rank 0. Refused, it falls back to numpy's type; its functions still
    import torch where they need it. Every other import of torch, in any thread, goes on as usual
    (the finder looks at the importing thread's own frames), and so does any import once torch is
    loaded (then no finder is asked)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" and _loading("tensorboardX.writer"):
            raise ModuleNotFoundError("torch is not loaded for tensorboardX's type hints", name=name)
        return None


def _loading(module: str, depth: int = 64) -> bool:
    """Whether this thread is running the top level of ``module`` (it is being imported)."""
    frame = sys._getframe(2)
    while frame is not None and depth > 0:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == module:
            return True
        frame, depth = frame.f_back, depth - 1
    return False


def _guard_torch_import() -> None:
    if not any(isinstance(finder, _NoTorchForTypeHints) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoTorchForTypeHints())


def summary_writer(logdir: str, flush_s: float = DEFAULT_FLUSH_S):
    """A tensorboardX SummaryWriter for a local directory, writing queued events every ``flush_s``."""
    return import_tensorboardx().SummaryWriter(logdir=logdir, flush_secs=flush_s)


def hparams_summaries(params: dict, metrics: dict):
    """tensorboardX's ``(experiment, session_start, session_end)`` HParams summaries."""
    return import_tensorboardx().summary.hparams(dict(params), dict(metrics))


def session_end_summary(status: str):
    """The HParams session end for a trial that ended with ``status`` (completed, stopped, failed, ...)."""
    import_tensorboardx()
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    info = SessionEndInfo(status=Status.Value(_STATUS.get(status, "STATUS_FAILURE")), end_time_secs=time.time())
    content = HParamsPluginData(session_end_info=info, version=0).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content))
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=metadata)])
