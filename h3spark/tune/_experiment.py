"""Run a search: trials out to the slots, results into the log, the table and TensorBoard.

The driver trusts no message for a path: each trial's name and logdir are derived here from
its id and params (also for records read back from ``trials.jsonl``), so ``best_model/`` is
only ever copied from inside the experiment dir. What the summary must mention (metrics that
are not numbers, messages the dispatcher refused) ends up in ``ExperimentResult.warnings``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import uuid
from urllib.parse import urlsplit

from h3spark.errors import ConfigError, JobFailedError
from h3spark.storage import filesystem_for
from h3spark.tune._dispatcher import Dispatcher
from h3spark.tune._log import TrialLog
from h3spark.tune._naming import trial_dirname, trial_logdir
from h3spark.tune._results import (ExperimentResult, SummaryWarnings, best_row, dispatch_gaps_ms, results_frame,
                                   write_results)
from h3spark.tune._search import Search, Trial
from h3spark.tune._stopping import StoppingRule
from h3spark.tune._tensorboard import LogdirSync, write_experiment_summary

logger = logging.getLogger(__name__)

_WAIT_S = 0.2


class Experiment:
    """One search over one experiment dir. Build it with the public functions (grid_search, ...)."""

    def __init__(self, search: Search, train_fn, *, metric: str, direction: str, experiment_dir: str, executor,
                 parallelism: int | None = None, timeout_s: float | None = None, stopping: StoppingRule | None = None,
                 dataset_uri: str | None = None, kafka: dict | None = None):
        self.search, self.train_fn, self.metric, self.direction = search, train_fn, metric, direction
        self.experiment_dir, self.executor, self.parallelism = experiment_dir, executor, parallelism
        self.timeout_s, self.stopping, self.dataset_uri, self.kafka = timeout_s, stopping, dataset_uri, kafka
        self.log = TrialLog(experiment_dir)
        self._records: dict[int, dict] = {trial_id: self._with_paths(record)
                                          for trial_id, record in self.log.final_records().items()}
        self.warnings = SummaryWarnings()
        self._run_records: list[dict] = []
        self._submitted: set[int] = set()
        self._last_reports: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._dispatcher: Dispatcher | None = None
        self._started = False

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> ExperimentResult:
        self.log.check_header({"search": self.search.kind, "metric": self.metric, "direction": self.direction,
                               "seed": getattr(self.search, "seed", None)})
        self._write_hparams_experiment()
        warming = threading.Thread(target=warm_up_outputs, name="h3spark-warm-up", daemon=True)
        warming.start()  # the driver idles while trials run; load the plotting and Parquet code meanwhile
        self._dispatcher = Dispatcher(self.executor.host, self._on_started, self._on_finished, self._on_report,
                                      self.stopping, timeout_s=self.timeout_s)
        try:
            self._run_batches()
        except KeyboardInterrupt:
            self._cancel()
            warming.join()
            self._write_outputs()
            raise
        self._close_dispatcher()
        warming.join()
        result = self._write_outputs()  # while Spark winds the finished job down
        self._shutdown()
        return result

    def _run_batches(self) -> None:
        while batch := self.search.next_batch(self._scores()):
            self.log.check_params(batch)
            pending = [trial for trial in batch if trial.trial_id not in self._records]
            if any(trial.trial_id in self._submitted for trial in pending):  # never run a trial twice
                raise JobFailedError(f"trials {[t.trial_id for t in pending]} were handed out but have no result; "
                                     f"the experiment stops here experiment={self.experiment_dir}")
            self._submitted.update(trial.trial_id for trial in pending)
            if pending:
                self._start_slots(len(pending))
                logger.info("running %d trials (%d already done) experiment=%s", len(pending), len(batch) - len(pending),
                            self.experiment_dir)
                self._dispatcher.submit(pending)
                self._wait_for_batch()

    def _start_slots(self, batch_size: int) -> None:
        if self._started:
            return
        slots = min(self.parallelism or self.executor.default_slots(), batch_size)
        setup = {**self._dispatcher.settings(), "experiment_dir": self.experiment_dir,
                 "dataset_uri": self.dataset_uri, "metric": self.metric, "direction": self.direction,
                 "timeout_s": self.timeout_s, "kafka": self.kafka, "slots": slots}
        if self.kafka:
            from h3spark.tune._kafka import KafkaStopBridge

            setup["kafka"] = {**self.kafka, "run_id": uuid.uuid4().hex}
            self._bridge = KafkaStopBridge(setup["kafka"], self._dispatcher)
        self.executor.start(slots, self.train_fn, setup)
        self._started = True

    def _wait_for_batch(self) -> None:
        while not self._dispatcher.wait_idle(_WAIT_S):
            if self.executor.finished():
                self._shutdown()  # raises the Spark job's error, if it failed
                raise JobFailedError(f"every trial slot ended while trials were still queued experiment={self.experiment_dir}")

    def _close_dispatcher(self) -> None:
        for slot, trial in self._dispatcher.close():
            self._on_finished(trial, {"trial_id": trial.trial_id, "status": "cancelled", "slot": slot, "ended_at": time.time()})

    def _shutdown(self) -> None:
        self._close_dispatcher()
        if getattr(self, "_bridge", None):
            self._bridge.close()
        if self._started:
            self.executor.join()

    def _cancel(self) -> None:
        logger.warning("interrupted: cancelling the running trials experiment=%s", self.experiment_dir)
        if self._started:
            self.executor.cancel()
        for slot, trial in self._dispatcher.close():
            self._on_finished(trial, {"trial_id": trial.trial_id, "status": "cancelled", "slot": slot, "ended_at": time.time(),
                                      "error": "cancelled by the user (Ctrl-C); it runs again when the experiment resumes"})
        if getattr(self, "_bridge", None):
            self._bridge.close()

    # -- events from the dispatcher ----------------------------------------------------------
    def _on_started(self, trial: Trial, slot: int) -> None:
        self.log.append({"event": "started", "trial_id": trial.trial_id, "params": trial.params,
                         "generation": trial.generation, "slot": slot})

    def _on_report(self, message: dict) -> None:
        self.warnings.check_metrics(message["trial_id"], message["metrics"], message["step"])
        with self._lock:
            self._last_reports[message["trial_id"]] = message["metrics"]

    def _on_finished(self, trial: Trial, record: dict) -> None:
        record = self._with_paths({**record, "params": trial.params, "generation": trial.generation})
        if not record.get("metrics"):
            record["metrics"] = self._last_reports.get(trial.trial_id, {})
        elif record["status"] == "completed":  # a stopped trial's metrics are its last report's, checked then
            self.warnings.check_metrics(trial.trial_id, record["metrics"])
        self.log.append({"event": "finished", **record})
        with self._lock:
            self._records[trial.trial_id] = record
            self._run_records.append(record)
        log = logger.info if record["status"] in ("completed", "stopped") else logger.warning
        log("trial %s %s %s=%s experiment=%s", trial.trial_id, record["status"], self.metric,
            record["metrics"].get(self.metric), self.experiment_dir)

    def _with_paths(self, record: dict) -> dict:
        """The record with the name and logdir the driver derives (whatever the record said)."""
        return {**record, "name": trial_dirname(record["trial_id"], record["params"]),
                "logdir": trial_logdir(self.experiment_dir, record["trial_id"], record["params"])}

    def _scores(self) -> dict[int, float | None]:
        scores = {}
        for trial_id, record in self._records.items():
            if record.get("status") not in ("completed", "stopped", "failed", "timeout"):
                continue
            value = (record.get("metrics") or {}).get(self.metric)
            usable = record["status"] in ("completed", "stopped") and isinstance(value, (int, float))
            scores[trial_id] = (value if self.direction == "max" else -value) if usable else None
        return scores

    # -- outputs -------------------------------------------------------------------------------
    def _param_names(self) -> list[str]:
        return list(self.search.space) or list(getattr(self.search, "fixed", {}))

    def _write_hparams_experiment(self) -> None:
        example = {name: domain.from_unit(0.0) for name, domain in self.search.space.items()}
        example = example or dict(getattr(self.search, "fixed", {}))
        if urlsplit(self.experiment_dir).scheme in ("", "file"):
            from h3spark.storage import local_path

            write_experiment_summary(local_path(self.experiment_dir), example, [self.metric])
            return
        with tempfile.TemporaryDirectory(prefix="h3spark-hparams-") as local:
            write_experiment_summary(local, example, [self.metric])
            LogdirSync(local, self.experiment_dir).sync()

    def _write_outputs(self) -> ExperimentResult:
        with self._lock:
            records = list(self._records.values())
            run_records = list(self._run_records)
        frame = results_frame(records, self._param_names())
        warnings = self._summary_warnings()
        write_results(self.experiment_dir, frame, self.metric, self.direction, self._param_names(), warnings)
        best = best_row(frame, self.metric, self.direction)
        result = ExperimentResult(
            best_params=None if best is None else dict(self._records[int(best["trial_id"])]["params"]),
            best_metrics=None if best is None else dict(self._records[int(best["trial_id"])]["metrics"]),
            best_logdir=None if best is None else best["logdir"],
            best_trial_id=None if best is None else int(best["trial_id"]),
            results=frame, experiment_dir=self.experiment_dir, metric=self.metric, direction=self.direction,
            dispatch_gaps_ms=dispatch_gaps_ms(run_records), warnings=warnings)
        logger.info("experiment done: %d trials, best trial=%s, %d warnings experiment=%s", len(frame),
                    result.best_trial_id, len(warnings), self.experiment_dir)
        return result

    def _summary_warnings(self) -> list[str]:
        dispatcher = self._dispatcher
        if dispatcher is None or not dispatcher.rejected:
            return list(self.warnings.lines)
        refused = (f"{dispatcher.rejected} messages to the experiment's dispatcher were refused (not from a trial of "
                   f"this experiment, or malformed); the first: {dispatcher.problems[0]}")
        return [*self.warnings.lines, refused]


def warm_up_outputs() -> None:
    """Import matplotlib and the Parquet writer, and render one tiny figure."""
    import io

    import matplotlib
    import pyarrow.parquet  # noqa: F401

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.add_subplot(1, 1, 1).scatter([0], [0])
    figure.savefig(io.BytesIO(), format="png")


def check_metric(metric, direction) -> None:
    problems = []
    if not isinstance(metric, str) or not metric:
        problems.append(f"The 'metric' parameter must be a non-empty str. Got {metric!r} instead.")
    if direction not in ("max", "min"):
        problems.append(f"The 'direction' parameter must be 'max' or 'min'. Got {direction!r} instead.")
    if problems:
        raise ConfigError("experiment", problems)


def prepare_dir(experiment_dir: str) -> str:
    filesystem_for(experiment_dir).makedirs(experiment_dir)
    return experiment_dir

