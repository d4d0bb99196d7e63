"""Immutable history: list snapshots, resolve "as of" a snapshot ID, a time or a tag, pin tags."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from pyiceberg.expressions import LessThanOrEqual
from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType

from lakehouse.errors import LakehouseError, SnapshotNotFoundError
from lakehouse.offsets import snapshot_offsets
from lakehouse.retry import retry_commit


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot: id, parent, when, operation, row counts, tags and recorded offsets."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    added_records: int
    total_records: int
    tags: tuple[str, ...]
    offsets: dict[str, dict[str, int]]

    def to_json(self, with_offsets: bool = True) -> dict[str, object]:
        """A JSON-ready dict (offsets optional: they can be long)."""
        doc: dict[str, object] = {
            "snapshot_id": self.snapshot_id,
            "parent_id": self.parent_id,
            "committed_at": self.committed_at.isoformat(),
            "operation": self.operation,
            "added_records": self.added_records,
            "total_records": self.total_records,
            "tags": list(self.tags),
        }
        if with_offsets:
            doc["offsets"] = self.offsets
        return doc


def _int(summary: object, key: str) -> int:
    raw = summary[key] if summary is not None else None  # type: ignore[index]
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def list_snapshots(table: Table) -> list[SnapshotInfo]:
    """Every retained snapshot, oldest first."""
    tags: dict[int, list[str]] = {}
    for name, ref in table.metadata.refs.items():
        if ref.snapshot_ref_type == SnapshotRefType.TAG:
            tags.setdefault(ref.snapshot_id, []).append(name)
    out = []
    for snap in sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0)):
        summary = snap.summary
        offsets = {
            group: {f"{t}:{p}": n for (t, p), n in sorted(parts.items())}
            for group, parts in snapshot_offsets(table, snap).items()
        }
        out.append(
            SnapshotInfo(
                snapshot_id=snap.snapshot_id,
                parent_id=snap.parent_snapshot_id,
                committed_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC),
                operation=str(summary.operation.value) if summary is not None else "unknown",
                added_records=_int(summary, "added-records"),
                total_records=_int(summary, "total-records"),
                tags=tuple(sorted(tags.get(snap.snapshot_id, []))),
                offsets=offsets,
            )
        )
    return out


def resolve_snapshot(
    table: Table, snapshot_id: int | None = None, as_of: datetime | None = None, tag: str | None = None
) -> int | None:
    """The snapshot to read: by ID, by tag, or the last one committed at or before ``as_of``.

    Returns None for an empty table read at its current state.

    Raises:
        SnapshotNotFoundError: if the ID, tag or time is outside the retained history.
        LakehouseError: if more than one of the three is given.
    """
    given = sum(x is not None for x in (snapshot_id, as_of, tag))
    name = ".".join(table.name())
    if given > 1:
        raise LakehouseError("give at most one of snapshot_id, as_of and tag")
    if snapshot_id is not None:
        if table.metadata.snapshot_by_id(snapshot_id) is None:
            raise SnapshotNotFoundError(name, str(snapshot_id))
        return snapshot_id
    if tag is not None:
        ref = table.metadata.refs.get(tag)
        if ref is None or ref.snapshot_ref_type != SnapshotRefType.TAG:
            raise SnapshotNotFoundError(name, f"tag {tag}")
        return ref.snapshot_id
    if as_of is not None:
        return _last_committed_at(table, as_of)
    current = table.current_snapshot()
    return current.snapshot_id if current else None


def create_tag(table: Table, name: str, snapshot_id: int | None = None) -> int:
    """Pin ``snapshot_id`` (default: current) under tag ``name``; return the snapshot ID.

    Raises:
        LakehouseError: if the table is empty or the tag already exists.
        SnapshotNotFoundError: if the snapshot is not retained.
    """
    table.refresh()
    if name in table.metadata.refs:
        raise LakehouseError(f"tag {name!r} already exists on {'.'.join(table.name())}")
    target = resolve_snapshot(table, snapshot_id=snapshot_id)
    if target is None:
        raise LakehouseError(f"{'.'.join(table.name())} has no snapshot to tag yet")
    table.manage_snapshots().create_tag(target, name).commit()
    return target


def move_tag(table: Table, tag: str, snapshot_id: int, max_age: timedelta | None = None) -> None:
    """Point tag ``tag`` at ``snapshot_id``, creating or moving it (retention keeps tagged snapshots).

    With ``max_age`` the tag lapses once its snapshot is that old (Iceberg's ``max-ref-age-ms``:
    expiry removes it), so a tag a crashed process left behind does not keep its snapshot for ever.

    Raises:
        SnapshotNotFoundError: if the snapshot is not retained, or an expiry took it meanwhile
            (which drops the refs to what it removes).
        CommitConflictError: if the commit keeps losing races (with ingest, say).
    """
    name = ".".join(table.name())
    age_ms = int(max_age.total_seconds() * 1000) if max_age is not None else None

    def attempt(_: int) -> None:
        table.refresh()
        if table.metadata.snapshot_by_id(snapshot_id) is None:
            raise SnapshotNotFoundError(name, f"{snapshot_id} to tag {tag}")
        ref = table.metadata.refs.get(tag)
        if ref is not None and ref.snapshot_id == snapshot_id and ref.max_ref_age_ms == age_ms:
            return
        manage = table.manage_snapshots()
        if ref is not None:
            manage = manage.remove_tag(tag)
        manage.create_tag(snapshot_id, tag, max_ref_age_ms=age_ms).commit()
        table.refresh()
        if table.metadata.refs.get(tag) is None:
            raise SnapshotNotFoundError(name, f"{snapshot_id} to tag {tag} (expired)")

    retry_commit(name, attempt, 20)


def remove_tags(table: Table, tags: Iterable[str]) -> None:
    """Remove ``tags`` (those still there) in one commit.

    Raises:
        CommitConflictError: if the commit keeps losing races.
    """
    wanted = list(tags)

    def attempt(_: int) -> None:
        table.refresh()
        present = [t for t in wanted if t in table.metadata.refs]
        if present:
            manage = table.manage_snapshots()
            for t in present:
                manage = manage.remove_tag(t)
            manage.commit()

    retry_commit(".".join(table.name()), attempt, 20)
    table.refresh()


def _last_committed_at(table: Table, as_of: datetime) -> int:
    """The last snapshot committed at or before ``as_of``, when the retained history proves it is.

    The newest retained snapshot at or before ``as_of`` is the answer only if it is the current one
    or a retained snapshot names it as parent (the main line is linear: nothing was committed
    between the two). Otherwise the snapshots after it were expired (it survived as a tag, say) and
    one of them may be the real answer: refused, rather than an older state returned. pyiceberg's
    expiry clears the parent of a snapshot whose parent it removes, so only links between two
    retained snapshots are relied on.
    """
    name = ".".join(table.name())
    at_ms = int(as_of.timestamp() * 1000)
    snapshots = table.metadata.snapshots
    candidates = [s for s in snapshots if s.timestamp_ms <= at_ms]
    if not candidates:
        raise SnapshotNotFoundError(name, f"as of {as_of.isoformat()}")
    best = max(candidates, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    current = table.current_snapshot()
    if current is not None and current.snapshot_id == best.snapshot_id:
        return best.snapshot_id
    if any(s.parent_snapshot_id == best.snapshot_id for s in snapshots):
        return best.snapshot_id
    raise SnapshotNotFoundError(
        name, f"as of {as_of.isoformat()} (the snapshots after {best.snapshot_id} have been expired)"
    )


def read_as_known_at(table: Table, at: datetime, columns: tuple[str, ...] | None = None) -> tuple[pa.Table, str]:
    """The rows as the store knew them at ``at``, and how that was decided.

    Uses the last snapshot committed at or before ``at`` when the retained history shows which it
    is (``"snapshot:<id>"``); after retention has expired it, the rows of the current snapshot
    landed at or before ``at`` (``"landed_at"``) — equivalent for the append-only landed tables,
    whose rows are never changed, only compacted.

    Raises:
        SnapshotNotFoundError: if neither way can answer (a table without ``landed_at``).
    """
    selected = tuple(columns) if columns else ("*",)
    try:
        snap = _last_committed_at(table, at)
    except SnapshotNotFoundError:
        snap = None
    if snap is not None:
        return table.scan(snapshot_id=snap, selected_fields=selected).to_arrow(), f"snapshot:{snap}"
    if "landed_at" not in table.schema().column_names:
        raise SnapshotNotFoundError(".".join(table.name()), f"as known at {at.isoformat()} (no landed_at column)")
    rows = table.scan(row_filter=LessThanOrEqual(term="landed_at", value=at.isoformat())).to_arrow()  # type: ignore[arg-type]
    return (rows.select(list(columns)) if columns else rows), "landed_at"
