"""What a gates run reports: each sentinel's epochs and scores, each gate's delays, and the lines
printed while it runs.

    >>> epoch_line("train-1", {"epoch": 3, "loss": 0.41, "accuracy": 0.88, "seconds": 12.3, "versions": {"g1": [80, 95]}})
    'train-1 epoch 3 loss 0.4100 acc 0.8800 12.3 s  versions g1 80-95'
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from h3spark.train.engines.stage import percentile


def _versions(versions: dict) -> str:
    return " ".join(f"{gate} {low}-{high}" if low != high else f"{gate} {low}" for gate, (low, high) in versions.items())


def epoch_line(sentinel: str, meta: dict) -> str:
    """``train-1 epoch 3 loss 0.4100 acc 0.8800 12.3 s  versions g1 80-95 ...`` (the weight versions
    each gate had when the epoch's batches passed it)."""
    return (f"{sentinel} epoch {meta['epoch']} loss {_loss(meta['loss'])} acc {meta['accuracy']:.4f} "
            f"{meta['seconds']:.1f} s  versions {_versions(meta.get('versions', {}))}")


def score_line(sentinel: str, meta: dict) -> str:
    """``val validation 2 loss 0.3000 acc 0.9100 360 rows 0.4 s  versions ...``"""
    return (f"{sentinel} {meta['kind']} {meta['pass']} loss {_loss(meta['loss'])} acc {meta['accuracy']:.4f} "
            f"{meta['rows']} rows {meta['seconds']:.1f} s  versions {_versions(meta.get('versions', {}))}")


@dataclass
class GatesResult:
    """How a run went. ``epochs``/``scores``: sentinel -> its status messages (a score's ``at_s``: when it
    was taken, in seconds since the first training sentinel started); ``gates``: gate -> its final
    report (``delays``: delay in updates -> count); ``training_seconds``: from the first training
    sentinel's start to the last one's end."""

    network: str
    run_id: str
    placement: str
    compensation: str
    epochs: dict[str, list[dict]] = field(default_factory=dict)
    scores: dict[str, list[dict]] = field(default_factory=dict)
    sentinels: dict[str, dict] = field(default_factory=dict)
    gates: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    training_seconds: float | None = None

    @property
    def failed(self) -> list[str]:
        return sorted(self.errors)

    def delays(self, gate: str | None = None) -> dict[int, int]:
        """Delay (updates) -> how many gradients arrived that late, at ``gate`` or all gates together."""
        total: Counter[int] = Counter()
        for name, report in self.gates.items():
            if gate is None or name == gate:
                total.update({int(delay): count for delay, count in report.get("delays", {}).items()})
        return dict(sorted(total.items()))

    def delay_percentile(self, q: float, gate: str | None = None) -> float | None:
        return percentile(self.delays(gate), q)

    @property
    def training_samples(self) -> int:
        return sum(report.get("samples", 0) for report in self.sentinels.values() if report.get("kind") == "train")

    @property
    def samples_per_s(self) -> float | None:
        if not self.training_seconds:
            return None
        return self.training_samples / self.training_seconds

    def final_score(self, kind: str) -> dict | None:
        """The last score of a sentinel of ``kind`` (validation or test)."""
        found = [scores[-1] for scores in self.scores.values() if scores and scores[-1].get("kind") == kind]
        return found[-1] if found else None

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = [("placement", f"{self.placement}, compensation {self.compensation}")]
        for name, report in self.sentinels.items():
            rows.append((f"sentinel {name}", _sentinel_summary(report, self.scores.get(name, []))))
        for name, report in self.gates.items():
            delays = report.get("delays", {})
            rows.append((f"gate {name}", f"{report.get('version', 0)} updates, delay p50 "
                         f"{_number(self.delay_percentile(50, name))} p99 {_number(self.delay_percentile(99, name))}, "
                         f"max {max(map(int, delays), default=0)}, busy {report.get('busy_s', 0):.1f} s"))
        if self.samples_per_s:
            rows.append(("throughput", f"{self.samples_per_s:,.0f} training samples/s over {self.training_seconds:.1f} s"))
        rows += [(f"failed {name}", error.splitlines()[0] if error else "failed") for name, error in self.errors.items()]
        return rows


def _loss(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4f}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _sentinel_summary(report: dict, scores: list[dict]) -> str:
    text = f"{report.get('kind')} {report.get('state')}"
    if report.get("kind") == "train":
        return f"{text}, {report.get('epochs', 0)} epochs, {report.get('batches', 0)} batches"
    if scores:
        last = scores[-1]
        return f"{text}, {len(scores)} passes, last loss {_loss(last['loss'])} acc {last['accuracy']:.4f}"
    return f"{text}, no pass"
