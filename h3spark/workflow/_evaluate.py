"""The ``evaluate`` stage of ``h3spark run``: the trained model scored on the dataset's test split.

It runs when a neural model is trained (``training.engine`` mxnet or torch) on a dataset whose
``preprocess:`` split step makes a ``test`` split, which neither training nor the experiment trains or
selects on. The scoring is a batch prediction (:func:`h3spark.serve.predict`) of that split's feature
vectors, in the numpy engine (any engine's saved model runs there, and the tasks import neither MXNet
nor torch); the scored rows are published beside the dataset as ``DATASET_evaluation``.
"""

from __future__ import annotations

from h3spark.config import H3SparkConfig, PredictConfig, PredictOutputConfig, SourceConfig
from h3spark.storage import resolve_published
from h3spark.workflow._context import RunContext

EVALUATED_SPLIT = "test"


def evaluation_wanted(config: H3SparkConfig) -> bool:
    """A neural training section and a preprocess split step that makes a test split."""
    if config.training is None or config.training.engine == "sklearn" or config.preprocess is None:
        return False
    return any(step.kind == "split" and EVALUATED_SPLIT in step.fractions for step in config.preprocess.steps)


def evaluation_config(config: H3SparkConfig, dataset_uri: str) -> H3SparkConfig:
    """``config`` with a ``predict:`` section that scores the test split of ``dataset_uri`` (one published version)."""
    split_folder = f"{resolve_published(dataset_uri)}/{_split_column(config)}={EVALUATED_SPLIT}"
    section = PredictConfig(engine="numpy", use_pipeline=False, input=SourceConfig(format="parquet", path=split_folder),
                            output=PredictOutputConfig(uri=f"{dataset_uri}_evaluation", overwrite=True),
                            features=config.preprocess.features, label=config.preprocess.label)
    return config.model_copy(update={"predict": section})


def _split_column(config: H3SparkConfig) -> str:
    return next(step.column for step in config.preprocess.steps if step.kind == "split")


def evaluate_stage(ctx: RunContext) -> None:
    """Score the trained model on the test split; the accuracy and where the scored rows went join the summary."""
    from h3spark.serve import predict

    uri = ctx.outputs["dataset_uri"]
    result = predict(evaluation_config(ctx.config, uri), workdir=str(ctx.workdir), spark=ctx.spark)
    ctx.outputs["evaluation"] = result
    accuracy = "no labels" if result.accuracy is None else f"{result.accuracy:.4f} on {result.labelled} rows"
    ctx.report("test accuracy", f"{accuracy} of the {EVALUATED_SPLIT} split ({result.model})")
    ctx.report("evaluation", result.output)
