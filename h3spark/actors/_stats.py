"""What an actor counts, and the report it publishes to its network's status topic."""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field

import numpy as np

LOSS_WINDOW = 20


@dataclass
class Scores:
    """Accuracy and mean loss over the rows evaluated (or predicted with labels)."""

    rows: int = 0
    correct: int = 0
    loss_sum: float = 0.0

    def add(self, logits: np.ndarray, labels: np.ndarray) -> None:
        logits = np.asarray(logits, dtype=np.float64)
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.rows += len(labels)
        self.correct += int((logits.argmax(axis=1) == labels).sum())
        self.loss_sum += float(-log_probs[np.arange(len(labels)), labels].sum())

    def summary(self) -> dict | None:
        if not self.rows:
            return None
        return {"rows": self.rows, "accuracy": self.correct / self.rows, "loss": self.loss_sum / self.rows}


@dataclass
class ActorStats:
    """Counters of one actor (since its last snapshot was restored, they go on from the snapshot's)."""

    handled: int = 0                      # messages handled, every kind
    rows_trained: int = 0
    rows_predicted: int = 0
    predictions_published: int = 0
    parameters_loaded: int = 0
    parameters_published: int = 0
    rejected: int = 0                     # messages refused by their handler (DataError), logged
    ignored: int = 0                      # messages not for this actor (another's command, parameters not accepted)
    snapshots: int = 0
    by_kind: dict = field(default_factory=dict)
    evaluated: Scores = field(default_factory=Scores)
    predicted: Scores = field(default_factory=Scores)
    losses: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LOSS_WINDOW))

    def count(self, kind: str) -> None:
        self.handled += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    @property
    def loss(self) -> float | None:
        return float(np.mean(self.losses)) if self.losses else None

    def to_dict(self) -> dict:
        """JSON of the counters (for snapshots and reports)."""
        data = asdict(self)
        data["losses"] = list(self.losses)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ActorStats":
        stats = cls(**{key: value for key, value in data.items()
                       if key in cls.__dataclass_fields__ and key not in ("evaluated", "predicted", "losses")})
        stats.evaluated = Scores(**data.get("evaluated", {}))
        stats.predicted = Scores(**data.get("predicted", {}))
        stats.losses.extend(data.get("losses", []))
        return stats


def report_line(name: str, report: dict) -> str:
    """One progress line of an actor's report."""
    parts = [f"actor {name}: {report.get('state', '?')}", f"{report.get('handled', 0)} messages",
             f"step {report.get('step', 0)}"]
    if report.get("loss") is not None:
        parts.append(f"loss {report['loss']:.4f}")
    for key, label in (("evaluated", "held-out"), ("predicted", "predicted")):
        scores = report.get(key)
        if scores:
            parts.append(f"{label} accuracy {scores['accuracy']:.4f} ({scores['rows']} rows)")
    if report.get("quarantined"):
        parts.append(f"quarantined {report['quarantined']}")
    if report.get("rejected"):
        parts.append(f"rejected {report['rejected']}")
    if report.get("error"):
        parts.append(f"error: {report['error']}")
    return ", ".join(parts)
