"""Read paths over the product's tables: pinned snapshots, pruned by partition and offset."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.manifest import ManifestContent
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.snapshots import Snapshot

from lakehouse.catalog import open_catalog
from lakehouse.errors import SnapshotNotFoundError
from lakehouse.offsets import snapshot_offsets
from lakehouse.settings import LakehouseSettings
from lakehouse.storage import filesystem_for_paths
from lakehouse.tables import ensure_table

T = TypeVar("T")

# The streamed read paths read files in groups of at most GROUP_BYTES of Parquet and GROUP_ROWS rows,
# with a little of Arrow's read-ahead (its defaults, 4 files and 16 batches, hold ~0.5 GB of decoded
# rows ahead of a slow consumer for no more speed).
GROUP_BYTES = 64 << 20
GROUP_ROWS = 500_000
READAHEAD_FILES = 2
READAHEAD_BATCHES = 4


def read_table(
    settings: LakehouseSettings,
    name: str,
    columns: Sequence[str] | None = None,
    row_filter: BooleanExpression | None = None,
    snapshot_id: int | None = None,
    catalog: Catalog | None = None,
) -> pa.Table:
    """Read ``name`` (optionally some columns, a filter, as of a snapshot) into Arrow."""
    table = ensure_table(catalog or open_catalog(settings), settings, name)
    require_snapshot(table, snapshot_id)
    scan = table.scan(
        row_filter=row_filter if row_filter is not None else AlwaysTrue(),
        selected_fields=tuple(columns) if columns else ("*",),
        snapshot_id=snapshot_id,
    )
    return scan.to_arrow()


def scan_files(
    table: Table,
    prune: BooleanExpression,
    rows: pc.Expression | None = None,
    columns: Sequence[str] | None = None,
    snapshot_id: int | None = None,
) -> tuple[pa.Table, int]:
    """Fast read: Iceberg plans the files (partition and column-statistics pruning), Arrow reads them.

    ``prune`` is the Iceberg filter used for planning, ``rows`` the same condition as an Arrow
    expression applied while reading. Falls back to pyiceberg's reader when a file carries
    delete files (the product's tables never do). Returns the rows and the number of files read.
    """
    tasks = plan_files(table, prune, snapshot_id)
    if any(t.delete_files for t in tasks):
        scan = table.scan(
            row_filter=prune, snapshot_id=snapshot_id, selected_fields=tuple(columns) if columns else ("*",)
        )
        return scan.to_arrow(), len(tasks)
    schema = arrow_schema(table, snapshot_id)
    if not tasks:
        empty = schema.empty_table()
        return (empty.select(list(columns)) if columns else empty), 0
    paths = [t.file.file_path for t in tasks]
    fs, stripped = _filesystem_for(table, paths)
    dataset = ds.dataset(stripped, format="parquet", filesystem=fs, schema=schema)
    return dataset.to_table(columns=list(columns) if columns else None, filter=rows, use_threads=True), len(tasks)


def read_data_files(table: Table, paths: Sequence[str]) -> pa.Table:
    """Every row of the given data files of ``table``, in its current schema (files in the order given)."""
    schema = arrow_schema(table, None)
    if not paths:
        return schema.empty_table()
    fs, stripped = _filesystem_for(table, list(paths))
    return ds.dataset(stripped, format="parquet", filesystem=fs, schema=schema).to_table(use_threads=True)


def iter_files(
    table: Table,
    prune: BooleanExpression,
    rows: pc.Expression | None = None,
    columns: Sequence[str] | None = None,
    snapshot_id: int | None = None,
    batch_rows: int = 8_192,
) -> Iterator[pa.RecordBatch]:
    """Like ``scan_files`` but streamed, files in path order (see ``_stream`` for memory)."""
    tasks = plan_files(table, prune, snapshot_id)
    if any(t.delete_files for t in tasks):
        table_rows, _ = scan_files(table, prune, rows, columns, snapshot_id)
        yield from table_rows.to_batches(max_chunksize=batch_rows)
        return
    yield from _stream(table, tasks, snapshot_id, rows, columns, batch_rows)


def iter_appended(
    table: Table,
    prune: BooleanExpression,
    rows: pc.Expression | None,
    columns: Sequence[str] | None,
    since_snapshot: int,
    to_snapshot: int,
    batch_rows: int = 8_192,
) -> Iterator[pa.RecordBatch]:
    """Rows appended after ``since_snapshot`` up to ``to_snapshot``, streamed file by file.

    While every snapshot between the two is retained, this is Iceberg's incremental append scan
    (replace snapshots, compaction, add no rows and are not read). Once some have been expired,
    rows come from ``appended_since_positions``: the files committed after ``since_snapshot`` (by
    sequence number), less the rows whose Kafka position it had already recorded.

    Raises:
        SnapshotNotFoundError: if ``since_snapshot`` is neither an ancestor of ``to_snapshot`` nor
            a retained snapshot recording positions (of a table whose rows carry them).
    """
    if since_snapshot in _ancestors(table, to_snapshot):
        scan = table.incremental_append_scan(
            from_snapshot_id_exclusive=since_snapshot, to_snapshot_id_inclusive=to_snapshot, row_filter=prune
        )
        yield from _stream(table, list(scan.plan_files()), to_snapshot, rows, columns, batch_rows)
        return
    yield from appended_since_positions(table, prune, rows, columns, since_snapshot, to_snapshot, batch_rows)


def appended_since_positions(
    table: Table,
    prune: BooleanExpression,
    rows: pc.Expression | None,
    columns: Sequence[str] | None,
    since_snapshot: int,
    to_snapshot: int,
    batch_rows: int = 8_192,
) -> Iterator[pa.RecordBatch]:
    """Rows added after ``since_snapshot`` up to ``to_snapshot`` with the snapshots between expired.

    Every row of the events table carries its Kafka position, and every row of a typed table its
    source event's; each snapshot's summary records, per topic-partition, the next position landed
    (ingest) or refined (refine), and rows are only ever added beyond it. So a row at
    ``to_snapshot`` was added after ``since_snapshot`` exactly when its position is at or beyond
    what ``since_snapshot`` recorded (across groups, the furthest: a second group's copy of a record
    the first had landed is not new). Only files with a data sequence number above
    ``since_snapshot``'s are read: appended later, or rewritten later by compaction (whose older
    rows the positions leave out).

    Raises:
        SnapshotNotFoundError: if ``since_snapshot`` is not retained, records no positions, or the
            table's rows carry none.
    """
    name = ".".join(table.name())
    since = table.metadata.snapshot_by_id(since_snapshot)
    target = table.metadata.snapshot_by_id(to_snapshot)
    keys = position_columns(table)
    frontier = _frontier(table, since) if since is not None else None
    if since is None or target is None or keys is None or frontier is None or table.format_version < 2:
        raise SnapshotNotFoundError(name, f"{since_snapshot} as an ancestor of {to_snapshot} (expired)")
    later = _files_after(table, target, since.sequence_number or 0)
    tasks = [t for t in plan_files(table, prune, to_snapshot) if t.file.file_path in later]
    read = None if columns is None else list(dict.fromkeys([*columns, *keys]))
    named = pa.array([f"{t}\x1f{p}" for t, p in frontier], pa.large_string())
    nexts = pa.array(list(frontier.values()), pa.int64())
    for batch in _stream(table, tasks, to_snapshot, rows, read, batch_rows):
        fresh = batch.filter(_beyond(batch, keys, named, nexts))
        if columns is not None:
            fresh = fresh.select(list(columns))
        if fresh.num_rows:
            yield fresh


def position_columns(table: Table) -> tuple[str, str, str] | None:
    """The (topic, partition, offset) columns of a table whose rows carry a Kafka position, if any."""
    names = set(table.schema().column_names)
    for keys in (("topic", "partition", "offset"), ("source_topic", "source_partition", "source_offset")):
        if set(keys) <= names:
            return keys
    return None


def _frontier(table: Table, snapshot: Snapshot) -> dict[tuple[str, int], int] | None:
    """Per topic-partition, the furthest next position any group recorded as of ``snapshot``."""
    held = snapshot_offsets(table, snapshot)
    if not held:
        return None
    out: dict[tuple[str, int], int] = {}
    for parts in held.values():
        for tp, n in parts.items():
            out[tp] = max(out.get(tp, 0), n)
    return out


def _files_after(table: Table, snapshot: Snapshot, sequence_number: int) -> set[str]:
    """Data files live in ``snapshot`` with a data sequence number above ``sequence_number``.

    A manifest holds no entry newer than itself, so older manifests are not opened.
    """
    out: set[str] = set()
    for manifest in snapshot.manifests(table.io):
        if manifest.content != ManifestContent.DATA or manifest.sequence_number <= sequence_number:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if (entry.sequence_number or 0) > sequence_number:
                out.add(entry.data_file.file_path)
    return out


def _beyond(batch: pa.RecordBatch, keys: tuple[str, str, str], frontier: pa.Array, nexts: pa.Array) -> pa.Array:
    """True where a row's position is at or beyond the frontier (``frontier[i]`` names
    ``topic<US>partition``, ``nexts[i]`` its next position; a partition it does not name is new)."""
    topic, partition, offset = (batch.column(k) for k in keys)
    named = pc.binary_join_element_wise(
        topic.cast(pa.large_string()), partition.cast(pa.large_string()), pa.scalar("\x1f", pa.large_string())
    )
    limit = pc.fill_null(pc.take(nexts, pc.index_in(named, value_set=frontier)), 0)
    return pc.greater_equal(offset, limit)


def _stream(
    table: Table,
    tasks: list[FileScanTask],
    snapshot_id: int | None,
    rows: pc.Expression | None,
    columns: Sequence[str] | None,
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    """The files of ``tasks`` in path order, read a group at a time.

    Small files are read together (in parallel), so a table of many small files does not pay a
    file-open round trip per batch. A group is bounded by rows as well as bytes: Arrow's scanner
    decodes a group ahead of a slow consumer (its back-pressure starts at hundreds of MB), so the
    group's size is what bounds memory, whatever the number of rows in the table.
    """
    if not tasks:
        return
    tasks = sorted(tasks, key=lambda t: t.file.file_path)
    schema = arrow_schema(table, snapshot_id)
    fs, stripped = _filesystem_for(table, [t.file.file_path for t in tasks])
    groups: list[list[str]] = [[]]
    size = count = 0
    for task, path in zip(tasks, stripped, strict=True):
        if groups[-1] and (
            size + task.file.file_size_in_bytes > GROUP_BYTES or count + task.file.record_count > GROUP_ROWS
        ):
            groups.append([])
            size = count = 0
        groups[-1].append(path)
        size += task.file.file_size_in_bytes
        count += task.file.record_count
    for group in groups:
        dataset = ds.dataset(group, format="parquet", filesystem=fs, schema=schema)
        for batch in dataset.to_batches(
            columns=list(columns) if columns else None,
            filter=rows,
            batch_size=batch_rows,
            batch_readahead=READAHEAD_BATCHES,
            fragment_readahead=READAHEAD_FILES,
        ):
            if batch.num_rows:
                yield batch


def _ancestors(table: Table, snapshot_id: int) -> set[int]:
    out: set[int] = set()
    snap = table.metadata.snapshot_by_id(snapshot_id)
    while snap is not None and snap.snapshot_id not in out:
        out.add(snap.snapshot_id)
        snap = table.metadata.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
    return out


def partition_values(task: FileScanTask) -> tuple[object, ...]:
    """The partition values of a planned file, in the partition spec's field order."""
    record = task.file.partition
    return tuple(record[i] for i in range(len(record)))


