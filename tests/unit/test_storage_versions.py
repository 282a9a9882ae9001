"""The versioned dataset layout: what overwrite may replace, what readers see while a publish
runs, and what a writer that loses a race gets. Concurrency is interleaved step by step (a
file system that runs a reader after each change; a publish run inside another's block),
never timed."""

import json
import logging
import os
import socket

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.errors import DatasetExistsError, DatasetNotFoundError
from h3spark.feed import DataIterator
from h3spark.storage import (
    LocalFileSystem,
    describe_splits,
    filesystem_for,
    is_published,
    join_uri,
    publishing,
    read_manifest,
    resolve_published,
    write_manifest,
)

WRITER = f"{socket.gethostname()}:{os.getpid()}"


def publish(uri, payload, overwrite=False, fs=None):
    """Publish ``payload`` as part-0 and a manifest tagged with it."""
    fs = fs or filesystem_for(uri)
    with publishing(uri, overwrite=overwrite, fs=fs) as tmp:
        fs.write_bytes(join_uri(tmp, "part-0"), payload)
        write_manifest(tmp, {"tag": payload.decode()}, fs)


def read(uri):
    """What a reader sees: resolve once, then the manifest and a file of that one version."""
    fs = LocalFileSystem()
    folder = resolve_published(uri, fs)
    return fs.read_bytes(join_uri(folder, "part-0")).decode(), read_manifest(folder, fs)["tag"]


def entries(folder):
    return sorted(os.listdir(folder))


def versions(tmp_path, name="ds"):
    return entries(tmp_path / name / "_versions")


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_that_is_not_an_h3spark_dataset_is_refused_and_left_untouched(tmp_path, overwrite):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "important.txt").write_text("x")
    with pytest.raises(DatasetExistsError, match=r"d exists but is not an h3spark dataset .* left untouched"):
        publish(f"file://{folder}", b"new", overwrite=overwrite)
    assert entries(tmp_path) == ["d"] and entries(folder) == ["important.txt"]
    assert (folder / "important.txt").read_text() == "x"


@pytest.mark.parametrize("make", ["file", "empty folder", "stray _versions", "_SUCCESS and no versions"])
def test_overwrite_replaces_nothing_but_a_versioned_h3spark_dataset(tmp_path, make):
    target = tmp_path / "d"
    if make == "file":
        target.write_text("x")
    else:
        target.mkdir()
    if make == "stray _versions":
        (target / "_versions" / "00000001").mkdir(parents=True)  # no _SUCCESS: never published
    if make == "_SUCCESS and no versions":
        (target / "part-0").write_text("old")
        (target / "_SUCCESS").write_text("")
    before = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    with pytest.raises(DatasetExistsError, match="left untouched"):
        publish(f"file://{target}", b"new", overwrite=True)
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == before


def test_a_dataset_published_before_versions_is_read_as_it_is(tmp_path):
    legacy = tmp_path / "old"
    legacy.mkdir()
    (legacy / "part-0").write_text("v0")
    (legacy / "_SUCCESS").write_text("")
    (legacy / "_manifest.json").write_text(json.dumps({"tag": "v0"}))
    uri = f"file://{legacy}"
    assert resolve_published(uri) == uri and read(uri) == ("v0", "v0")
    with pytest.raises(DatasetExistsError, match="older h3spark.*cannot be replaced atomically.*Delete it yourself"):
        publish(uri, b"v1", overwrite=True)
    assert read(uri) == ("v0", "v0") and entries(tmp_path) == ["old"]


def test_a_version_folder_resolves_to_itself_and_the_root_needs_a_complete_version(tmp_path):
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    folder = resolve_published(uri)
    assert folder == f"{uri}/_versions/00000001" and resolve_published(folder) == folder
    os.remove(tmp_path / "ds" / "_versions" / "00000001" / "_SUCCESS")
    assert not is_published(uri)
    with pytest.raises(DatasetNotFoundError, match="incomplete: it holds no published version"):
        resolve_published(uri)


