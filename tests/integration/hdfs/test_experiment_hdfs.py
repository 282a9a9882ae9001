"""An experiment dir on real HDFS: logdirs mirrored with the storage layer, results, resume, TensorBoard."""

import os
import uuid

from h3spark import tune
from h3spark.storage import filesystem_for, join_uri


def _fn(params, ctx):
    ctx.report({"accuracy": params["x"] / 2}, step=0)
    return {"accuracy": float(params["x"])}


def test_experiment_dir_on_hdfs(spark, hdfs_service):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    where = join_uri(hdfs_service.uri, f"/tmp/h3spark-tests/experiment-{uuid.uuid4().hex[:8]}")
    result = tune.grid_search(_fn, {"x": [1, 2]}, spark=spark, experiment_dir=where)
    assert result.best_params == {"x": 2} and result.best_logdir.startswith("hdfs://")
    fs = filesystem_for(where)
    names = fs.listdir(where)
    for expected in ("results.parquet", "results.json", "best.json", "metric_vs_params.png", "trials.jsonl", "trials"):
        assert expected in names
    assert len(fs.listdir(join_uri(where, "trials"))) == 2
    again = tune.grid_search(_fn, {"x": [1, 2, 3]}, spark=spark, experiment_dir=where)
    started = [line for line in fs.read_bytes(join_uri(where, "trials.jsonl")).decode().splitlines() if '"started"' in line]
    assert len(started) == 3 and again.best_params == {"x": 3}

    from h3spark.tune._tensorboard import local_logdir

    local = local_logdir(where)
    trial = os.path.join(local, "trials", tune.trial_dirname(1, {"x": 2}))
    events = EventAccumulator(trial).Reload()
    assert [event.value for event in events.Scalars("accuracy")] == [1.0, 2.0]
    start = metadata.parse_session_start_info_plugin_data(events.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content)
    assert start.hparams["x"].number_value == 2
    fs.delete(where)