def require_snapshot(table: Table, snapshot_id: int | None) -> None:
    """Check ``snapshot_id`` (None: the current one) is in the table's history: pyiceberg plans no
    files for a snapshot it does not know, so an expired snapshot would read as an empty table.

    Raises:
        SnapshotNotFoundError: if it is not (or no longer) there.
    """
    if snapshot_id is not None and table.metadata.snapshot_by_id(snapshot_id) is None:
        table.refresh()  # committed since this table object was loaded?
        if table.metadata.snapshot_by_id(snapshot_id) is None:
            raise SnapshotNotFoundError(".".join(table.name()), str(snapshot_id))


def plan_files(table: Table, prune: BooleanExpression, snapshot_id: int | None) -> list[FileScanTask]:
    """The files Iceberg plans for ``prune`` at ``snapshot_id``, in path order.

    Raises:
        SnapshotNotFoundError: if the snapshot is not (or no longer) in the table's history.
    """
    require_snapshot(table, snapshot_id)
    tasks = table.scan(row_filter=prune, snapshot_id=snapshot_id).plan_files()
    return sorted(tasks, key=lambda t: t.file.file_path)


def _filesystem_for(table: Table, paths: list[str]) -> tuple[pafs.FileSystem, list[str]]:
    return filesystem_for_paths(paths, table.io.properties)


def arrow_schema(table: Table, snapshot_id: int | None) -> pa.Schema:
    snap = table.metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    schemas = {s.schema_id: s for s in table.metadata.schemas}
    schema = schemas.get(snap.schema_id) if snap is not None and snap.schema_id is not None else None
    return (schema or table.schema()).as_arrow()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced on a worker thread up to ``depth`` ahead of the consumer.

    Arrow's readers, compute kernels and writers release the GIL, so reading and masking one batch
    overlaps with encoding the one before (two cores, two stages). An exception in the producer is
    raised in the consumer; a consumer that stops early stops the producer.
    """
    box: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            box.put(("error", exc))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # drain so a blocked put sees the stop
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
