"""Labels are checked against the model's classes before training, from the Parquet footers."""

from __future__ import annotations

import pytest

from h3spark.cli import main
from h3spark.errors import DataError
from h3spark.train._labels import check_labels, check_training_labels, label_range

DIGITS = list(range(10)) * 2


@pytest.mark.parametrize("statistics", [True, False], ids=["footer statistics", "rows read without them"])
def test_label_range_of_a_split(labelled, statistics):
    uri = labelled({"train": [3, 1, 7, 2, 5], "test": [0, 9]}, statistics=statistics, row_group_rows=2)
    assert label_range(uri, "train") == (1, 7)
    assert label_range(uri, "test") == (0, 9)
    assert label_range(uri) == (1, 7)  # the feeder's default split: train


@pytest.mark.parametrize("statistics", [True, False], ids=["footer statistics", "rows read without them"])
@pytest.mark.parametrize("labels, nulls", [([1, 2, None, None], 2), ([1, 2, 0, None], 1)], ids=["all null", "some null"])
def test_null_labels_are_refused_naming_the_file_and_row_group(labelled, statistics, labels, nulls):
    import pyarrow as pa

    uri = labelled({"train": labels}, statistics=statistics, row_group_rows=2, label_type=pa.int64())
    with pytest.raises(DataError) as caught:
        check_labels(uri, 10, "training.params.classes")
    message = str(caught.value)
    assert message.startswith(f"{uri}/") and message.endswith(
        f"/split=train/part-00000.parquet row group 1: {nulls} of 2 labels (column 'label') are null; a null label is no "
        "class, so training on it is wrong. Drop those rows or fill in their labels, then publish the dataset again.")


def test_labels_beyond_the_classes_are_refused_with_the_range_and_the_setting(labelled):
    uri = labelled({"train": DIGITS})
    check_labels(uri, 10, "training.params.classes")
    with pytest.raises(DataError) as caught:
        check_labels(uri, 3, "training.params.classes")
    assert str(caught.value) == (f"the labels of split 'train' of {uri} run from 0 to 9, but training.params.classes is 3: the model has "
                                 "outputs for labels 0 .. 2 only. Set training.params.classes to 10 (or more), or relabel the data.")


def test_negative_labels_are_not_class_indices(labelled):
    uri = labelled({"train": [-1, 0, 1]})
    with pytest.raises(DataError, match=r"run from -1 to 1, but a classifier's labels are class indices .* -1 is not one"):
        check_labels(uri, 10, "training.params.classes", ["train"])


def test_a_training_run_checks_its_train_and_validation_splits(labelled):
    uri = labelled({"train": [0, 1, 2], "test": [0, 5]})
    settings = {"dataset_uri": uri, "params": {"classes": 3}, "train_split": None, "validation_split": None}
    check_training_labels(settings)
    with pytest.raises(DataError, match=r"split 'test' of .* run from 0 to 5, but training.params.classes is 3"):
        check_training_labels({**settings, "validation_split": "test"})
    with pytest.raises(DataError, match="training.params.classes is 10"):
        check_training_labels({**settings, "params": {}, "train_split": "train", "dataset_uri": labelled({"train": [10]}, name="big")})


@pytest.mark.parametrize("engine", ["mxnet", "torch"])
def test_h3spark_train_with_too_few_classes_exits_2_before_any_worker_starts(labelled, tmp_path, capsys, engine):
    uri = labelled({"train": DIGITS})
    config = tmp_path / "train.yaml"
    config.write_text(f"name: few\ndataset: {{uri: '{uri}'}}\ntraining: {{engine: {engine}, launcher: local, workers: 1}}\n")
    workdir = tmp_path / "work"
    assert main(["train", str(config), "--workdir", str(workdir), "--set", "training.params.classes=3"]) == 2
    err = capsys.readouterr().err
    assert "run from 0 to 9, but training.params.classes is 3" in err and "Traceback" not in err
    assert not (workdir / "checkpoints").exists() and not (workdir / "logs").exists()


def test_h3spark_train_on_a_dataset_without_labels_exits_2_before_any_worker_starts(tmp_path, capsys):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from h3spark.storage import describe_splits, publishing, write_manifest

    uri = f"file://{tmp_path}/unlabelled"
    with publishing(uri) as tmp_uri:
        folder = tmp_path / tmp_uri[len(f"file://{tmp_path}/"):]
        folder.mkdir(parents=True)
        values = np.ones((8, 4), np.float32)
        offsets = pa.array(np.arange(0, values.size + 1, 4, dtype=np.int32))
        pq.write_table(pa.table({"features": pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)))}),
                       folder / "part-00000.parquet")
        write_manifest(tmp_uri, {"rows": 8, "features": "features", "label": None, "splits": describe_splits(tmp_uri)})
    config = tmp_path / "train.yaml"
    config.write_text(f"name: nolabel\ndataset: {{uri: '{uri}'}}\ntraining: {{engine: torch, launcher: local, workers: 1}}\n")
    workdir = tmp_path / "work"
    assert main(["train", str(config), "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert "the dataset names no label column" in err and "Traceback" not in err
    assert not (workdir / "checkpoints").exists()
