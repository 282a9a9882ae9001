"""Feeding throughput: h3spark's DataIterator against a raw pyarrow read and Petastorm.

    .venv/bin/python benchmarks/feed.py [--quick] [--rows N] [--no-hdfs]

Writes ROWS x 784 float32 features plus an int64 label twice (list<float32> snappy, as
Spark writes it, and uncompressed fixed_size_binary(3136)), then reads each at batch 256:
a raw pyarrow read converted to numpy and sliced into batches (the practical limit), the
iterator unshuffled and shuffled (also with 2 read threads), Petastorm's make_batch_reader if
it imports, and the
iterator from hdfs:// when the local HDFS runs. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from h3spark.errors import StorageError
from h3spark.feed import DataIterator
from h3spark.storage import describe_splits, filesystem_for, join_uri, publishing, write_manifest

WIDTH, BATCH, FILES, ROW_GROUP = 784, 256, 8, 8192


def make_table(ids: np.ndarray, encoding: str, rng: np.random.Generator) -> pa.Table:
    values = rng.random((len(ids), WIDTH), dtype=np.float32)
    if encoding == "binary":
        features = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * WIDTH), len(ids), [None, pa.py_buffer(values.tobytes())])
    else:
        offsets = pa.array(np.arange(0, values.size + 1, WIDTH, dtype=np.int32))
        features = pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)))
    return pa.table({"features": features, "label": pa.array((ids % 10).astype(np.int64))})


def write_dataset(uri: str, rows: int, encoding: str) -> None:
    fs, rng = filesystem_for(uri), np.random.default_rng(0)
    compression = "none" if encoding == "binary" else "snappy"
    with publishing(uri, overwrite=True, fs=fs) as tmp_uri:
        for part, ids in enumerate(np.array_split(np.arange(rows), FILES)):
            sink = io.BytesIO()
            pq.write_table(make_table(ids, encoding, rng), sink, row_group_size=ROW_GROUP, compression=compression)
            fs.write_bytes(join_uri(tmp_uri, f"part-{part}.parquet"), sink.getvalue())
        write_manifest(tmp_uri, {"rows": rows, "features": "features", "label": "label", "splits": describe_splits(tmp_uri, fs),
                                 "columns": {"features": {"dtype": "float32", "shape": [WIDTH], "encoding": encoding},
                                             "label": {"dtype": "int64", "shape": []}}}, fs)


def raw_pyarrow(uri: str, encoding: str) -> int:
    """The practical limit: read each row group, view it as numpy, slice batches."""
    fs, seen = filesystem_for(uri), 0
    for name in sorted(n for n in fs.listdir(uri) if n.endswith(".parquet")):
        with fs.open_input(join_uri(uri, name)) as handle:
            parquet = pq.ParquetFile(handle)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                features = table.column("features").combine_chunks()
                if encoding == "binary":
                    X = np.frombuffer(features.buffers()[1], dtype="<f4").reshape(-1, WIDTH)
                else:
                    X = features.values.to_numpy().reshape(-1, WIDTH)
                y = table.column("label").to_numpy()
                for start in range(0, len(X), BATCH):
                    seen += len(X[start:start + BATCH]) + 0 * len(y[start:start + BATCH])
    return seen


def iterate(uri: str, **options) -> int:
    return sum(len(features) for features, _ in DataIterator(uri, batch_size=BATCH, **options))


def petastorm_rate(uri: str):
    """Petastorm's make_batch_reader when it imports; (None, why) otherwise. Never installed here."""
    try:
        from petastorm import make_batch_reader
    except Exception as error:  # ImportError, or petastorm's own failure under pyarrow >= 20
        return None, f"petastorm does not import: {type(error).__name__}: {error}"
    start, seen = time.perf_counter(), 0
    with make_batch_reader(uri, num_epochs=1) as reader:
        for batch in reader:
            seen += len(batch.label)
    return seen / (time.perf_counter() - start), None


def timed(function, *args, **options) -> float:
    start = time.perf_counter()
    rows = function(*args, **options)
    return rows / (time.perf_counter() - start)