def test_readers_see_the_old_or_the_new_dataset_after_every_step_of_an_overwrite(tmp_path, run_after_each_change):
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    seen, fs = [], LocalFileSystem()
    steps = run_after_each_change(fs, lambda: seen.append(read(uri)))
    publish(uri, b"v2", overwrite=True, fs=fs)
    assert {"rename", "delete"} <= set(steps) and len(seen) == len(steps)
    assert set(seen) == {("v1", "v1"), ("v2", "v2")}  # never nothing, never a mix of the two
    assert seen.index(("v2", "v2")) == steps.index("rename") and seen[-1] == ("v2", "v2")
    assert [name for name in entries(tmp_path) if name.startswith(".")] == []


def test_a_reader_keeps_its_version_until_the_second_publish_after_it(tmp_path):
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    pinned = resolve_published(uri)
    publish(uri, b"v2", overwrite=True)
    assert read(pinned) == ("v1", "v1") and read(uri) == ("v2", "v2")
    assert versions(tmp_path) == ["00000001", "00000002"]
    publish(uri, b"v3", overwrite=True)
    assert versions(tmp_path) == ["00000002", "00000003"] and not is_published(pinned)


def test_a_writer_that_loses_an_overwrite_race_gets_an_error_naming_the_winner_and_leaves_nothing(tmp_path):
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    fs = filesystem_for(uri)
    with pytest.raises(DatasetExistsError) as lost:
        with publishing(uri, overwrite=True) as slow:
            fs.write_bytes(join_uri(slow, "part-0"), b"slow")
            publish(uri, b"fast", overwrite=True)  # another writer starts and finishes meanwhile
    message = str(lost.value)
    assert f"another writer published {uri}/_versions/00000002 (by {WRITER} at " in message
    assert "nothing of it is left" in message
    assert read(uri) == ("fast", "fast") and versions(tmp_path) == ["00000001", "00000002"]
    assert entries(tmp_path) == ["ds"]  # no staging folder, no hidden copy


def test_a_writer_that_loses_the_first_publish_gets_an_error_naming_the_winner_and_leaves_nothing(tmp_path):
    uri = f"file://{tmp_path}/ds"
    fs = filesystem_for(uri)
    with pytest.raises(DatasetExistsError, match=f"another writer published {uri}/_versions/00000001 \\(by "):
        with publishing(uri) as slow:
            fs.write_bytes(join_uri(slow, "part-0"), b"slow")
            publish(uri, b"fast")
    assert read(uri) == ("fast", "fast") and entries(tmp_path) == ["ds"]


def test_a_race_lost_inside_the_rename_itself_is_refused_atomically(tmp_path, monkeypatch, run_before_first_rename):
    """The other's rename lands after our last check and just before ours, and the file
    system's own existence check misses it: the rename itself must refuse the non-empty target."""
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    target = str(tmp_path / "ds" / "_versions" / "00000002")
    real = os.path.lexists

    def other_writer():
        publish(uri, b"fast", overwrite=True)
        monkeypatch.setattr(os.path, "lexists", lambda path: False if path == target else real(path))

    fs = run_before_first_rename(LocalFileSystem(), other_writer)
    with pytest.raises(DatasetExistsError, match=f"another writer published {uri}/_versions/00000002 \\(by "):
        publish(uri, b"slow", overwrite=True, fs=fs)
    monkeypatch.undo()
    assert read(uri) == ("fast", "fast") and entries(tmp_path) == ["ds"]


def test_a_slow_overwrite_whose_version_number_was_freed_by_newer_publishes_is_refused(tmp_path):
    """Versions 2, 3 and 4 land while a writer that began at version 1 writes version 2;
    publishing 4 deleted version 2, so a rename to it would succeed and never be read."""
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    fs = filesystem_for(uri)
    with pytest.raises(DatasetExistsError) as lost:
        with publishing(uri, overwrite=True) as slow:
            fs.write_bytes(join_uri(slow, "part-0"), b"slow")
            for payload in (b"v2", b"v3", b"v4"):
                publish(uri, payload, overwrite=True)
    assert f"another writer published {uri}/_versions/00000004 (by {WRITER} at " in str(lost.value)
    assert read(uri) == ("v4", "v4") and versions(tmp_path) == ["00000003", "00000004"]
    assert entries(tmp_path) == ["ds"]


