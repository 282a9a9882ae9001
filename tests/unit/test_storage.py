"""URIs, the local file system layer, atomic publish and manifests (no JVM)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from h3spark.errors import DatasetExistsError, DatasetNotFoundError, StorageError
from h3spark.storage import (
    filesystem_for,
    is_published,
    join_uri,
    publishing,
    read_manifest,
    require_published,
    resolve_published,
    resolve_uri,
    split_name,
    webhdfs_url_for,
    write_manifest,
)


def test_resolve_uri_places_relative_paths_under_the_workdir(tmp_path):
    assert resolve_uri("datasets/d", tmp_path) == f"file://{tmp_path}/datasets/d"
    assert resolve_uri("/abs/../abs/x") == "file:///abs/x"
    assert resolve_uri("file:///a/b/") == "file:///a/b"
    assert resolve_uri("hdfs://127.0.0.1:8020/data//x") == "hdfs://127.0.0.1:8020/data/x"


def test_resolve_uri_rejects_unknown_schemes_and_hostless_hdfs():
    with pytest.raises(StorageError, match="unsupported scheme 's3'"):
        resolve_uri("s3://bucket/key")
    with pytest.raises(StorageError, match="no NameNode address"):
        resolve_uri("hdfs:///data")


def test_split_and_join():
    assert split_name("hdfs://h:1/a/b") == ("hdfs://h:1/a", "b")
    assert join_uri("file:///a", "b", "c") == "file:///a/b/c"
    with pytest.raises(StorageError, match="root"):
        split_name("file:///")


def test_webhdfs_url_defaults_to_namenode_host_and_honours_config(monkeypatch):
    monkeypatch.delenv("H3SPARK_WEBHDFS_URL", raising=False)
    assert webhdfs_url_for("hdfs://10.1.2.3:8020/x") == "http://10.1.2.3:9870"
    assert webhdfs_url_for("hdfs://h:8020/x", "http://nn:50070") == "http://nn:50070"
    monkeypatch.setenv("H3SPARK_WEBHDFS_URL", "http://env:1")
    assert webhdfs_url_for("hdfs://h:8020/x") == "http://env:1"


def test_local_file_system_round_trip_and_errors(tmp_path):
    fs = filesystem_for(f"file://{tmp_path}")
    target = f"file://{tmp_path}/a/b.bin"
    fs.write_bytes(target, b"xyz")
    assert fs.read_bytes(target) == b"xyz" and fs.size(target) == 3
    assert fs.listdir(f"file://{tmp_path}/a") == ["b.bin"]
    with fs.open_input(target) as handle:
        handle.seek(1)
        assert handle.read() == b"yz"
    with pytest.raises(StorageError, match="no such file"):
        fs.read_bytes(f"file://{tmp_path}/missing")
    with pytest.raises(StorageError):
        fs.rename(target, target)
    fs.delete(f"file://{tmp_path}/a")
    assert not fs.exists(target)


def publish_one(uri, payload=b"data", overwrite=False):
    fs = filesystem_for(uri)
    with publishing(uri, overwrite=overwrite) as tmp:
        fs.write_bytes(join_uri(tmp, "part-0"), payload)
    return fs


def hidden_leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".")]


def test_publish_makes_dataset_visible_only_when_complete(tmp_path):
    uri = f"file://{tmp_path}/ds"
    fs = publish_one(uri)
    assert is_published(uri)
    assert fs.listdir(uri) == ["_versions"] and fs.listdir(f"{uri}/_versions") == ["00000001"]
    assert require_published(uri) == resolve_published(uri) == f"{uri}/_versions/00000001"
    assert sorted(fs.listdir(resolve_published(uri))) == ["_SUCCESS", "part-0"]
    assert hidden_leftovers(tmp_path) == []


def test_failed_write_leaves_nothing_under_any_name(tmp_path):
    uri = f"file://{tmp_path}/ds"
    with pytest.raises(RuntimeError, match="boom"):
        with publishing(uri) as tmp:
            filesystem_for(tmp).write_bytes(join_uri(tmp, "part-0"), b"half")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_existing_dataset_is_kept_unless_overwrite(tmp_path):
    uri = f"file://{tmp_path}/ds"
    fs = publish_one(uri, b"v1")
    with pytest.raises(DatasetExistsError, match="overwrite: true"):
        publish_one(uri, b"v2")
    assert fs.read_bytes(join_uri(resolve_published(uri), "part-0")) == b"v1"
    publish_one(uri, b"v2", overwrite=True)
    assert fs.read_bytes(join_uri(resolve_published(uri), "part-0")) == b"v2"
    assert hidden_leftovers(tmp_path) == []


def test_failed_overwrite_keeps_the_old_dataset(tmp_path):
    uri = f"file://{tmp_path}/ds"
    fs = publish_one(uri, b"v1")
    with pytest.raises(ValueError):
        with publishing(uri, overwrite=True) as tmp:
            fs.write_bytes(join_uri(tmp, "part-0"), b"v2")
            raise ValueError("late failure")
    assert fs.read_bytes(join_uri(resolve_published(uri), "part-0")) == b"v1"
    assert hidden_leftovers(tmp_path) == [] and fs.listdir(f"{uri}/_versions") == ["00000001"]


def test_empty_write_is_not_published(tmp_path):
    uri = f"file://{tmp_path}/ds"
    with pytest.raises(StorageError, match="nothing was written"):
        with publishing(uri):
            pass
    assert not os.path.exists(tmp_path / "ds")


def test_killed_writer_leaves_only_a_hidden_temporary(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        from h3spark.storage import publishing, filesystem_for, join_uri
        with publishing("file://{tmp_path}/ds") as tmp:
            filesystem_for(tmp).write_bytes(join_uri(tmp, "part-0"), b"half")
            print("written", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL and "written" in done.stdout
    assert not os.path.exists(tmp_path / "ds")
    assert [name.startswith(".ds.h3spark-tmp-") for name in os.listdir(tmp_path)] == [True]
    with pytest.raises(DatasetNotFoundError, match="no dataset"):
        require_published(f"file://{tmp_path}/ds")


def test_incomplete_directory_is_not_a_dataset(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(DatasetNotFoundError, match="incomplete"):
        require_published(f"file://{tmp_path}/ds")


def test_manifest_round_trip_and_bad_manifest(tmp_path):
    uri = f"file://{tmp_path}/ds"
    with publishing(uri) as tmp:
        write_manifest(tmp, {"rows": 3, "splits": {"all": {"rows": 3, "files": []}}})
    manifest = read_manifest(uri)
    assert manifest["rows"] == 3 and manifest["format"] == "h3spark.dataset/1" and "created_at" in manifest
    (tmp_path / "ds" / "_versions" / "00000001" / "_manifest.json").write_text("{broken")
    with pytest.raises(StorageError, match="not valid JSON"):
        read_manifest(uri)
    (tmp_path / "ds" / "_versions" / "00000001" / "_manifest.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="has no _manifest.json"):
        read_manifest(uri)
    json.dumps(manifest)