def hdfs_base(skip: bool) -> str | None:
    if skip:
        return None
    try:
        from h3spark import services

        endpoint = services.status().get("hdfs")
    except Exception:  # the services package is optional for a benchmark
        return None
    return None if endpoint is None else join_uri(endpoint.uri, f"/tmp/h3spark-bench-feed-{uuid.uuid4().hex[:8]}")


def measure(uri: str, encoding: str, rows: int, hdfs: str | None) -> dict:
    figures = {"pyarrow": timed(raw_pyarrow, uri, encoding), "iterator": timed(iterate, uri),
               "iterator_shuffled": timed(iterate, uri, shuffle=True, seed=1),
               # row groups read and decoded by 2 threads (the default is half the cores: 1 on 2 cores, 4 on 8+)
               "iterator_shuffled_2_threads": timed(iterate, uri, shuffle=True, seed=1, read_threads=2)}
    figures["petastorm"], figures["petastorm_error"] = petastorm_rate(uri)
    figures["hdfs_iterator"] = None
    if hdfs:
        try:
            remote = join_uri(hdfs, encoding)
            write_dataset(remote, rows, encoding)
            figures["hdfs_pyarrow"] = timed(raw_pyarrow, remote, encoding)
            figures["hdfs_iterator"] = timed(iterate, remote)
        except StorageError as error:  # HDFS went away mid-run: report local figures, say why
            figures["hdfs_error"] = str(error)
    return figures


def ratio(numerator, denominator):
    return None if numerator is None or not denominator else round(numerator / denominator, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k rows instead of 200k")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--no-hdfs", action="store_true")
    args = parser.parse_args(argv)
    rows = args.rows or (50_000 if args.quick else 200_000)
    root, hdfs = tempfile.mkdtemp(prefix="h3spark-bench-feed-"), hdfs_base(args.no_hdfs)
    results = {}
    try:
        for encoding in ("binary", "list"):
            uri = f"file://{root}/{encoding}"
            write_dataset(uri, rows, encoding)
            results[encoding] = measure(uri, encoding, rows, hdfs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if hdfs:
            try:
                filesystem_for(hdfs).delete(hdfs)
            except StorageError as error:
                print(f"could not remove {hdfs}: {error}", file=sys.stderr)
    return report(results, rows)


def report(results: dict, rows: int) -> int:
    print(f"{rows} rows x {WIDTH} float32 + int64 label, batch {BATCH}, {FILES} files, row groups of {ROW_GROUP}; samples/s")
    print(f"{'encoding':10} {'pyarrow':>10} {'iterator':>10} {'shuffled':>10} {'shuf 2thr':>10} {'petastorm':>10} {'hdfs iter':>10}")
    for encoding, f in results.items():
        cells = [f[key] for key in ("pyarrow", "iterator", "iterator_shuffled", "iterator_shuffled_2_threads", "petastorm",
                                    "hdfs_iterator")]
        print(f"{encoding:10} " + " ".join(f"{value:>10,.0f}" if value else f"{'n/a':>10}" for value in cells))
    if results["binary"]["petastorm_error"]:
        print(f"petastorm: {results['binary']['petastorm_error']}")
    summary = {"rows": rows, "width": WIDTH, "batch_size": BATCH, "headline_encoding": "binary"}
    for encoding, f in results.items():
        suffix = "" if encoding == "binary" else "_list"
        summary[f"ratio_vs_pyarrow{suffix}"] = ratio(f["iterator"], f["pyarrow"])
        summary[f"ratio_vs_pyarrow_shuffled{suffix}"] = ratio(f["iterator_shuffled"], f["pyarrow"])
        summary[f"ratio_vs_pyarrow_shuffled_2_threads{suffix}"] = ratio(f["iterator_shuffled_2_threads"], f["pyarrow"])
        summary[f"ratio_vs_petastorm{suffix}"] = ratio(f["iterator"], f["petastorm"])
        summary[f"ratio_hdfs_vs_local{suffix}"] = ratio(f["hdfs_iterator"], f["iterator"])
        summary[f"samples_per_s{suffix}"] = {k: round(v) for k, v in f.items() if isinstance(v, float)}
    summary["petastorm_error"] = results["binary"]["petastorm_error"]
    summary["hdfs_error"] = results["binary"].get("hdfs_error") or results["list"].get("hdfs_error")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
