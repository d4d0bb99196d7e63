"""Consumer-recovery replays: everything in a topic from given positions, paged, from one pinned snapshot."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import ParamSpec, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from access.guard import AccessGuard
from access.principal import ALL_ROWS, RAW_BYTES_ROLES, Principal
from api.services.cursor import CursorSigner
from api.services.errors import InvalidRequestError, NotFoundError
from contract.quarantine import ERROR_CODES
from contract.topics import TopicCatalogue, load_topic_catalogue
from lakehouse.errors import SnapshotNotFoundError
from lakehouse.query import EventQuery
from lakehouse.store import Store
from lakehouse.tables import EVENTS, QUARANTINE

REPLAY_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "kafka_timestamp_type",
    "key",
    "headers",
    "value",
    "mpan",
    "settlement_date",
    "interface_id",
    "transaction_id",
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
PAGE_ATTEMPTS = 3
"""Reads of one page when retention expires its pin meanwhile (each retry re-pins to the current snapshot)."""


QUARANTINE_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "key",
    "value",
    "error_code",
    "error_reason",
    "transaction_id",
    "interface_id",
)


@dataclass
class ReplayPage:
    """One page of a replay: its events and quarantined records in (partition, offset) order, and how to go on.

    ``visible`` are the entitled events (masked batch by batch as they are sent), ``quarantined`` the
    malformed records of the same range (raw bytes only for roles allowed them), ``withheld`` how many
    events of the range the caller is not entitled to, ``not_retained`` the partitions whose requested
    start lies below the first offset the store holds (with that offset).
    """

    snapshot_id: int | None
    visible: pa.Table  # entitled, not yet masked, sorted by (partition, offset)
    quarantined: pa.Table  # sorted by (partition, offset)
    resume_offsets: dict[int, int]
    next_cursor: str | None
    mask: Callable[[pa.Table], pa.Table]
    withheld: int = 0
    not_retained: dict[int, int] = field(default_factory=dict)
    quarantine_snapshot_id: int | None = None

    def pieces(self, first: int, rest: int) -> Iterator[tuple[str, pa.Table]]:
        """("event", masked rows) and ("quarantined", rows) in (partition, offset) order.

        Runs of events come in batches of ``first`` rows, then ``rest`` (the first byte goes out early).
        """
        keys = pa.concat_tables(
            [
                pa.table(
                    {
                        "partition": pc.cast(t["partition"], pa.int32()),
                        "offset": pc.cast(t["offset"], pa.int64()),
                        "kind": pa.array([kind] * t.num_rows, pa.int8()),
                        "row": pa.array(range(t.num_rows), pa.int64()),
                    }
                )
                for kind, t in ((0, self.visible), (1, self.quarantined))
                if t.num_rows
            ]
            or [pa.table({"partition": pa.array([], pa.int32()), "kind": pa.array([], pa.int8())})]
        )
        if not keys.num_rows:
            return
        keys = keys.sort_by([("partition", "ascending"), ("offset", "ascending")])
        kinds = keys["kind"].to_pylist()
        rows = keys["row"].to_pylist()
        size = first
        start = 0
        while start < len(kinds):
            kind = kinds[start]
            stop = start
            while stop < len(kinds) and kinds[stop] == kind and (kind == 1 or stop - start < size):
                stop += 1
            lo, hi = rows[start], rows[stop - 1] + 1  # each table is sorted: a run is a contiguous slice
            if kind == 0:
                yield "event", self.mask(self.visible.slice(lo, hi - lo))
                size = rest
            else:
                yield "quarantined", self.quarantined.slice(lo, hi - lo)
            start = stop

    @property
    def rows(self) -> pa.Table:
        """The page's events, masked (for callers that want them at once)."""
        return self.mask(self.visible)


