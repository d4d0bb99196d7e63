"""The only writer of landed events: one commit per table per batch, offsets in the summary.

Exactly once: the quarantine table is committed first, then the events table; each commit
drops rows at offsets its table already holds (so a fenced or zombie worker cannot duplicate),
records the merged next offsets of every topic-partition, and is retried on conflict by
refreshing, re-filtering and re-merging (pyiceberg's own retry is off for these tables). A
worker resumes from the events table's offsets, which are written last.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from lakehouse.datafiles import delete_data_files, write_partition_runs
from lakehouse.errors import CommitConflictError
from lakehouse.maintenance import expire_old_snapshots
from lakehouse.offsets import (
    OFFSETS_KEY,
    TP,
    committed_offsets,
    encode_offsets,
    merge_offsets,
    snapshot_offsets,
)
from lakehouse.retry import retry_commit
from lakehouse.settings import LakehouseSettings
from lakehouse.transaction import CommitTransaction

log = logging.getLogger(__name__)
COMMIT_TOKEN_KEY = "mhhs.commit-token"
"""A snapshot summary property: which ``append_with_offsets`` call committed it (one uuid per call)."""


@dataclass(frozen=True, slots=True)
class TableCommit:
    """What one table commit did."""

    table: str
    snapshot_id: int | None
    rows: int
    dropped: int
    attempts: int
    seconds: float


@dataclass(slots=True)
class CommitResult:
    """What committing one batch did, table by table."""

    events: TableCommit
    quarantine: TableCommit | None
    offsets: dict[TP, int] = field(default_factory=dict)


COORDS = ("topic", "partition", "offset")


def drop_landed(rows: pa.Table, held: Mapping[TP, int], coords: tuple[str, str, str] = COORDS) -> pa.Table:
    """Rows whose (topic, partition) offset is not yet held by the table (vectorised per partition)."""
    if rows.num_rows == 0 or not held:
        return rows
    keep = pa.repeat(True, rows.num_rows)
    topics = rows.column(coords[0])
    partitions = rows.column(coords[1])
    offsets = rows.column(coords[2])
    for (topic, partition), next_offset in held.items():
        in_tp = pc.and_(pc.equal(topics, topic), pc.equal(partitions, partition))
        landed = pc.and_(in_tp, pc.less(offsets, next_offset))
        keep = pc.and_(keep, pc.invert(landed))
    return rows if pc.all(keep).as_py() else rows.filter(keep)  # no copy when nothing was landed


def _append_files(table: Table, files: list[DataFile], summary: dict[str, str]) -> None:
    """One append snapshot of data files already written, with ``summary`` (as ``table.append`` commits)."""
    with CommitTransaction(table) as tx, tx._append_snapshot_producer(summary) as append:
        for f in files:
            append.append_data_file(f)


def append_with_offsets(
    table: Table,
    rows: pa.Table,
    group: str,
    next_offsets: Mapping[TP, int],
    properties: Mapping[str, str],
    max_attempts: int,
    coords: tuple[str, str, str] = COORDS,
    stamp: str | None = None,
) -> TableCommit:
    """Append ``rows`` and the merged offsets in one snapshot, fencing already-landed offsets.

    ``stamp`` names a timestamp column set to the commit attempt's time (``landed_at``), so a row
    is never stamped later than the snapshot that first holds it.

    The data files are written once: an attempt that lost a race to a commit of other partitions
    (the usual race between members of one group) commits the same files again (their rows keep
    the stamp of the attempt that wrote them, earlier than the commit by the retries' backoff);
    only when the winner landed some of these rows (held offsets only grow, so fewer fresh rows
    means exactly that) are the files deleted and the remaining rows written anew. A commit
    reported lost that in fact landed (a gateway retrying the request) is recognised by the
    call's token in its snapshot summary, and its files are kept.

    Raises:
        CommitConflictError: if the commit still conflicts after ``max_attempts``.
    """
    name = ".".join(table.name())
    started = time.perf_counter()
    token = uuid.uuid4().hex
    written: list[DataFile] = []  # by an earlier attempt, for this many rows
    written_rows = -1
    tried = 0  # rows the last attempt committed, had it won

    def outcome(snap: Snapshot | None, fresh: int, n: int) -> TableCommit:
        return TableCommit(
            name, snap.snapshot_id if snap else None, fresh, rows.num_rows - fresh, n, time.perf_counter() - started
        )

    def attempt(n: int) -> TableCommit:
        nonlocal written, written_rows, tried
        if n > 1:
            table.refresh()
            if (ours := _snapshot_with_token(table, token)) is not None:  # it landed after all
                return outcome(ours, tried, n)
        held_all = snapshot_offsets(table)
        held = held_all.get(group, {})
        fresh = drop_landed(rows, held, coords)
        landed = {tp: off for tp, off in next_offsets.items() if off > held.get(tp, -1)}
        summary = dict(properties)
        summary[OFFSETS_KEY] = encode_offsets(merge_offsets(held_all, group, landed))
        summary[COMMIT_TOKEN_KEY] = token
        if written and fresh.num_rows != written_rows:  # another writer landed some of these rows
            _discard(table, written)
            written, written_rows = [], -1
        if fresh.num_rows == 0 and not landed:
            return outcome(None, 0, n)
        if stamp and fresh.num_rows and not written:
            field_ = fresh.schema.field(stamp)
            fresh = fresh.set_column(
                fresh.schema.get_field_index(stamp), field_, pa.array([datetime.now(UTC)] * fresh.num_rows, field_.type)
            )
        files = written or write_partition_runs(table, fresh)
        tried = fresh.num_rows
        if files is None:
            table.append(fresh, snapshot_properties=summary)
        else:
            written, written_rows = files, fresh.num_rows
            _append_files(table, files, summary)
        return outcome(table.current_snapshot(), fresh.num_rows, n)

    try:
        return retry_commit(name, attempt, max_attempts)
    except CommitConflictError:
        table.refresh()
        if _snapshot_with_token(table, token) is None:  # never committed: the caller retries the whole batch
            _discard(table, written)
        raise


def _snapshot_with_token(table: Table, token: str) -> Snapshot | None:
    """The snapshot committed with ``token`` in its summary, if the table holds it."""
    for snap in reversed(table.metadata.snapshots):
        if snap.summary is not None and snap.summary[COMMIT_TOKEN_KEY] == token:
            return snap
    return None


def _discard(table: Table, files: list[DataFile]) -> None:
    """Delete files known not to be committed; a failure only leaves orphans (``delete_orphans`` finds them)."""
    try:
        delete_data_files(table, files)
    except OSError as exc:
        log.warning("discard_failed", extra={"table": ".".join(table.name()), "files": len(files), "error": str(exc)})


def add_files_with_offsets(
    table: Table,
    files: list[DataFile],
    rows: int,
    group: str,
    starts: Mapping[TP, int],
    next_offsets: Mapping[TP, int],
    properties: Mapping[str, str],
    max_attempts: int,
) -> TableCommit | None:
    """Commit data files already written, and the offsets moved from ``starts`` to ``next_offsets``, in one snapshot.

    The fence for files (their rows cannot be filtered again): the commit happens only while
    ``group``'s offsets of every partition in ``starts`` are still exactly there. If another writer
    moved any of them, the files are deleted and None is returned, so the caller plans again.

    Raises:
        CommitConflictError: if the commit still conflicts after ``max_attempts``.
    """
    name = ".".join(table.name())
    started = time.perf_counter()

    def attempt(n: int) -> TableCommit | None:
        if n > 1:
            table.refresh()
        held_all = snapshot_offsets(table)
        held = held_all.get(group, {})
        if any(held.get(tp, 0) != start for tp, start in starts.items()):
            delete_data_files(table, files)
            return None
        summary = dict(properties)
        summary[OFFSETS_KEY] = encode_offsets(merge_offsets(held_all, group, dict(next_offsets)))
        _append_files(table, files, summary)
        snap = table.current_snapshot()
        return TableCommit(name, snap.snapshot_id if snap else None, rows, 0, n, time.perf_counter() - started)

    return retry_commit(name, attempt, max_attempts)


def commit_batch(
    events_table: Table,
    quarantine_table: Table,
    events: pa.Table,
    quarantined: pa.Table,
    group: str,
    next_offsets: Mapping[TP, int],
    properties: Mapping[str, str],
    max_attempts: int = 50,
) -> CommitResult:
    """Commit one batch: quarantine first (if it has rows), then events with the batch's offsets.

    Raises:
        CommitConflictError: if either commit keeps conflicting.
    """
    q_commit = None
    if quarantined.num_rows:
        q_commit = append_with_offsets(
            quarantine_table, quarantined, group, next_offsets, properties, max_attempts, stamp="landed_at"
        )
    e_commit = append_with_offsets(
        events_table, events, group, next_offsets, properties, max_attempts, stamp="landed_at"
    )
    return CommitResult(e_commit, q_commit, dict(next_offsets))


def resume_offsets(events_table: Table, group: str) -> dict[TP, int]:
    """Where ``group`` resumes: the next offsets the events table (written last) holds."""
    events_table.refresh()
    return committed_offsets(events_table, group)


class LandingWriter:
    """The events and quarantine tables, opened once, with the operations ingest needs."""

    def __init__(self, settings: LakehouseSettings) -> None:
        from lakehouse.catalog import open_catalog
        from lakehouse.tables import EVENTS, QUARANTINE, ensure_table

        self.settings = settings
        catalog = open_catalog(settings)
        self.catalog = catalog
        self.events = ensure_table(catalog, settings, EVENTS)
        self.quarantine = ensure_table(catalog, settings, QUARANTINE)

    def resume_offsets(self, group: str) -> dict[TP, int]:
        """Where ``group`` resumes (the events table's recorded offsets)."""
        return resume_offsets(self.events, group)

    def commit(
        self,
        events: pa.Table,
        quarantined: pa.Table,
        group: str,
        next_offsets: Mapping[TP, int],
        properties: Mapping[str, str],
        max_attempts: int,
    ) -> CommitResult:
        """Commit one batch (see ``commit_batch``); refreshes the tables first."""
        self.events.refresh()
        if quarantined.num_rows:
            self.quarantine.refresh()
        return commit_batch(
            self.events, self.quarantine, events, quarantined, group, next_offsets, properties, max_attempts
        )

    def maintain(self) -> dict[str, int]:
        """Expire old snapshots of both tables; return how many each lost."""
        return {".".join(t.name()): expire_old_snapshots(t, self.settings) for t in (self.events, self.quarantine)}


def append_rows(table: Table, rows: pa.Table, max_attempts: int = 20) -> int | None:
    """Append ``rows`` (no offsets involved), retrying lost races; return the snapshot ID.

    Raises:
        CommitConflictError: if it still conflicts after ``max_attempts``.
    """

    def attempt(n: int) -> int | None:
        if n > 1:
            table.refresh()
        table.append(rows)
        snap = table.current_snapshot()
        return snap.snapshot_id if snap else None

    return retry_commit(".".join(table.name()), attempt, max_attempts)
