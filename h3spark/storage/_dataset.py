"""Describe a Parquet dataset's files for its manifest, so readers never need to list.

Layout of one version's folder (see ``_layout``): part files at its root, or one
``split=NAME/`` directory per split (Hive-style, as Spark's ``partitionBy("split")``
writes). The manifest's ``splits`` maps each split (``all`` when there are none) to its
rows and files::

    "splits": {"train": {"rows": 800, "files": [{"path": "split=train/part-0.parquet",
                                                "rows": 800, "row_groups": 4}]}}
"""

from __future__ import annotations

from h3spark.storage._fs import FileSystem, filesystem_for
from h3spark.storage._uri import join_uri

ALL_ROWS = "all"


def describe_splits(uri: str, fs: FileSystem | None = None) -> dict[str, dict]:
    """Rows and files of every split under a version's folder (usually the one being published)."""
    fs = fs or filesystem_for(uri)
    splits: dict[str, dict] = {}
    root_files = _parquet_files(fs, uri, "")
    if root_files:
        splits[ALL_ROWS] = _summarise(root_files)
    for name in fs.listdir(uri):
        if name.startswith("split=") and fs.isdir(join_uri(uri, name)):
            splits[name[len("split="):]] = _summarise(_parquet_files(fs, uri, name))
    return splits


def _parquet_files(fs: FileSystem, uri: str, subdir: str) -> list[dict]:
    import pyarrow.parquet as pq

    folder = join_uri(uri, subdir) if subdir else uri
    described = []
    for name in fs.listdir(folder):
        if name.startswith((".", "_")) or not name.endswith(".parquet"):
            continue
        with fs.open_input(join_uri(folder, name)) as handle:
            metadata = pq.ParquetFile(handle).metadata
        path = f"{subdir}/{name}" if subdir else name
        described.append({"path": path, "rows": metadata.num_rows, "row_groups": metadata.num_row_groups})
    return described


def _summarise(files: list[dict]) -> dict:
    return {"rows": sum(item["rows"] for item in files), "files": files}
