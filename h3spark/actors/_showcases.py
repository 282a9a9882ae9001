"""The actor showcases as experiments: each runs its networks (conf/actors_*.yaml) and measures what it states.

    >>> teacher, network = load_config("conf/actors_distill_teacher.yaml"), load_config("conf/actors_distill.yaml")
    >>> result = run_distillation(teacher, network, workdir)
    >>> result.recovered                      # (err_baseline - err_student) / (err_baseline - err_teacher)
    >>> source, network = load_config("conf/actors_transfer_source.yaml"), load_config("conf/actors_transfer.yaml")
    >>> run_transfer(source, network, workdir, level=0.93).steps
    {'target': 35, 'scratch': 80}
    >>> run_sentinel(load_config("conf/actors_sentinel.yaml"), workdir).results["learner"][-1]
    {'model_version': 197, 'accuracy': 0.95, 'loss': 0.17, 'rows': 539, ...}

Every network runs as ``h3spark actors CONFIG`` would (threads on the in-process bus, one process per actor on
Kafka), with one transport the driver keeps, so it can read what the actors published afterwards: the teacher's
held-out predictions (rows and labels for the FGSM table), the sentinels' results. Names the drivers rely on:
(b) actors ``teacher``, ``student`` and ``baseline``; (c) producers with ``start: false`` start once every actor
that accepts parameters has loaded some; each sentinel's results are keyed by the actor it follows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from h3spark.actors._child import make_transport
from h3spark.actors._envelope import decode
from h3spark.actors._models import local_copy
from h3spark.actors._network import Network, NetworkResult, transport_settings
from h3spark.actors._producer import run_producer
from h3spark.actors._sentinel import VALIDATION
from h3spark.actors._snapshot import Snapshots
from h3spark.actors._transport import Transport
from h3spark.config import H3SparkConfig
from h3spark.errors import ConfigError, JobFailedError, TaskFailure
from h3spark.storage import join_uri, resolve_uri
from h3spark.train.engines.attacks import robustness
from h3spark.train.engines.model import Model, load_model

DISTILL_ROLES = ("teacher", "student", "baseline")
WAIT_S = 600.0  # how long a driver waits for actors to load parameters before it gives up


def run_network(config: H3SparkConfig, workdir: str, transport: Transport, progress=None) -> NetworkResult:
    """Run ``config``'s network to its end on ``transport``; producers declared ``start: false`` are run once
    every actor that accepts parameters has loaded some. A failed actor is a JobFailedError naming it."""
    network = Network.from_config(config, workdir, transport=transport, progress=progress or (lambda line: None))
    network.start()
    try:
        _start_waiting_producers(network, config, workdir)
        while network.active():
            network.poll()
    except BaseException:
        network.stop()
        raise
    finally:
        network.close()
    result = network.result()
    if result.failed:
        failures = [TaskFailure.from_traceback(f"actor {name}", None, result.errors.get(name, "failed"))
                    for name in result.failed]
        raise JobFailedError.of(f"{len(failures)} actor(s) of {result.network} failed: {', '.join(result.failed)}",
                                failures)
    return result


def _start_waiting_producers(network: Network, config: H3SparkConfig, workdir: str) -> None:
    waiting = {name: producer for name, producer in config.actors.producers.items() if not producer.start}
    if not waiting:
        return
    loaders = [name for name, actor in config.actors.actors.items() if actor.accept_parameters and not actor.sentinel]
    deadline = time.monotonic() + WAIT_S
    while not all(network.status().get(name, {}).get("parameters_loaded", 0) >= 1 for name in loaders):
        if time.monotonic() > deadline or not network.active():
            raise JobFailedError(f"actors {', '.join(loaders)} of {network.name} loaded no parameters within "
                                 f"{WAIT_S:.0f} s; is the actor that publishes them (a network run before) done?")
        network.poll(timeout_s=0.1)
    for name, producer in waiting.items():
        run_producer(name, producer, network.transport, workdir)


def shared_transport(*configs: H3SparkConfig) -> Transport:
    """One transport for the networks of ``configs`` (they must name the same one)."""
    settings = [transport_settings(config.actors) for config in configs]
    if any(other != settings[0] for other in settings[1:]):
        raise ConfigError(configs[-1].name, [f"its networks run on one transport; they name {settings}. Give them the "
                                             "same actors.transport and bootstrap_servers."])
    return make_transport(settings[0])


def snapshot_model(config: H3SparkConfig, workdir: str, actor: str) -> Model:
    """The model of ``actor``'s newest snapshot in ``config``'s network."""
    uri = join_uri(resolve_uri(config.actors.dir, workdir), config.name, actor, "snapshots")
    latest = Snapshots(uri).latest()
    if latest is None:
        raise JobFailedError(f"actor {actor} of {config.name} left no snapshot in {uri}.")
    with local_copy(latest.model_uri) as path:
        return load_model(path)


# --- (b) distillation ---------------------------------------------------------------------------

@dataclass
class DistillationResult:
    """Held-out errors of the teacher, the distilled student and the same student on hard labels alone."""

    errors: dict[str, float]
    recovered: float
    holdout_rows: int
    temperature: float
    holdout: tuple[np.ndarray, np.ndarray] = field(repr=False)     # the held-out rows and labels the teacher forwarded
    models: dict[str, Model] = field(repr=False)


def run_distillation(teacher_config: H3SparkConfig, config: H3SparkConfig, workdir: str,
                     progress=None) -> DistillationResult:
    """Train the teacher (``teacher_config``), then run ``config``: the teacher's soft outputs teach the student,
    the baseline learns the labels; the fraction of the teacher-baseline error gap the student recovers."""
    missing = [role for role in DISTILL_ROLES if role not in config.actors.actors]
    if missing:
        raise ConfigError(config.name, [f"the distillation showcase needs actors named {', '.join(DISTILL_ROLES)}; "
                                        f"{', '.join(missing)} missing."])
    with shared_transport(teacher_config, config) as transport:
        run_network(teacher_config, workdir, transport, progress)
        result = run_network(config, workdir, transport, progress)
        teacher = config.actors.actors["teacher"]
        holdout = _held_out_predictions(transport, teacher.outputs.predictions)
    errors = {role: 1.0 - result.reports[role]["evaluated"]["accuracy"] for role in DISTILL_ROLES}
    gap = errors["baseline"] - errors["teacher"]
    recovered = (errors["baseline"] - errors["student"]) / gap if gap > 0 else float("nan")
    models = {role: snapshot_model(config, workdir, role) for role in DISTILL_ROLES}
    return DistillationResult(errors, recovered, result.reports["student"]["evaluated"]["rows"], teacher.temperature,
                              holdout, models)


def _held_out_predictions(transport: Transport, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows and labels of the held-out predictions on ``topic`` (forwarded marked holdout)."""
    features, labels = [], []
    for record in transport.read(topic):
        envelope = decode(record.value)
        if envelope.kind == "predictions" and envelope.meta.get("split") == "holdout":
            features.append(np.array(envelope.arrays["features"]))
            labels.append(np.array(envelope.arrays["label"]))
    if not labels:
        raise JobFailedError(f"{topic} holds no held-out predictions; the teacher needs include_inputs: true and a "
                             "stream with held-out records.")
    return np.concatenate(features), np.concatenate(labels)


