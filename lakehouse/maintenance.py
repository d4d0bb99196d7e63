"""Retention and compaction: expire snapshots, delete unreferenced files, rewrite small files.

Safety rules: a file is deleted only if no retained snapshot (nor the current metadata)
references it and it is older than ``orphan_min_age`` (so files an in-flight commit has just
written are never touched). Compaction is a commit asserting the snapshot it read; a
concurrent ingest commit makes it fail and it re-reads, so no ingest commit is ever lost.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
from pyarrow import fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo
from pyiceberg.table import Table

from lakehouse.errors import CommitConflictError
from lakehouse.offsets import OFFSETS_KEY
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import expire_old_snapshots


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


def _filesystem(location: str, settings: LakehouseSettings) -> tuple[pafs.FileSystem, str, str]:
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), parsed.path, "file://"
    if parsed.scheme in ("s3", "s3a"):
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        endpoint = settings.s3_endpoint
        scheme = "http"
        if endpoint and "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        fs = pafs.S3FileSystem(
            access_key=settings.s3_access_key_id,
            secret_key=secret,
            region=settings.s3_region,
            endpoint_override=endpoint,
            scheme=scheme,
        )
        return fs, parsed.netloc + parsed.path, f"{parsed.scheme}://"
    raise ValueError(f"cannot list files at {location}")


def delete_orphans(table: Table, settings: LakehouseSettings, min_age: timedelta) -> tuple[int, int, int]:
    """Delete files under the table location that nothing retained references. Returns counts."""
    live = {p.removeprefix("file://") if p.startswith("file://") else p for p in live_files(table)}
    fs, root, prefix = _filesystem(table.location(), settings)
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
    """Row count and an order-independent checksum of (topic, partition, offset, value).

    Vectorised in DuckDB: the XOR of a 64-bit hash of each row's four columns.
    """
    if rows.num_rows == 0:
        return 0, "0" * 16
    view = rows.select(["topic", "partition", "offset", "value"])  # noqa: F841 (read by DuckDB by name)
    count, digest = duckdb.sql(
        'SELECT count(*), bit_xor(hash("topic", "partition", "offset", "value")) FROM view'
    ).fetchone()  # type: ignore[misc]
    return int(count), f"{int(digest):016x}"


def _partition_filter(partition: dict[str, object]) -> BooleanExpression:
    expr: BooleanExpression = AlwaysTrue()
    for k, v in partition.items():
        literal = v.isoformat() if isinstance(v, date) else v
        expr = And(expr, EqualTo(term=k, value=literal))  # type: ignore[arg-type]
    return expr


def compact_table(
    table: Table, min_files: int = 2, max_attempts: int = 20, sort_by: tuple[str, ...] = ("partition", "offset")
) -> CompactReport:
    """Rewrite every partition holding ``min_files`` or more files into one sorted file per partition.

    Each partition is a separate commit that asserts the snapshot it read; a conflicting commit
    (ingest appending meanwhile) makes it re-read and retry, so no committed row is lost.

    Raises:
        CommitConflictError: if a partition still conflicts after ``max_attempts``.
    """
    table.refresh()
    files = table.inspect.files()
    by_partition: dict[tuple[tuple[str, object], ...], int] = defaultdict(int)
    for part in files.column("partition").to_pylist():
        by_partition[tuple(sorted(part.items()))] += 1
    files_before = files.num_rows
    rewritten = 0
    total_rows = 0
    checks: list[str] = []
    for key, count in sorted(by_partition.items(), key=lambda kv: str(kv[0])):
        if count < min_files:
            continue
        part = dict(key)
        for attempt in range(1, max_attempts + 1):
            table.refresh()
            current = table.current_snapshot()
            before = table.scan(row_filter=_partition_filter(part)).to_arrow()
            ordered = before.sort_by([(c, "ascending") for c in sort_by if c in before.column_names])
            props = {"mhhs.compaction": "true"}
            held = current.summary[OFFSETS_KEY] if current is not None and current.summary is not None else None
            if held:
                props[OFFSETS_KEY] = held  # carry the ingest positions forward unchanged
            try:
                table.overwrite(ordered, overwrite_filter=_partition_filter(part), snapshot_properties=props)
            except CommitFailedException:
                time.sleep(min(2.0, 0.05 * 2**attempt))
                continue
            after = table.scan(row_filter=_partition_filter(part)).to_arrow()
            if content_checksum(before) != content_checksum(after):  # pragma: no cover - invariant
                raise RuntimeError(f"compaction changed rows in {part}")
            total_rows += after.num_rows
            checks.append(content_checksum(after)[1])
            rewritten += 1
            break
        else:
            raise CommitConflictError(".".join(table.name()), max_attempts)
    table.refresh()
    return CompactReport(
        rewritten,
        files_before,
        table.inspect.files().num_rows,
        total_rows,
        hashlib.sha256("".join(checks).encode()).hexdigest()[:16],
    )


def whole_table_checksum(table: Table, snapshot_id: int | None = None) -> tuple[int, str]:
    """Row count and order-independent checksum of the whole table at a snapshot."""
    rows = table.scan(selected_fields=("topic", "partition", "offset", "value"), snapshot_id=snapshot_id).to_arrow()
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
