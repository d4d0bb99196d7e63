"""Retention and compaction: expire snapshots, delete unreferenced files, rewrite small files.

Safety rules: a file is deleted only if no retained snapshot (nor the current metadata)
references it and it is older than ``orphan_min_age`` (so files an in-flight commit has just
written are never touched). Compaction is a commit asserting the snapshot it read; a
concurrent ingest commit makes it fail and it re-reads, so no ingest commit is ever lost.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Summary
from pyiceberg.table.update.snapshot import _OverwriteFiles
from pyiceberg.typedef import EMPTY_DICT

from lakehouse.history import remove_tags
from lakehouse.offsets import OFFSETS_KEY
from lakehouse.read import partition_values
from lakehouse.retry import retry_commit
from lakehouse.settings import LakehouseSettings
from lakehouse.storage import filesystem_for_location, storage_properties

PartitionKey = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class ExpireReport:
    """What ``expire_table`` did."""

    snapshots_expired: int
    files_deleted: int
    bytes_deleted: int
    files_kept: int


def live_files(table: Table) -> set[str]:
    """Every file a retained snapshot or the metadata log references (data, manifests, metadata)."""
    table.refresh()
    io = table.io
    live: set[str] = {table.metadata_location}
    live.update(entry.metadata_file for entry in table.metadata.metadata_log)
    for snap in table.metadata.snapshots:
        live.add(snap.manifest_list)
        for manifest in snap.manifests(io):
            live.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                live.add(entry.data_file.file_path)
    return live


def expire_old_snapshots(table: Table, settings: LakehouseSettings, now: datetime | None = None) -> int:
    """Expire snapshots past retention, or beyond ``max_snapshots`` untagged ones, oldest first;
    keeping the newest ``keep_last_snapshots`` and every tag.

    Tags that have outlived their ``max-ref-age-ms`` (Iceberg's own bound, measured from their
    snapshot's time) are removed first. Deletes no files (``delete_orphans`` does). Returns how
    many snapshots were expired.
    """
    now = now or datetime.now(UTC)
    remove_lapsed_tags(table, now)
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    if len(snapshots) <= settings.keep_last_snapshots:
        return 0
    cutoff_ms = int((now - timedelta(hours=settings.snapshot_retention_hours)).timestamp() * 1000)
    refs = table.metadata.refs.values()
    tagged = {ref.snapshot_id for ref in refs if ref.snapshot_ref_type == SnapshotRefType.TAG}
    protected = {ref.snapshot_id for ref in refs} | {s.snapshot_id for s in snapshots[-settings.keep_last_snapshots :]}
    untagged = [s for s in snapshots if s.snapshot_id not in tagged]
    over = len(untagged) - settings.max_snapshots if settings.max_snapshots else 0
    candidates = [
        s.snapshot_id
        for i, s in enumerate(untagged)
        if s.snapshot_id not in protected and (s.timestamp_ms < cutoff_ms or i < over)
    ]
    if candidates:
        table.maintenance.expire_snapshots().by_ids(candidates).commit()
    return len(candidates)


def remove_lapsed_tags(table: Table, now: datetime) -> list[str]:
    """Remove the tags whose snapshot is older than the tag's ``max-ref-age-ms``; return their names."""
    table.refresh()
    now_ms = int(now.timestamp() * 1000)
    lapsed = [
        name
        for name, ref in table.metadata.refs.items()
        if ref.snapshot_ref_type == SnapshotRefType.TAG
        and ref.max_ref_age_ms
        and (snap := table.metadata.snapshot_by_id(ref.snapshot_id)) is not None
        and now_ms - snap.timestamp_ms > ref.max_ref_age_ms
    ]
    if lapsed:
        remove_tags(table, lapsed)
    return lapsed


def delete_orphans(table: Table, settings: LakehouseSettings, min_age: timedelta) -> tuple[int, int, int]:
    """Delete files under the table location that nothing retained references. Returns counts."""
    live = {p.removeprefix("file://") if p.startswith("file://") else p for p in live_files(table)}
    fs, root, prefix = filesystem_for_location(table.location(), storage_properties(settings))
    cutoff = datetime.now(UTC) - min_age
    deleted = deleted_bytes = kept = 0
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
        if info.type != pafs.FileType.File:
            continue
        full = info.path if prefix == "file://" else f"{prefix}{info.path}"
        if full in live or info.path in live:
            kept += 1
            continue
        mtime = info.mtime
        if mtime is not None and mtime.replace(tzinfo=mtime.tzinfo or UTC) > cutoff:
            kept += 1  # maybe an in-flight commit's file: leave it for the next run
            continue
        fs.delete_file(info.path)
        deleted += 1
        deleted_bytes += info.size or 0
    return deleted, deleted_bytes, kept


def expire_table(table: Table, settings: LakehouseSettings, orphan_min_age: timedelta) -> ExpireReport:
    """Expire snapshots past retention (keeping the newest and every tag), then delete orphans."""
    expired = expire_old_snapshots(table, settings)
    deleted, nbytes, kept = delete_orphans(table, settings, orphan_min_age)
    return ExpireReport(expired, deleted, nbytes, kept)


@dataclass(frozen=True, slots=True)
class CompactReport:
    """What ``compact_table`` did, with the invariants it checked."""

    partitions_rewritten: int
    files_before: int
    files_after: int
    rows: int
    checksum: str


def content_checksum(rows: pa.Table) -> tuple[int, str]:
    """Row count and an order-independent checksum of (topic, partition, offset, value), or of every
    column for rows that are not events (a typed table's).

    Vectorised in DuckDB: the XOR of a 64-bit hash of each row's columns.
    """
    if rows.num_rows == 0:
        return 0, "0" * 16
    names = ["topic", "partition", "offset", "value"]
    if not set(names) <= set(rows.column_names):
        names = rows.column_names
    view = rows.select(names)  # noqa: F841 (read by DuckDB by name)
    terms = ", ".join(f'"{n}"' for n in names)
    import duckdb  # here, not at the top: the ingest worker imports this module and never needs DuckDB

    count, digest = duckdb.sql(f"SELECT count(*), bit_xor(hash({terms})) FROM view").fetchone()  # type: ignore[misc]
    return int(count), f"{int(digest):016x}"


def _read_files(table: Table, paths: list[str]) -> pa.Table:
    """The rows of ``paths``, each file cast to the table's Arrow schema (pyiceberg and DuckDB write
    strings as different Arrow types: ``large_string`` and ``string``)."""
    schema = table.schema().as_arrow()
    parts = []
    for path in paths:
        with table.io.new_input(path).open() as fh:
            part = pq.read_table(fh)
        parts.append(part.select(schema.names).cast(schema) if set(schema.names) <= set(part.column_names) else part)
    return pa.concat_tables(parts, promote_options="default") if parts else pa.table({})


class _ReplaceFiles(_OverwriteFiles):
    """A file swap that changes no row, committed as Iceberg's ``replace`` operation.

    pyiceberg 0.12 offers only append, overwrite and delete producers, and its summary code refuses
    ``replace``; the totals are the same as an overwrite's, so compute them so and relabel the
    snapshot. Readers (Spark's incremental reads, for one) then know no data changed.
    """

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        summary = super()._summary(snapshot_properties)
        return Summary(operation=Operation.REPLACE, **summary.additional_properties)


def _rewrite_group(
    table: Table, group: list[tuple[PartitionKey, list[Any]]], sort_by: tuple[str, ...]
) -> tuple[int, str]:
    """Replace the files of ``group``'s partitions with one sorted file each, in one commit."""
    old_files = [f for _, files in group for f in files]
    before = _read_files(table, [f.file_path for f in old_files])
    ordered = before.sort_by([(c, "ascending") for c in ("topic", *sort_by) if c in before.column_names])
    ordered = ordered.cast(table.schema().as_arrow()) if ordered.num_rows else ordered
    current = table.current_snapshot()
    props = {"mhhs.compaction": "true"}
    held = current.summary[OFFSETS_KEY] if current is not None and current.summary is not None else None
    if held:
        props[OFFSETS_KEY] = held  # carry the ingest positions forward unchanged
    with table.transaction() as tx:
        new_files = list(
            _dataframe_to_data_files(table_metadata=tx.table_metadata, df=ordered, io=table.io, write_uuid=uuid.uuid4())
        )
        after = _read_files(table, [f.file_path for f in new_files])
        if content_checksum(before) != content_checksum(after):  # pragma: no cover - invariant
            raise RuntimeError("compaction would change rows; nothing committed")
        with _ReplaceFiles(Operation.OVERWRITE, tx, table.io, snapshot_properties=props) as rewrite:
            for f in old_files:
                rewrite.delete_data_file(f)
            for f in new_files:
                rewrite.append_data_file(f)
    return content_checksum(after)


def compact_table(
    table: Table,
    min_files: int = 2,
    max_attempts: int = 20,
    sort_by: tuple[str, ...] | None = None,
    partitions_per_commit: int = 256,
) -> CompactReport:
    """Rewrite every partition holding ``min_files`` or more files into one sorted file per partition.

    Rows are sorted by ``sort_by``, by default the table's sort order (the events table: partition
    and offset; consumption: MPAN and period end, which refine leaves to compaction).

    Partitions are rewritten in groups, one commit per group that swaps exactly the files it read
    for the files it wrote, and asserts the snapshot it planned from; a concurrent ingest commit
    makes the group re-plan and retry, so no committed row is lost. Each group's row count and
    checksum are verified before it is committed.

    Raises:
        CommitConflictError: if a group still conflicts after ``max_attempts``.
    """
    table.refresh()
    name = ".".join(table.name())
    if sort_by is None:
        schema = table.schema()
        sort_by = tuple(schema.find_column_name(f.source_id) or "" for f in table.sort_order().fields)
    order = sort_by
    files_before = len(list(table.scan().plan_files()))
    rewritten = 0
    total_rows = 0
    checks: list[str] = []
    done: set[PartitionKey] = set()

    def attempt(_: int) -> tuple[list[PartitionKey], int, str] | None:
        """Plan afresh (after a conflict too) and rewrite the next group of partitions."""
        table.refresh()
        by_partition: dict[PartitionKey, list[Any]] = defaultdict(list)
        for task in table.scan().plan_files():
            by_partition[partition_values(task)].append(task.file)
        todo = sorted(
            ((k, v) for k, v in by_partition.items() if len(v) >= min_files and k not in done),
            key=lambda kv: str(kv[0]),
        )
        if not todo:
            return None
        group = todo[:partitions_per_commit]
        rows, digest = _rewrite_group(table, group, order)
        return [k for k, _ in group], rows, digest

    while (result := retry_commit(name, attempt, max_attempts)) is not None:
        keys, rows, digest = result
        done.update(keys)
        rewritten += len(keys)
        total_rows += rows
        checks.append(digest)
    table.refresh()
    return CompactReport(
        rewritten,
        files_before,
        len(list(table.scan().plan_files())),
        total_rows,
        hashlib.sha256("".join(checks).encode()).hexdigest()[:16],
    )


def whole_table_checksum(table: Table, snapshot_id: int | None = None) -> tuple[int, str]:
    """Row count and order-independent checksum of the whole table at a snapshot (see ``content_checksum``)."""
    names: tuple[str, ...] = ("topic", "partition", "offset", "value")
    if not set(names) <= set(table.schema().column_names):
        names = ("*",)  # a typed table: every column
    rows = table.scan(selected_fields=names, snapshot_id=snapshot_id).to_arrow()
    return content_checksum(rows)


__all__ = [
    "CompactReport",
    "ExpireReport",
    "compact_table",
    "content_checksum",
    "delete_orphans",
    "expire_table",
    "live_files",
    "whole_table_checksum",
]