def distillation_robustness(result: DistillationResult, epsilons: list[float]) -> list[dict]:
    """Item 7: the error under FGSM at each epsilon of the teacher, the student and the baseline on the held-out
    rows, with the gradient taken on the softmax (T = 1) and on the logits divided by the distillation's T."""
    features, labels = result.holdout
    rows = []
    for role in DISTILL_ROLES:
        for gradient, temperature in (("softmax", 1.0), ("logits/T", result.temperature)):
            table = robustness(result.models[role], features, labels, epsilons, temperature=temperature)
            rows.append({"model": role, "gradient": gradient, **table})
    return rows


# --- (c) transfer and (d) the sentinel ---------------------------------------------------------

@dataclass
class TransferResult:
    """Steps each learner took to reach ``level`` on the held-out rows (None: never), and the curves behind them."""

    level: float
    steps: dict[str, int | None]
    curves: dict[str, list[tuple[int, float]]]
    source_engine: str
    target_engine: str


def run_transfer(source_config: H3SparkConfig, config: H3SparkConfig, workdir: str, level: float,
                 progress=None) -> TransferResult:
    """Train the source (``source_config``, publishing its first layers), then run ``config`` (a target that loads
    them, a learner from scratch, a sentinel on each); steps to ``level`` from the sentinels' results."""
    with shared_transport(source_config, config) as transport:
        run_network(source_config, workdir, transport, progress)
        run_network(config, workdir, transport, progress)
        results = sentinel_results(config, transport)
    curves = {learner: [(r["model_version"], r["accuracy"]) for r in found] for learner, found in results.items()}
    steps = {learner: next((version for version, accuracy in curve if accuracy >= level), None)
             for learner, curve in curves.items()}
    source = next(iter(source_config.actors.actors.values())).model.engine
    target = config.actors.actors["target"].model.engine if "target" in config.actors.actors else ""
    return TransferResult(level, steps, curves, source, target)


def sentinel_results(config: H3SparkConfig, transport: Transport) -> dict[str, list[dict]]:
    """Each sentinel's results in ``config`` (from its outputs.validation topic), keyed by the actor it follows,
    in the order it published them."""
    found = {}
    for name, actor in config.actors.actors.items():
        if actor.sentinel is None or actor.outputs.validation is None:
            continue
        followed = (actor.accept_parameters.senders or [name])[0]
        messages = [decode(record.value) for record in transport.read(actor.outputs.validation)]
        found[followed] = [{key: value for key, value in m.meta.items() if key != "op"} for m in messages
                           if m.kind == "control" and m.meta.get("op") == VALIDATION and m.sender == name]
    return found


@dataclass
class SentinelResult:
    """What the sentinels reported (by the actor they follow) and each actor's last report."""

    results: dict[str, list[dict]]
    reports: dict[str, dict]


def run_sentinel(config: H3SparkConfig, workdir: str, progress=None) -> SentinelResult:
    """Run ``config``'s network (a learner and its sentinel); the sentinel's results, stamped by version."""
    with shared_transport(config) as transport:
        result = run_network(config, workdir, transport, progress)
        return SentinelResult(sentinel_results(config, transport), result.reports)

