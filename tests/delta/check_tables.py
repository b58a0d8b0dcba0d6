#!/usr/bin/env python3
"""Reads every Delta table of a lake with readers we did not write, and prints what each saw.

Three independent readings of each table (a directory holding a `_delta_log`):
- `deltalake`: the Python `deltalake` package (delta-rs's Python binding), loading the
  table at its latest version: version, files, rows per partition, application
  transaction versions, and per window the sums of the integer value columns of a view;
- `log`: this script's own replay of `_delta_log` (the checkpoint named by
  `_last_checkpoint`, if any, then every JSON commit after it in version order: `add`
  and `remove` by path, the latest `txn` per appId), the files it names read with pyarrow;
- `duckdb`: DuckDB's `read_parquet` over exactly the files of the log's snapshot, hive
  partitions from their paths.
The caller (tests/tests/delta_readers.rs) compares the three with each other and with
what it produced and what the REST API serves.

usage: check_tables.py ROOT [--as-of TABLE=VERSION ...] [--checkpoint-copy TABLE]
  ROOT             a directory searched for Delta tables (the lake; views below it);
  --as-of          also read TABLE (relative to ROOT) at VERSION with `deltalake`
                   (time travel) and with the log replay stopped at VERSION;
  --checkpoint-copy  copy TABLE, write a checkpoint of the copy with `deltalake`, and
                   replay the copy's log through the checkpoint.
Prints one JSON object on stdout; exits non-zero with the reader's error otherwise.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

LOG = "_delta_log"
# Columns of a view that are not summed per window.
NOT_VALUES = {"window_start", "window_end", "state", "date", "hour"}


def find_tables(root):
    """Directories below root holding a `_delta_log`, and directories holding Parquet
    files outside every table (written, never committed to a table)."""
    tables, loose = [], []
    for here, dirs, files in os.walk(root):
        if LOG in dirs:
            tables.append(os.path.relpath(here, root))
            dirs[:] = []  # a table's partitions are not tables
            continue
        if any(f.endswith(".parquet") for f in files):
            loose.append(os.path.relpath(here, root))
        dirs.sort()
    return sorted(tables), sorted(loose)


def partition_key(date, hour):
    return f"{date}/{int(hour)}"


def window_sums(table):
    """Per window start (ms since the epoch): the sum of every integer value column."""
    if "window_start" not in table.column_names:
        return None
    columns = [
        f.name
        for f in table.schema
        if f.name not in NOT_VALUES and pa.types.is_integer(f.type)
    ]
    ms = pc.cast(table["window_start"], pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    grouped = (
        pa.table({"w": ms, **{c: pc.cast(table[c], pa.int64()) for c in columns}})
        .group_by("w")
        .aggregate([(c, "sum") for c in columns])
    )
    out = {}
    for row in grouped.to_pylist():
        out[str(row["w"])] = {c: row[f"{c}_sum"] for c in columns}
    return out


def kafka_offsets(table):
    """Per Kafka partition: the largest offset the rows hold (lake tables)."""
    if "kafka_partition" not in table.column_names or "kafka_offset" not in table.column_names:
        return None
    grouped = table.group_by("kafka_partition").aggregate([("kafka_offset", "max")])
    return {str(r["kafka_partition"]): r["kafka_offset_max"] for r in grouped.to_pylist()}


def rows_by_type(table):
    """Rows per event type (tables with an `event_type` column), else None."""
    if "event_type" not in table.column_names:
        return None
    grouped = table.group_by("event_type").aggregate([([], "count_all")])
    return {str(r["event_type"]): r["count_all"] for r in grouped.to_pylist()}


def rows_by_partition(table):
    grouped = table.group_by(["date", "hour"]).aggregate([([], "count_all")])
    return {partition_key(r["date"], r["hour"]): r["count_all"] for r in grouped.to_pylist()}


def read_with_deltalake(path, version=None):
    dt = DeltaTable(path, version=version)
    data = dt.to_pyarrow_table()
    add = pa.table(dt.get_add_actions(flatten=True))
    txns = {}
    for app in replay_log(path, version)["txns"]:
        txns[app] = dt.transaction_version(app)
    return {
        "version": dt.version(),
        "partition_columns": dt.metadata().partition_columns,
        "files": sorted(add["path"].to_pylist()),
        "rows": data.num_rows,
        "partitions": rows_by_partition(data),
        "types": rows_by_type(data),
        "txns": txns,
        "offsets": kafka_offsets(data),
        "windows": window_sums(data),
    }


def checkpoint_actions(path, version):
    """The actions of the checkpoint of `version` (one file, or every part)."""
    log = os.path.join(path, LOG)
    prefix = f"{version:020d}.checkpoint"
    parts = sorted(f for f in os.listdir(log) if f.startswith(prefix) and f.endswith(".parquet"))
    if not parts:
        raise SystemExit(f"{path}: _last_checkpoint names version {version}, no checkpoint file")
    for part in parts:
        for row in pq.read_table(os.path.join(log, part)).to_pylist():
            action = {k: v for k, v in row.items() if v is not None}
            add = action.get("add")
            if add is not None:
                # Parquet maps read as lists of (key, value) pairs.
                for field in ("partitionValues", "tags"):
                    if isinstance(add.get(field), list):
                        add[field] = dict(add[field])
            yield action


def replay_log(path, upto=None):
    """The snapshot of the table at `upto` (default: the latest version) by replaying its
    log: files (path -> add action), application transactions, version, checkpoint used."""
    log = os.path.join(path, LOG)
    files, txns, metadata = {}, {}, None
    start, checkpoint = 0, None
    last = os.path.join(log, "_last_checkpoint")
    if os.path.exists(last):
        with open(last) as f:
            checkpoint = json.load(f)["version"]
        if upto is None or checkpoint <= upto:
            for action in checkpoint_actions(path, checkpoint):
                if "add" in action:
                    files[action["add"]["path"]] = action["add"]
                elif "txn" in action:
                    txns[action["txn"]["appId"]] = action["txn"]["version"]
                elif "metaData" in action:
                    metadata = action["metaData"]
            start = checkpoint + 1
        else:
            checkpoint = None
    commits = sorted(
        int(f.split(".")[0])
        for f in os.listdir(log)
        if f.endswith(".json") and f.split(".")[0].isdigit()
    )
    version = start - 1
    for v in commits:
        if v < start or (upto is not None and v > upto):
            continue
        if v != version + 1:
            raise SystemExit(f"{path}: the log jumps from version {version} to {v}")
        with open(os.path.join(log, f"{v:020d}.json")) as f:
            for line in f:
                if not line.strip():
                    continue
                action = json.loads(line)
                if "add" in action:
                    files[action["add"]["path"]] = action["add"]
                elif "remove" in action:
                    files.pop(action["remove"]["path"], None)
                elif "txn" in action:
                    txns[action["txn"]["appId"]] = action["txn"]["version"]
                elif "metaData" in action:
                    metadata = action["metaData"]
        version = v
    return {
        "version": version,
        "files": files,
        "txns": txns,
        "checkpoint": checkpoint,
        "partition_columns": (metadata or {}).get("partitionColumns"),
    }


def read_with_log(path, version=None):
    snapshot = replay_log(path, version)
    tables, stats_rows, by_type, mismatches = [], 0, {}, []
    for rel, add in sorted(snapshot["files"].items()):
        data = pq.read_table(os.path.join(path, rel))
        values = add["partitionValues"]
        if "event_type" in values:
            # The partition value is the type; the file's own column must say the same.
            kind = values["event_type"]
            by_type[kind] = by_type.get(kind, 0) + data.num_rows
            held = set(pc.unique(data["event_type"].cast(pa.string())).to_pylist())
            if held - {kind}:
                mismatches.append({"file": rel, "partition": kind, "rows": sorted(held)})
        tables.append(
            data.append_column("date", pa.array([values["date"]] * data.num_rows, pa.string()))
            .append_column("hour", pa.array([int(values["hour"])] * data.num_rows, pa.int32()))
        )
        stats = add.get("stats")
        stats_rows += json.loads(stats)["numRecords"] if stats else 0
    data = pa.concat_tables(tables, promote_options="permissive") if tables else None
    return {
        "version": snapshot["version"],
        "checkpoint": snapshot["checkpoint"],
        "partition_columns": snapshot["partition_columns"],
        "files": sorted(snapshot["files"]),
        "rows": data.num_rows if data is not None else 0,
        "rows_in_stats": stats_rows,
        "partitions": rows_by_partition(data) if data is not None else {},
        "types": (by_type or rows_by_type(data)) if data is not None else None,
        "type_mismatches": mismatches,
        "txns": snapshot["txns"],
        "offsets": kafka_offsets(data) if data is not None else None,
        "windows": window_sums(data) if data is not None else None,
    }


def read_with_duckdb(path):
    files = [os.path.join(path, f) for f in sorted(replay_log(path)["files"])]
    if not files:
        return {"rows": 0, "partitions": {}}
    con = duckdb.connect()
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    source = f"read_parquet({listed}, hive_partitioning = true)"
    rows = con.execute(
        f"SELECT CAST(date AS VARCHAR), CAST(hour AS INTEGER), count(*) FROM {source} GROUP BY ALL"
    ).fetchall()
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    types = None
    if "event_type" in columns:
        types = dict(
            con.execute(f"SELECT event_type, count(*) FROM {source} GROUP BY ALL").fetchall()
        )
    return {
        "rows": sum(n for _, _, n in rows),
        "partitions": {partition_key(d, h): n for d, h, n in rows},
        "types": types,
    }


def checkpoint_copy(root, table):
    """The log replay of a copy of `table` after `deltalake` wrote a checkpoint of it."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "table")
        shutil.copytree(os.path.join(root, table), copy)
        DeltaTable(copy).create_checkpoint()
        result = read_with_log(copy)
        result.pop("windows", None)
        return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--as-of", action="append", default=[])
    parser.add_argument("--checkpoint-copy", action="append", default=[])
    args = parser.parse_args()
    tables, loose = find_tables(args.root)
    out = {"tables": {}, "loose_parquet_dirs": loose, "as_of": {}, "checkpoint_copy": {}}
    for rel in tables:
        path = os.path.join(args.root, rel)
        out["tables"][rel] = {
            "deltalake": read_with_deltalake(path),
            "log": read_with_log(path),
            "duckdb": read_with_duckdb(path),
        }
    for spec in args.as_of:
        rel, version = spec.rsplit("=", 1)
        path = os.path.join(args.root, rel)
        out["as_of"][spec] = {
            "deltalake": read_with_deltalake(path, int(version)),
            "log": read_with_log(path, int(version)),
        }
    for rel in args.checkpoint_copy:
        out["checkpoint_copy"][rel] = checkpoint_copy(args.root, rel)
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
