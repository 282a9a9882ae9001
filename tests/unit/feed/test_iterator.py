"""DataIterator over tiny pyarrow-written datasets: coverage, determinism, encodings, errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from h3spark.errors import ConfigError, DataError, DatasetNotFoundError
from h3spark.feed import DataIterator
from h3spark.storage import local_path, resolve_published


def labels_of(iterator, epoch=None):
    batches = list(iterator if epoch is None else iterator.iter_epoch(epoch))
    for features, labels in batches:
        np.testing.assert_array_equal(features[:, 0], labels)  # features and labels stay aligned
    return [int(v) for _, labels in batches for v in labels], [len(f) for f, _ in batches]


@pytest.mark.parametrize("rows,files,row_groups,num_workers", [
    (50, 1, 1, 3), (50, 2, 3, 4), (7, 1, 1, 8), (101, 5, 2, 3), (64, 4, 4, 2), (13, 3, 1, 5)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_cover_every_row_with_equal_batch_counts(dataset, rows, files, row_groups, num_workers, shuffle):
    uri = dataset(rows=rows, files=files, row_groups=row_groups)
    seen, lengths = [], set()
    for rank in range(num_workers):
        data = DataIterator(uri, batch_size=4, rank=rank, num_workers=num_workers, shuffle=shuffle, seed=5,
                            shuffle_buffer=8)
        labels, sizes = labels_of(data)
        assert len(sizes) == len(data)
        lengths.add(len(sizes))
        seen += labels
    counts = np.bincount(seen, minlength=rows)
    padding = -(-rows // num_workers) * num_workers - rows
    assert len(lengths) == 1
    assert counts.min() == 1 and counts.sum() == rows + padding


def test_drop_remainder_reads_each_row_at_most_once(dataset):
    uri = dataset(rows=10, files=1, row_groups=2)
    seen = []
    for rank in range(3):
        data = DataIterator(uri, batch_size=2, rank=rank, num_workers=3, remainder="drop", drop_last=True)
        assert len(data) == 1
        seen += labels_of(data)[0]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 6


@pytest.mark.parametrize("encoding", ["list", "binary"])
def test_unshuffled_order_and_values(dataset, encoding):
    uri = dataset(rows=23, files=2, row_groups=2, width=3, encoding=encoding)
    data = DataIterator(uri, batch_size=5, prefetch=0)
    batches = list(data)
    assert [len(f) for f, _ in batches] == [5, 5, 5, 5, 3]
    features = np.concatenate([f for f, _ in batches])
    assert features.dtype == np.float32 and features.shape == (23, 3)
    np.testing.assert_array_equal(features[:, 2], np.arange(23) + 1.0)
    assert batches[0].labels.dtype == np.int64


def test_drop_last_and_epochs(dataset):
    uri = dataset(rows=23, files=1, row_groups=1)
    data = DataIterator(uri, batch_size=5, drop_last=True, epochs=3)
    assert data.batches_per_epoch == 4 and len(data) == 12
    assert len(list(data)) == 12


def test_shuffle_is_deterministic_and_differs_per_epoch(dataset):
    uri = dataset(rows=200, files=4, row_groups=5)
    make = lambda seed: DataIterator(uri, batch_size=16, shuffle=True, seed=seed, shuffle_buffer=40, rank=1, num_workers=2)
    first, _ = labels_of(make(1), epoch=0)
    assert first == labels_of(make(1), epoch=0)[0]
    assert first != labels_of(make(1), epoch=1)[0]
    assert first != labels_of(make(2), epoch=0)[0]
    assert first != sorted(first)


def test_order_does_not_depend_on_prefetch(dataset):
    uri = dataset(rows=120, files=3, row_groups=4)
    orders = [labels_of(DataIterator(uri, batch_size=7, shuffle=True, seed=3, shuffle_buffer=30, prefetch=depth))[0]
              for depth in (0, 1, 8)]
    assert orders[0] == orders[1] == orders[2]


def test_cache_gives_the_same_batches(dataset):
    uri = dataset(rows=60, files=2, row_groups=3)
    data = DataIterator(uri, batch_size=8, shuffle=True, epochs=2, cache=True)
    plain = DataIterator(uri, batch_size=8, shuffle=True, epochs=2)
    assert labels_of(data)[0] == labels_of(plain)[0]
    assert len(data._cache) == 6


def test_splits_default_to_train_and_fall_back_to_all(dataset):
    split_uri = dataset(splits={"train": 30, "test": 10}, rows=40)
    assert DataIterator(split_uri, batch_size=100).dataset_.split == "train"
    assert labels_of(DataIterator(split_uri, "test", batch_size=100))[0] == list(range(10))
    assert DataIterator(dataset(rows=5), batch_size=2).dataset_.split == "all"
    with pytest.raises(DataError, match=r"no split 'valid'; it has \['test', 'train'\]"):
        DataIterator(split_uri, "valid")


def test_columns_inferred_when_manifest_lacks_them(dataset):
    data = DataIterator(dataset(rows=9, width=6, columns=False), batch_size=4, expect={"features": (6,)})
    assert data.feature_shape == (6,) and [len(f) for f, _ in data] == [4, 4, 1]


def test_binary_without_columns_says_what_to_add(dataset):
    with pytest.raises(DataError, match="columns.features"):
        DataIterator(dataset(rows=9, encoding="binary", columns=False))


def test_expect_mismatch_names_column_and_both_shapes(dataset):
    with pytest.raises(DataError, match=r"column 'features' has shape \(4,\) per row, but the model expects \(784,\)"):
        DataIterator(dataset(rows=9), expect={"features": (784,)})
    with pytest.raises(DataError, match="expects a column 'pixels'"):
        DataIterator(dataset(rows=9), expect={"pixels": 4})


def test_missing_dataset(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no dataset at"):
        DataIterator(f"file://{tmp_path}/nothing")


def test_shard_index_out_of_range(dataset):
    uri = dataset(rows=9)
    with pytest.raises(ConfigError, match=r"'rank' parameter of DataIterator must be an int in the range \[0, 3\].*Got 4"):
        DataIterator(uri, rank=4, num_workers=4)
    with pytest.raises(ConfigError, match="Got -1 instead"):
        DataIterator(uri, rank=-1, num_workers=4)


def test_bad_parameters_are_listed_together(dataset):
    with pytest.raises(ConfigError) as error:
        DataIterator(dataset(rows=9), batch_size=0, epochs=-1, remainder="wrap")
    assert len(error.value.problems) == 3 and "Got 0 instead" in str(error.value)


def test_too_few_rows(dataset):
    uri = dataset(rows=3, files=1, row_groups=1)
    with pytest.raises(DataError, match="remainder='pad'"):
        DataIterator(uri, num_workers=4, remainder="drop")
    with pytest.raises(DataError, match="Lower batch_size"):
        DataIterator(uri, batch_size=8, drop_last=True)


def test_stale_manifest_and_wrong_schema(dataset):
    uri = dataset(rows=20, files=1, row_groups=2)
    path = local_path(resolve_published(uri)) + "/_manifest.json"
    manifest = json.load(open(path))
    manifest["splits"]["all"]["files"][0]["rows"] = 25
    json.dump(manifest, open(path, "w"))
    with pytest.raises(DataError, match="stale"):
        DataIterator(uri)
    manifest["splits"]["all"]["files"][0]["rows"] = 20
    manifest["columns"]["features"]["encoding"] = "binary"
    json.dump(manifest, open(path, "w"))
    with pytest.raises(DataError, match=r"column 'features' is list<.*float> .* needs fixed_size_binary\(16\)"):
        DataIterator(uri)
    manifest["splits"]["all"]["files"] = [{"path": 3}]
    json.dump(manifest, open(path, "w"))
    with pytest.raises(DataError, match=r"files\[0\] must be"):
        DataIterator(uri)


def test_breaking_early_stops_the_prefetch_thread(dataset):
    import threading

    data = DataIterator(dataset(rows=200, files=2, row_groups=10), batch_size=2, prefetch=2)
    iterator = iter(data)
    next(iterator)
    iterator.close()
    assert not any(thread.name == "h3spark-feed" for thread in threading.enumerate())


@pytest.mark.parametrize("shuffle", [False, True])
def test_order_does_not_depend_on_read_threads(dataset, shuffle):
    uri = dataset(rows=300, files=3, row_groups=5)
    runs = [DataIterator(uri, batch_size=7, epochs=2, shuffle=shuffle, seed=5, shuffle_buffer=40, rank=1, num_workers=2,
                         read_threads=threads) for threads in (1, 2, 4)]
    batches = [[(features.copy(), labels.copy()) for features, labels in run] for run in runs]
    for other in batches[1:]:
        assert len(other) == len(batches[0])
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(batches[0], other))


def test_breaking_early_stops_the_read_threads(dataset):
    import threading

    data = DataIterator(dataset(rows=400, files=4, row_groups=10), batch_size=2, prefetch=2, read_threads=3)
    iterator = iter(data)
    next(iterator)
    iterator.close()
    assert not any(thread.name.startswith(("h3spark-read", "h3spark-feed")) for thread in threading.enumerate())


def test_a_read_thread_error_reaches_the_consumer(dataset):
    uri = dataset(rows=200, files=2, row_groups=4)
    data = DataIterator(uri, batch_size=10, read_threads=2, prefetch=0)
    path = sorted(Path(local_path(resolve_published(uri))).glob("part-*.parquet"))[1]
    raw = path.read_bytes()
    path.write_bytes(raw[:4] + b"\xff" * (len(raw) // 2) + raw[4 + len(raw) // 2:])  # its pages are garbage
    with pytest.raises(DataError, match=r"part-00001.parquet row group 0: cannot be read .* publish the dataset again"):
        list(data)


def test_read_threads_must_be_positive_and_default_to_a_share_of_the_cores(dataset, monkeypatch):
    from h3spark.feed._iterator import default_read_threads

    with pytest.raises(ConfigError, match=r"'read_threads' parameter of DataIterator must be an int in the range \[1, inf\)"):
        DataIterator(dataset(rows=9), read_threads=0)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_read_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four training processes share the 16 cores
    assert default_read_threads() == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert default_read_threads() == 1
