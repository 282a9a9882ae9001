"""An actor's intake: raw records through its own fitted preprocessing pipeline; bad rows to the quarantine.

    >>> intake = Intake.from_config(config.pipeline, workdir, quarantine_uri)
    >>> for table, tag in intake.push(records_table(envelope), tag="train"):
    ...     batcher.push(table, tag)            # features + label, as batch preprocessing writes them

The pipeline comes from a preprocessed dataset's manifest (``uri``), a fitted pipeline's JSON
(``file``), or ``steps`` fitted here on the first ``fit_rows`` records received (held back until
then, and then transformed like the rest). Rows the pipeline rejects go to the quarantine as in
batch preprocessing (the input row as JSON, the reason, the step), counted by reason and written
as JSON-lines part files under ``quarantine_uri`` (at each snapshot, at the end, and every
``QUARANTINE_FLUSH_ROWS`` rows).
"""

from __future__ import annotations

import collections
import copy
import json
import logging

import pyarrow as pa

from h3spark.config import ActorConfig
from h3spark.config._actors import ActorPipelineConfig
from h3spark.errors import DataError
from h3spark.preprocess import Pipeline, preprocessor_for
from h3spark.storage import filesystem_for, join_uri, resolve_uri

logger = logging.getLogger(__name__)

QUARANTINE_FLUSH_ROWS = 10_000


class Intake:
    """Raw tables in, (features table, tag) pairs out; the pipeline fitted (or fitting) and the quarantine."""

    def __init__(self, pipeline: Pipeline, fit_rows: int, quarantine_uri: str | None):
        self.pipeline = pipeline
        self.fit_rows = fit_rows
        self.quarantine_uri = quarantine_uri
        self.quarantined: collections.Counter[str] = collections.Counter()
        self.rows_in = 0
        self._held: list[tuple[pa.Table, object]] = []
        self._held_rows = 0
        self._unwritten: list[dict] = []
        self._unlabelled_pipeline: tuple[Pipeline, Pipeline] | None = None  # (of this pipeline, without its label)

    @classmethod
    def from_config(cls, section: ActorConfig, workdir: str, quarantine_uri: str | None,
                    fitted_json: str | None = None) -> "Intake | None":
        """The intake an actor's ``pipeline:`` describes (None without one); ``fitted_json`` (a snapshot's
        pipeline) wins over the config, so a restarted actor keeps the pipeline it fitted."""
        config = section.pipeline
        if config is None:
            return None
        pipeline = Pipeline.from_json(fitted_json) if fitted_json is not None else pipeline_of(config, workdir)
        return cls(pipeline, config.fit_rows, quarantine_uri)

    @property
    def fitted(self) -> bool:
        return self.pipeline.is_fitted

    @property
    def held_rows(self) -> int:
        return self._held_rows

    def push(self, table: pa.Table, tag) -> list[tuple[pa.Table, object]]:
        """Transform ``table`` (or hold it while the pipeline waits for ``fit_rows`` rows to fit on)."""
        self.rows_in += table.num_rows
        if self.fitted:
            return self._transform([(table, tag)])
        self._held.append((table, tag))
        self._held_rows += table.num_rows
        if self._held_rows < self.fit_rows:
            return []
        return self.fit_held()

    def fit_held(self) -> list[tuple[pa.Table, object]]:
        """Fit on the rows held back (fewer than ``fit_rows`` at the end of a stream) and transform them."""
        if not self._held:
            return []
        held, self._held, self._held_rows = self._held, [], 0
        table = pa.concat_tables([item for item, _ in held], promote_options="permissive")
        self.pipeline.fit(table)
        logger.info("fitted the actor's pipeline on %d rows", table.num_rows)
        return self._transform(held)

    def _transform(self, items: list[tuple[pa.Table, object]]) -> list[tuple[pa.Table, object]]:
        out = []
        for table, tag in items:
            unlabelled = tag == "predict" and self.pipeline.label not in table.column_names
            pipeline = self._unlabelled() if unlabelled else self.pipeline
            try:
                result = pipeline.transform(table)
            except DataError as error:  # the block as a whole does not fit: every row to the quarantine
                self._quarantine_all(table, f"the pipeline refused the whole message: {error}")
                continue
            self._quarantine(result.quarantine)
            if result.table.num_rows:
                out.append((result.table, tag))
        return out

    def _unlabelled(self) -> Pipeline:
        """The fitted pipeline for records to predict that have no label: no label required, and the
        steps that read only the label left out."""
        if self._unlabelled_pipeline is None or self._unlabelled_pipeline[0] is not self.pipeline:
            adapted = copy.deepcopy(self.pipeline)
            label, adapted.label = adapted.label, None
            adapted.steps = [step for step in adapted.steps if set(step.inputs()) - {label}]
            self._unlabelled_pipeline = (self.pipeline, adapted)
        return self._unlabelled_pipeline[1]

    def _quarantine(self, quarantine: pa.Table) -> None:
        if not quarantine.num_rows:
            return
        rows = quarantine.to_pylist()
        self.quarantined.update(row["reason"] for row in rows)
        self._unwritten.extend(rows)
        if len(self._unwritten) >= QUARANTINE_FLUSH_ROWS:
            self.flush()

    def _quarantine_all(self, table: pa.Table, reason: str) -> None:
        logger.warning("quarantined %d rows: %s", table.num_rows, reason)
        rows = [{"row": json.dumps(row, default=str, sort_keys=True), "reason": reason, "step": "pipeline"}
                for row in table.to_pylist()]
        self.quarantined[reason] += len(rows)
        self._unwritten.extend(rows)

    def take_quarantined(self) -> list[dict]:
        """The quarantined rows not yet written ({row, reason, step}), handed over to another writer."""
        rows, self._unwritten = self._unwritten, []
        return rows

    @property
    def quarantined_rows(self) -> int:
        return sum(self.quarantined.values())

    def flush(self) -> str | None:
        """Write the quarantined rows not yet written as one JSON-lines part file; its URI, or None."""
        if not self._unwritten or self.quarantine_uri is None:
            return None
        fs = filesystem_for(self.quarantine_uri)
        fs.makedirs(self.quarantine_uri)
        uri = join_uri(self.quarantine_uri, f"part-{self._next_part(fs):05d}.jsonl")
        fs.write_bytes(uri, "".join(json.dumps(row, sort_keys=True) + "\n" for row in self._unwritten).encode())
        self._unwritten = []
        return uri

    def _next_part(self, fs) -> int:
        """One more than the highest part already there (a restarted actor adds to its quarantine)."""
        numbers = [int(name[5:-6]) for name in fs.listdir(self.quarantine_uri)
                   if name.startswith("part-") and name.endswith(".jsonl") and name[5:-6].isdigit()]
        return max(numbers, default=0) + 1


def pipeline_of(config: ActorPipelineConfig, workdir: str) -> Pipeline:
    """The pipeline a ``pipeline:`` section names: loaded fitted (``uri``, ``file``), or unfitted ``steps``."""
    if config.uri is not None:
        return Pipeline.load(resolve_uri(config.uri, workdir))
    if config.file is not None:
        uri = resolve_uri(config.file, workdir)
        return Pipeline.from_json(filesystem_for(uri).read_bytes(uri).decode("utf-8"))
    steps = [preprocessor_for(step) for step in config.steps]
    return Pipeline(steps, features=config.features, label=config.label)