def test_newer_publishes_that_land_just_before_the_rename_win_and_the_slow_version_is_removed(
        tmp_path, run_before_first_rename):
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    fs = run_before_first_rename(LocalFileSystem(), lambda: [publish(uri, p, overwrite=True) for p in (b"v2", b"v3", b"v4")])
    with pytest.raises(DatasetExistsError, match=f"another writer published {uri}/_versions/00000004 \\(by .*nothing of it"):
        publish(uri, b"slow", overwrite=True, fs=fs)
    assert read(uri) == ("v4", "v4") and versions(tmp_path) == ["00000003", "00000004"]
    assert entries(tmp_path) == ["ds"]


def test_a_winner_whose_marker_is_not_a_record_is_named_without_a_writer_and_the_reason_is_logged(tmp_path, caplog):
    uri = f"file://{tmp_path}/ds"
    fs = filesystem_for(uri)
    with caplog.at_level(logging.DEBUG, logger="h3spark.storage._layout"):
        with pytest.raises(DatasetExistsError, match=f"another writer published {uri}/_versions/00000001 while"):
            with publishing(uri) as slow:
                fs.write_bytes(join_uri(slow, "part-0"), b"slow")
                fs.write_bytes(f"{uri}/_versions/00000001/_SUCCESS", b"not json")  # a writer from elsewhere
    assert f"no publish record in {uri}/_versions/00000001: Expecting value: line 1" in caplog.text
    assert entries(tmp_path) == ["ds"]


def test_an_interrupted_overwrite_keeps_the_current_version_and_leaves_nothing(tmp_path):
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    with pytest.raises(KeyboardInterrupt):
        with publishing(uri, overwrite=True) as tmp:
            filesystem_for(tmp).write_bytes(join_uri(tmp, "part-0"), b"half")
            raise KeyboardInterrupt
    assert read(uri) == ("v1", "v1") and entries(tmp_path) == ["ds"] and versions(tmp_path) == ["00000001"]


def test_the_publish_record_says_who_published_which_version(tmp_path):
    uri = f"file://{tmp_path}/ds"
    publish(uri, b"v1")
    publish(uri, b"v2", overwrite=True)
    record = json.loads((tmp_path / "ds" / "_versions" / "00000002" / "_SUCCESS").read_text())
    assert record["uri"] == uri and record["version"] == 2 and record["writer"] == WRITER


def publish_rows(uri, files, overwrite=False):
    """A Parquet dataset the feeder reads: one part file per list of labels in ``files``."""
    with publishing(uri, overwrite=overwrite) as tmp:
        os.makedirs(tmp[len("file://"):])
        for part, labels in enumerate(files):
            table = pa.table({"features": pa.array(np.ones((len(labels), 2), "float32").tolist(), pa.list_(pa.float32())),
                              "label": pa.array(labels, pa.int64())})
            pq.write_table(table, f"{tmp[len('file://'):]}/part-{part:05d}.parquet", row_group_size=1)
        write_manifest(tmp, {"rows": sum(map(len, files)), "features": "features", "label": "label",
                             "splits": describe_splits(tmp)})


def test_a_feeder_reads_one_version_even_when_the_dataset_is_replaced_mid_epoch(tmp_path):
    uri = f"file://{tmp_path}/ds"
    publish_rows(uri, [[0, 1, 2], [3, 4, 5]])
    batches = iter(DataIterator(uri, batch_size=2, prefetch=0))
    first = next(batches)  # the second file is opened only after the replacement
    publish_rows(uri, [[10, 11], [12]], overwrite=True)
    assert [int(v) for _, y in [first, *batches] for v in y] == [0, 1, 2, 3, 4, 5]
    assert [int(v) for _, y in DataIterator(uri, batch_size=2) for v in y] == [10, 11, 12]
