"""A damaged Parquet file is named, with its row group and what to do, wherever the feeder
(and so every trainer) opens it: its footer, a sample for the column types, its row groups."""

from pathlib import Path

import pytest

from h3spark.errors import DataError
from h3spark.feed import DataIterator
from h3spark.storage import local_path, resolve_published

WHAT_TO_DO = r"The file is damaged or was replaced after publishing; publish the dataset again"


def _part(uri: str, index: int) -> Path:
    return sorted(Path(local_path(resolve_published(uri))).glob("part-*.parquet"))[index]


def _cut_footer(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-12])  # no footer length, no closing magic bytes


def _garble_pages(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[:4] + b"\xff" * (len(raw) // 2) + raw[4 + len(raw) // 2:])


@pytest.mark.parametrize("row_groups", [1, 3])
def test_a_damaged_footer_names_the_file(dataset, row_groups):
    uri = dataset(rows=60, files=2, row_groups=row_groups)
    _cut_footer(_part(uri, 0))
    footer = r"part-00000.parquet \(its footer\): cannot be read \(.*magic bytes.*\)\. "
    with pytest.raises(DataError, match=footer + WHAT_TO_DO):
        DataIterator(uri)


def test_a_damaged_footer_found_while_reading_names_the_file(dataset):
    uri = dataset(rows=60, files=2, row_groups=1)  # one-group files: footers are read when their rows are
    data = DataIterator(uri, batch_size=10, prefetch=0, read_threads=1)
    _cut_footer(_part(uri, 1))
    with pytest.raises(DataError, match=rf"part-00001.parquet \(its footer\): cannot be read .*{WHAT_TO_DO}"):
        list(data)


def test_damaged_pages_sampled_for_the_column_types_name_the_row_group(dataset):
    uri = dataset(rows=200, files=1, row_groups=2, columns=False)  # the manifest has no column specs: a sample is read
    _garble_pages(_part(uri, 0))
    with pytest.raises(DataError, match=rf"part-00000.parquet row group 0: cannot be read .*{WHAT_TO_DO}"):
        DataIterator(uri)


def test_training_reads_name_the_damaged_file(dataset):
    from h3spark.train.engines.sklearn import load_split

    uri = dataset(rows=200, files=2, row_groups=2)
    _garble_pages(_part(uri, 1))
    with pytest.raises(DataError, match=rf"part-00001.parquet row group 0: cannot be read .*{WHAT_TO_DO}"):
        load_split(uri, None)
