"""An actor's side that is not handling: its subscriptions, reports, snapshots, published parameters,
and how it is built (or restored from its newest snapshot)."""

from __future__ import annotations

import logging
import time

from h3spark.actors import _control as control
from h3spark.actors._envelope import Envelope
from h3spark.actors._intake import Intake
from h3spark.actors._models import actor_model, local_copy
from h3spark.actors._snapshot import Snapshots
from h3spark.actors._stats import ActorStats
from h3spark.actors._subscription import Subscription
from h3spark.actors._transport import Transport
from h3spark.config import ActorConfig
from h3spark.storage import join_uri
from h3spark.train import train_options
from h3spark.train.engines.model import Model, load_model

logger = logging.getLogger(__name__)


class ActorIO:
    """Subscriptions, reports, snapshots and parameters of an actor (the base of :class:`Actor`)."""

    def __init__(self, name: str, config: ActorConfig, transport: Transport, model: Model, network: str,
                 home: str | None, progress_s: float):
        self.name, self.config, self.transport, self.model = name, config, transport, model
        self.network, self.home, self.progress_s = network, home, progress_s
        self.started_ns = time.time_ns()
        self.offsets: dict[str, int] = {}  # "topic/partition" -> the offset after the last message handled
        self.records_after_snapshot = 0    # records committed after the restored snapshot (at most that many
        #                                    are missing from its model: a snapshot taken during a message's
        #                                    steps counts that message as not handled)
        self.data: Subscription | None = None
        self.control_subscription: Subscription | None = None
        self.snapshots = Snapshots(join_uri(home, "snapshots")) if home else None
        self._reported_s = 0.0

    @property
    def group(self) -> str:
        """The consumer group of the actor's inputs (its commands use GROUP.control)."""
        return self.config.group or f"{self.network}.{self.name}"

    def open(self) -> None:
        """Subscribe to the inputs and the network's commands, and report that the actor runs."""
        if self.config.inputs:
            self.data = self.transport.subscribe(list(self.config.inputs), self.group, self.handle)
        self.control_subscription = self.transport.subscribe([control.control_topic(self.network)],
                                                             f"{self.group}.control", self.handle)
        self.state = "running"
        self.report()
        logger.info("actor started at step %d group=%s actor=%s", self.model.step, self.group, self.name)

    def close(self) -> None:
        """Train on the rows left, publish the final parameters and end markers, snapshot, report, unsubscribe."""
        try:
            if self.state != "failed":
                self.train_ready(final=True)
                self.publish_parameters()
                for topic in self.config.outputs.ended_at_stop():
                    self.transport.publish(topic, control.end_marker(self.name, self.model.step))
                self.snapshot()
                self.state = "stopped"
        finally:
            for subscription in (self.data, self.control_subscription):
                if subscription is not None:
                    subscription.close()
            if self.intake is not None:
                self.intake.flush()
            self.report()
            self.transport.flush()
            logger.info("actor stopped at step %d state=%s actor=%s", self.model.step, self.state, self.name)

    def duplicates(self) -> int:
        return sum(subscription.stats.duplicates for subscription in (self.data, self.control_subscription)
                   if subscription is not None)

    def report(self) -> None:
        """Publish the actor's status to the network's status topic."""
        self._reported_s = time.monotonic()
        self.transport.publish(control.status_topic(self.network), control.report(self.name, self.status(),
                                                                                    self.model.step))

    def maybe_report(self) -> None:
        if time.monotonic() - self._reported_s >= self.progress_s:
            self.report()

    def after_step(self) -> None:
        """After each training step: publish parameters and snapshot when their intervals say so."""
        step = self.model.step
        every = self.config.publish_parameters.every_steps if self.config.publish_parameters else 0
        if every and step % every == 0:
            self.publish_parameters()
        if self.config.snapshot_every_steps and step % self.config.snapshot_every_steps == 0:
            self.snapshot()

    def publish_parameters(self) -> None:
        """The weights of the configured layers to ``outputs.parameters`` (when publishing is configured)."""
        settings = self.config.publish_parameters
        if settings is None:
            return
        weights = self.model.get_weights(settings.layers)
        layers = sorted({self.model.spec.layer_of(name) for name in weights})
        self.transport.publish(self.config.outputs.parameters, Envelope(
            "parameters", self.name, model_version=self.model.step, arrays=weights,
            meta={"layers": layers, "engine": self.model.engine}))
        self.stats.parameters_published += 1

    def snapshot(self) -> None:
        """Save the model, the fitted pipeline and the state under ``home`` (nothing without a home)."""
        if self.snapshots is None:
            return
        if self.intake is not None:
            self.intake.flush()
        self.stats.snapshots += 1
        fitted = self.intake.pipeline.to_json() if self.intake is not None and self.intake.fitted else None
        state = {"actor": self.name, "group": self.group, "offsets": dict(self.offsets),
                 "frozen": sorted(self.model.frozen()), "stats": self.stats.to_dict()}
        saved = self.snapshots.save(self.model, state, fitted, self.transport.seen(self.group).ids())
        logger.info("snapshot at step %d in %s actor=%s", self.model.step, saved.uri, self.name)


def build_actor(cls, name: str, config: ActorConfig, transport: Transport, workdir: str, network: str,
                home: str | None, progress_s: float):
    """``cls`` built from ``config``, or restored from the newest snapshot under ``home``: its model, its
    frozen layers, its fitted pipeline and its counters; it reads on from its group's committed offsets."""
    snapshots = Snapshots(join_uri(home, "snapshots")) if home else None
    latest = snapshots.latest() if snapshots else None
    fitted = None
    if latest is None:
        model = actor_model(config.model, config.training, workdir)
    else:
        options = train_options(config.training.model_dump(exclude={"batch_size"}))
        with local_copy(latest.model_uri) as path:
            model = load_model(path, engine=config.model.engine, options=options)
        model.freeze(latest.state.get("frozen", []))
        fitted = latest.pipeline_json()
    quarantine = join_uri(home, "quarantine") if home else None
    intake = Intake.from_config(config, workdir, quarantine, fitted_json=fitted)
    actor = cls(name, config, transport, model, intake, network, home, progress_s)
    if latest is not None:
        actor.stats = ActorStats.from_dict(latest.state.get("stats", {}))
        actor.offsets = dict(latest.state.get("offsets", {}))
        actor.records_after_snapshot = _records_after(transport, actor.group, actor.offsets)
        transport.seen(actor.group).update(latest.seen_ids())  # delivered again, they are skipped and counted
        logger.info("restored the snapshot of step %d (%d records committed after it) actor=%s", latest.step,
                    actor.records_after_snapshot, name)
    return actor


def _records_after(transport: Transport, group: str, offsets: dict[str, int]) -> int:
    """Records ``group`` committed past the snapshot's offsets (their training is not in the snapshot)."""
    total = 0
    for key, offset in offsets.items():
        topic, partition = key.rsplit("/", 1)
        committed = transport.committed(group, topic, int(partition))
        total += max(0, (committed or 0) - offset)
    return total
