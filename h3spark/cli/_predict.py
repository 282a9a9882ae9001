"""``h3spark predict [CONFIG] [--model M --input PATH --output URI ...]``: batch inference on Spark.

The flags set keys of the ``predict:`` section (after ``--set``, so they win); without CONFIG they
make the whole config, e.g.
``h3spark predict --model checkpoints/digits --pipeline datasets/digits --input new.csv --output datasets/scored``.
"""

from __future__ import annotations

import sys

from h3spark.cli._common import print_summary
from h3spark.errors import UsageError

_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "predict", parents=[common.config], help="apply a trained model and its pipeline to a dataset on Spark",
        description="Predict with a trained model (any engine, or scikit-learn) on Spark and write the predictions "
                    "as a dataset (published atomically) or into a database table. Example: h3spark predict "
                    "--model checkpoints/digits --pipeline datasets/digits --input new.csv --output datasets/scored")
    parser.add_argument("config", nargs="?", metavar="CONFIG", help="a YAML config with a predict: section")
    parser.add_argument("--model", help="a model file, a training run's checkpoints or an experiment's folder")
    parser.add_argument("--pipeline", metavar="DATASET", help="the dataset whose fitted pipeline the rows go through")
    parser.add_argument("--no-pipeline", action="store_true", help="the input already holds the feature vectors")
    parser.add_argument("--engine", choices=["numpy", "mxnet", "torch"], help="run a neural model in this engine")
    parser.add_argument("--input", metavar="PATH", help="the rows to predict (csv, json or parquet files or dataset)")
    parser.add_argument("--input-format", choices=["csv", "json", "parquet"], help="default: from the extension")
    parser.add_argument("--output", metavar="URI", help="the predictions dataset")
    parser.add_argument("--overwrite", action="store_true", help="publish a new version of an existing dataset")
    parser.add_argument("--keep", action="append", default=[], metavar="COLUMN", help="copy an input column (repeatable)")
    parser.set_defaults(func=_predict)


def _predict(args) -> int:
    from h3spark.serve import predict
    from h3spark.spark import stop_spark
    from h3spark.workflow import RunContext

    ctx = RunContext.create(load_predict_config(args), args.workdir)
    try:
        result = predict(ctx.config, workdir=str(ctx.workdir), progress=_show_progress)
    finally:
        stop_spark()
    print_summary(f"h3spark predict {ctx.config.name}: done", ctx.summary + result.summary())
    return 0


def load_predict_config(args):
    """The config file (or a bare one) with ``--set`` and then the flags applied (raises ConfigError)."""
    from h3spark.config import H3SparkConfig, apply_overrides, load_config, validate
    from h3spark.train import validation_context

    overrides = [*args.overrides, *flag_overrides(args)]
    if args.config is not None:
        return load_config(args.config, overrides=overrides, context=validation_context())
    if not args.model or not args.output or not args.input:
        raise UsageError("h3spark predict needs a CONFIG, or --model, --input and --output "
                         "(e.g. h3spark predict --model checkpoints/digits --input new.csv --output datasets/scored)")
    data: dict = {"name": "predict"}
    overridden = apply_overrides(data, overrides, "the command line", H3SparkConfig)
    return validate(data, H3SparkConfig, "the command line", overridden=overridden, context=validation_context())


def flag_overrides(args) -> list[str]:
    """The flags as ``predict.KEY=VALUE`` overrides (values quoted as YAML strings)."""
    values = [("model", args.model), ("pipeline", args.pipeline), ("engine", args.engine)]
    if args.input:
        values += [("input.format", args.input_format or input_format(args.input)), ("input.path", args.input)]
    if args.output:
        values.append(("output.uri", args.output))
    overrides = [f"predict.{key}={_yaml(value)}" for key, value in values if value is not None]
    if args.output:
        overrides.append("predict.output.jdbc=null")  # --output replaces a table the config names
    if args.no_pipeline:
        overrides.append("predict.use_pipeline=false")
    if args.overwrite:
        overrides.append("predict.output.overwrite=true")
    if args.keep:
        overrides.append(f"predict.keep=[{', '.join(_yaml(column) for column in args.keep)}]")
    return overrides


def input_format(path: str) -> str:
    """csv, json or parquet from a path's extension; a folder (a dataset) is Parquet."""
    import os

    extension = os.path.splitext(path.rstrip("/"))[1].lower()
    if extension in _FORMATS:
        return _FORMATS[extension]
    if extension == "":
        return "parquet"
    raise UsageError(f"cannot tell the format of --input {path} from its extension {extension!r}; add --input-format "
                     "csv, json or parquet.")


def _yaml(value: str) -> str:
    import json

    return json.dumps(str(value))  # a JSON string is a YAML string: no value is read as a number or a list


def _show_progress(done: int, total: int) -> None:
    print(f"h3spark predict: {done} of {total} tasks done", file=sys.stderr, flush=True)