def _repinning(page: Callable[P, R]) -> Callable[P, R]:
    """``page``, read again (re-pinned) when retention expires its pin between resolving and reading it."""

    @functools.wraps(page)
    def again(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            try:
                return page(*args, **kwargs)
            except SnapshotNotFoundError as exc:
                if attempt == PAGE_ATTEMPTS:
                    raise
                log.info("replay_pin_expired_while_reading", extra={"error": str(exc)})
        raise AssertionError("unreachable")

    return again


@dataclass
class ReplayService:
    """Pages of a topic in (partition, offset) order with the Kafka positions to resume from."""

    _store: Store
    _guard: AccessGuard
    _cursors: CursorSigner
    _catalogue: TopicCatalogue = field(default_factory=load_topic_catalogue)

    @_repinning
    def page(
        self,
        principal: Principal,
        topic: str,
        from_offsets: dict[int, int] | None,
        from_time: datetime | None,
        to_offsets: dict[int, int] | None,
        limit: int,
        cursor: str | None,
        include_quarantined: bool = True,
    ) -> ReplayPage:
        """One page of everything in ``topic`` from the given positions, pinned to one snapshot.

        A pin that retention expires while the page is read (between resolving and reading it) is
        re-pinned and the page read again, as for a cursor whose pin had already expired: the caller
        sees a page, not ``snapshot_not_found`` for a snapshot it never named.

        Raises:
            NotFoundError: if ``topic`` is not an MHHS topic.
            InvalidRequestError: if the cursor is bad or belongs to another replay.
        """
        spec = self._catalogue.by_name(topic)
        if spec is None:
            raise NotFoundError(f"no topic {topic!r}", "unknown_topic")
        qsnap: int | None
        if cursor:
            state = self._cursors.verify(cursor)
            if state.get("topic") != topic or state.get("sub") != principal.subject:
                raise InvalidRequestError("the cursor belongs to another replay", "invalid_cursor")
            pinned = int(state["snap"]) if state.get("snap") is not None else None
            qsnap = int(state["qsnap"]) if state.get("qsnap") is not None else None
            snapshot_id = self._retained(EVENTS, pinned)
            # events re-pinned: quarantine too, after them (ingest commits quarantine first); else only if
            # expired itself (a newer quarantine snapshot holds its rows; the page's windows bound them)
            repinned = snapshot_id != pinned
            qsnap = self._store.resolve(QUARANTINE) if repinned else self._retained(QUARANTINE, qsnap)
            positions = {int(k): int(v) for k, v in state["pos"].items()}
            ends = {int(k): int(v) for k, v in (state.get("end") or {}).items()}
            include_quarantined = bool(state.get("q", True))
        else:
            snapshot_id = self._store.resolve(EVENTS)
            qsnap = self._store.resolve(QUARANTINE)
            ends = dict(to_offsets or {})
            positions = {p: 0 for p in range(spec.partitions)}
            if from_offsets:
                positions.update(from_offsets)
            if from_time is not None:
                positions = self._offsets_for_time(topic, snapshot_id, qsnap, from_time, spec.partitions)
        held = {p: n for (t, p), n in self._store.held_offsets(snapshot_id).items() if t == topic}
        # read at most ``limit`` offsets per partition: a page never reads the rest of the topic
        windows = {p: (lo, min(lo + limit, ends.get(p, lo + limit), held.get(p, lo))) for p, lo in positions.items()}
        query = EventQuery(
            topics=(topic,),
            min_offset=min(positions.values()) if positions else 0,
            max_offset=max((hi for _, hi in windows.values()), default=0),
            partition_offsets=tuple((p, lo, hi) for p, (lo, hi) in sorted(windows.items())),
        )
        events = pa.table({"partition": pa.array([], pa.int32()), "offset": pa.array([], pa.int64())})
        quarantined = events
        if snapshot_id is not None and positions:
            events = self._store.read_events(query, REPLAY_COLUMNS, snapshot_id)
            if include_quarantined and qsnap is not None:
                quarantined = self._store.read_quarantine(query, QUARANTINE_COLUMNS, qsnap)
        keys = pa.concat_tables(
            [t.select(["partition", "offset"]).cast(pa.schema([("partition", pa.int32()), ("offset", pa.int64())]))
             for t in (events, quarantined)]
        ).sort_by([("partition", "ascending"), ("offset", "ascending")])  # fmt: skip
        truncated = keys.num_rows > limit
        page = keys.slice(0, limit)
        new_pos = dict(positions)
        last_partition = None
        if page.num_rows:
            last = page.group_by("partition").aggregate([("offset", "max")])
            for p, m in zip(last["partition"].to_pylist(), last["offset_max"].to_pylist(), strict=True):
                new_pos[p] = m + 1
            last_partition = page["partition"][page.num_rows - 1].as_py()
        for p, (_lo, hi) in windows.items():
            if not truncated or (last_partition is not None and p < last_partition):
                new_pos[p] = max(new_pos[p], hi)  # every record of this window is in the page
        targets = {p: min(held.get(p, new_pos[p]), ends.get(p, held.get(p, new_pos[p]))) for p in new_pos}
        more = truncated or any(new_pos[p] < targets[p] for p in new_pos)
        if not more:  # everything in the snapshot read: resume where the store stands
            for p in new_pos:
                new_pos[p] = max(new_pos[p], targets[p])
        in_page = {p: (positions[p], new_pos[p]) for p in positions}
        events_page = _within(events, in_page).sort_by([("partition", "ascending"), ("offset", "ascending")])
        quarantined_page = _within(quarantined, in_page).sort_by([("partition", "ascending"), ("offset", "ascending")])
        entitlement = self._guard.entitlement(principal, snapshot_id)
        visible = events_page if principal.role in ALL_ROWS or not events_page.num_rows else entitlement(events_page)
        first = self._store.first_offsets(topic, snapshot_id, qsnap) if snapshot_id is not None else {}
        not_retained = {p: first[p] for p, lo in positions.items() if p in first and lo < first[p]}
        next_cursor = None
        if more:
            next_cursor = self._cursors.sign(
                {
                    "topic": topic,
                    "sub": principal.subject,
                    "snap": snapshot_id,
                    "qsnap": qsnap,
                    "q": include_quarantined,
                    "pos": {str(k): v for k, v in new_pos.items()},
                    "end": {str(k): v for k, v in ends.items()},
                }
            )
        return ReplayPage(
            snapshot_id,
            visible,
            _quarantine_lines(quarantined_page, principal),
            new_pos,
            next_cursor,
            lambda t: self._guard.mask(t, principal, entitlement),
            withheld=events_page.num_rows - visible.num_rows,
            not_retained=not_retained,
            quarantine_snapshot_id=qsnap,
        )

    def _retained(self, name: str, snapshot_id: int | None) -> int | None:
        """A cursor's snapshot while retention keeps it, else the table's current one.

        A replay outlives its first snapshot: the events and quarantine tables only gain rows
        (compaction rewrites files, not rows), so a later snapshot holds every row of the pinned one
        at the same offsets, and the replay goes on from the cursor's positions to where the store
        now stands. Left pinned to an expired snapshot, a page found nothing held and ended the
        replay early, telling the consumer to resume live from where it stood. The caller re-pins
        quarantine too, afterwards: its older pin would miss records quarantined up to the new
        events snapshot, whose offsets the replay now passes. Entitlements then follow the newer
        snapshot as well.
        """
        if snapshot_id is None:
            return None
        try:
            return self._store.resolve(name, snapshot_id=snapshot_id)
        except SnapshotNotFoundError:
            current = self._store.resolve(name)
            log.info("replay_repinned", extra={"table": name, "expired_snapshot": snapshot_id, "snapshot": current})
            return current

    def _offsets_for_time(
        self, topic: str, snapshot_id: int | None, qsnap: int | None, at: datetime, partitions: int
    ) -> dict[int, int]:
        """Like Kafka's offsetsForTimes: the first offset per partition with timestamp >= ``at`` (any record)."""
        held = {p: n for (t, p), n in self._store.held_offsets(snapshot_id).items() if t == topic}
        out = {p: held.get(p, 0) for p in range(partitions)}
        if snapshot_id is None:
            return out
        query = EventQuery(topics=(topic,), since=at)
        found = [self._store.read_events(query, ("partition", "offset"), snapshot_id)]
        if qsnap is not None:
            found.append(self._store.read_quarantine(query, ("partition", "offset"), qsnap))
        firsts: dict[int, int] = {}
        for rows in found:
            if rows.num_rows:
                first = rows.group_by("partition").aggregate([("offset", "min")])
                for p, m in zip(first["partition"].to_pylist(), first["offset_min"].to_pylist(), strict=True):
                    firsts[p] = min(m, firsts.get(p, m))
        return {**out, **firsts}


def _within(rows: pa.Table, ranges: dict[int, tuple[int, int]]) -> pa.Table:
    """The rows whose (partition, offset) lies in ``ranges[partition]`` = [from, to)."""
    if rows.num_rows == 0:
        return rows
    keep = pa.repeat(False, rows.num_rows)
    for p, (lo, hi) in ranges.items():
        inside = pc.and_(
            pc.equal(rows["partition"], p),
            pc.and_(pc.greater_equal(rows["offset"], lo), pc.less(rows["offset"], hi)),
        )
        keep = pc.or_(keep, inside)
    return rows.filter(keep)


def _quarantine_lines(rows: pa.Table, principal: Principal) -> pa.Table:
    """Quarantined records as a caller may see them: coordinates and code always; raw bytes and reasons only
    for roles allowed unmasked bytes (malformed bytes cannot be masked, and a reason may quote them)."""
    if rows.num_rows == 0:
        return pa.table({})
    out = {
        "partition": rows["partition"],
        "offset": rows["offset"],
        "kafka_timestamp": rows["kafka_timestamp"],
        "error_code": rows["error_code"],
        "interface_id": rows["interface_id"],
    }
    if principal.role in RAW_BYTES_ROLES:
        out["error_reason"] = rows["error_reason"]
        out["transaction_id"] = rows["transaction_id"]
        out["key"] = rows["key"]
        out["value"] = rows["value"]
    else:
        described = [ERROR_CODES.get(c, c) for c in rows["error_code"].to_pylist()]
        out["error_reason"] = pa.array(described, pa.large_string())
    return pa.table(out)
