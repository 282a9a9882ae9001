"""What may cross an experiment's channels, and what a trial log may hold.

The dispatcher checks every message against these models before anything is stored, and
the trial log checks every record it reads back, so that a value no trial of ours would
send (a timestamp that is a string, a trial id that is a float, an unknown field such as
a path) is refused where it enters instead of crashing the results later. Models are
strict: no coercion, no NaN or infinity, no extra fields on the wire.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, ValidationError

RESULT_STATUSES = ("completed", "stopped", "failed", "timeout")
_MAX_ERRORS_SHOWN = 3


def _relative_model_path(path: str) -> str:
    parts = path.split("/")
    if parts[0] != "model" or any(part in ("", ".", "..") for part in parts) or "\\" in path:
        raise ValueError("must be a relative path under the trial's model/ directory")
    return path


Count = Annotated[int, Field(ge=0, lt=1 << 63)]  # what a Parquet int64 column holds
Step = Annotated[int, Field(ge=-(1 << 63), lt=1 << 63)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Metrics = dict[str, JsonValue]
ModelPath = Annotated[str, Field(max_length=1000), AfterValidator(_relative_model_path)]


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class TrialResult(_Wire):
    """A slot's record of one finished trial (``result`` of a ``next`` message)."""

    trial_id: Count
    slot: Count
    status: Literal[RESULT_STATUSES]
    started_at: Seconds | None = None
    ended_at: Seconds
    gpus: list[str] = []
    metrics: Metrics = {}
    error: str | None = None
    model: ModelPath | None = None


class NextMessage(_Wire):
    op: Literal["next"]
    slot: Count
    result: TrialResult | None = None


class RenewMessage(_Wire):
    op: Literal["renew"]
    slot: Count
    trial_id: Count


class ReportMessage(_Wire):
    op: Literal["report"]
    trial_id: Count
    step: Step
    metrics: Metrics
    score: Annotated[float, Field(allow_inf_nan=False)] | None = None


_MESSAGES = {"next": NextMessage, "renew": RenewMessage, "report": ReportMessage}


class _Logged(BaseModel):
    """Log records keep fields we no longer write (e.g. ``logdir``); the driver recomputes paths."""

    model_config = ConfigDict(strict=True, extra="allow")


class StartedEvent(_Logged):
    trial_id: Count
    params: dict[str, JsonValue]
    generation: Count = 0
    slot: Count | None = None


class FinishedEvent(StartedEvent):
    status: Literal[RESULT_STATUSES + ("cancelled",)]
    started_at: Seconds | None = None
    ended_at: Seconds | None = None
    gpus: list[str] | None = None
    metrics: Metrics | None = None
    error: str | None = None
    model: ModelPath | None = None


class HeaderEvent(_Logged):
    search: str
    metric: str
    direction: Literal["max", "min"]
    seed: Step | None = None


_EVENTS = {"experiment": HeaderEvent, "started": StartedEvent, "finished": FinishedEvent}


def message_problem(message: dict) -> str | None:
    """Why a decoded wire message (token already taken off) is refused, or None if it fits."""
    model = _MESSAGES.get(message.get("op"))
    if model is None:
        return f"unknown op {_shown(message.get('op'))}; expected one of {', '.join(_MESSAGES)}"
    return _problem(model, message)


def event_problem(event: Any) -> str | None:
    """Why a trial-log record is unusable, or None if it fits."""
    if not isinstance(event, dict):
        return f"a record must be a JSON object. Got {_shown(event)} instead"
    model = _EVENTS.get(event.get("event"))
    if model is None:
        return f"unknown event {_shown(event.get('event'))}; expected one of {', '.join(_EVENTS)}"
    return _problem(model, event)


def _problem(model: type[BaseModel], data: dict) -> str | None:
    try:
        model.model_validate(data)
    except ValidationError as error:
        shown = [f"{'.'.join(str(part) for part in item['loc']) or 'message'}: {item['msg']} (got {_shown(item['input'])})"
                 for item in error.errors()[:_MAX_ERRORS_SHOWN]]
        more = error.error_count() - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
