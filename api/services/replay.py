"""Consumer-recovery replays: everything in a topic from given positions, paged, from one pinned snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from access.guard import AccessGuard
from access.principal import ALL_ROWS, Principal
from api.services.cursor import CursorSigner
from api.services.errors import InvalidRequestError, NotFoundError
from contract.topics import TopicCatalogue, load_topic_catalogue
from lakehouse.query import EventQuery
from lakehouse.store import Store
from lakehouse.tables import EVENTS

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


@dataclass
class ReplayPage:
    """One page of a replay: its rows, masked batch by batch as they are sent, and how to go on."""

    snapshot_id: int | None
    visible: pa.Table  # entitled, not yet masked
    resume_offsets: dict[int, int]
    next_cursor: str | None
    mask: Callable[[pa.Table], pa.Table]

    def batches(self, first: int, rest: int) -> Iterator[pa.Table]:
        """Masked batches: a small first one (the first byte goes out early), then ``rest`` rows each."""
        start = 0
        size = first
        while start < self.visible.num_rows:
            yield self.mask(self.visible.slice(start, size))
            start += size
            size = rest

    @property
    def rows(self) -> pa.Table:
        """The whole page, masked (for callers that want it at once)."""
        return self.mask(self.visible)


@dataclass
class ReplayService:
    """Pages of a topic in (partition, offset) order with the Kafka positions to resume from."""

    _store: Store
    _guard: AccessGuard
    _cursors: CursorSigner
    _catalogue: TopicCatalogue = field(default_factory=load_topic_catalogue)

    def page(
        self,
        principal: Principal,
        topic: str,
        from_offsets: dict[int, int] | None,
        from_time: datetime | None,
        to_offsets: dict[int, int] | None,
        limit: int,
        cursor: str | None,
    ) -> ReplayPage:
        """One page of everything in ``topic`` from the given positions, pinned to one snapshot.

        Raises:
            NotFoundError: if ``topic`` is not an MHHS topic.
            InvalidRequestError: if the cursor is bad or belongs to another replay.
        """
        spec = self._catalogue.by_name(topic)
        if spec is None:
            raise NotFoundError(f"no topic {topic!r}", "unknown_topic")
        if cursor:
            state = self._cursors.verify(cursor)
            if state.get("topic") != topic or state.get("sub") != principal.subject:
                raise InvalidRequestError("the cursor belongs to another replay", "invalid_cursor")
            snapshot_id = int(state["snap"]) if state.get("snap") is not None else None
            positions = {int(k): int(v) for k, v in state["pos"].items()}
            ends = {int(k): int(v) for k, v in (state.get("end") or {}).items()}
        else:
            snapshot_id = self._store.resolve(EVENTS)
            ends = dict(to_offsets or {})
            positions = {p: 0 for p in range(spec.partitions)}
            if from_offsets:
                positions.update(from_offsets)
            if from_time is not None:
                positions = self._offsets_for_time(topic, snapshot_id, from_time, spec.partitions)
        held = {p: n for (t, p), n in self._store.held_offsets(snapshot_id).items() if t == topic}
        # read at most ``limit`` offsets per partition: a page never reads the rest of the topic
        windows = {p: (lo, min(lo + limit, ends.get(p, lo + limit), held.get(p, lo))) for p, lo in positions.items()}
        query = EventQuery(
            topics=(topic,),
            min_offset=min(positions.values()) if positions else 0,
            max_offset=max((hi for _, hi in windows.values()), default=0),
            partition_offsets=tuple((p, lo, hi) for p, (lo, hi) in sorted(windows.items())),
        )
        rows = pa.table({})
        if snapshot_id is not None and positions:
            rows = self._store.read_events(query, REPLAY_COLUMNS, snapshot_id)
            rows = rows.sort_by([("partition", "ascending"), ("offset", "ascending")])
        truncated = rows.num_rows > limit
        page = rows.slice(0, limit)
        new_pos = dict(positions)
        last_partition = None
        if page.num_rows:
            last = page.group_by("partition").aggregate([("offset", "max")])
            for p, m in zip(last["partition"].to_pylist(), last["offset_max"].to_pylist(), strict=True):
                new_pos[p] = m + 1
            last_partition = page["partition"][page.num_rows - 1].as_py()
        for p, (_lo, hi) in windows.items():
            if not truncated or (last_partition is not None and p < last_partition):
                new_pos[p] = max(new_pos[p], hi)  # every event of this window is in the page
        targets = {p: min(held.get(p, new_pos[p]), ends.get(p, held.get(p, new_pos[p]))) for p in new_pos}
        more = truncated or any(new_pos[p] < targets[p] for p in new_pos)
        if not more:  # everything in the snapshot read: resume where the store stands
            for p in new_pos:
                new_pos[p] = max(new_pos[p], targets[p])
        entitlement = self._guard.entitlement(principal, snapshot_id)
        visible = page if principal.role in ALL_ROWS or not page.num_rows else entitlement(page)
        next_cursor = None
        if more:
            next_cursor = self._cursors.sign(
                {
                    "topic": topic,
                    "sub": principal.subject,
                    "snap": snapshot_id,
                    "pos": {str(k): v for k, v in new_pos.items()},
                    "end": {str(k): v for k, v in ends.items()},
                }
            )
        return ReplayPage(
            snapshot_id,
            visible,
            new_pos,
            next_cursor,
            lambda t: self._guard.mask(t, principal, entitlement),
        )

    def _offsets_for_time(self, topic: str, snapshot_id: int | None, at: datetime, partitions: int) -> dict[int, int]:
        """Like Kafka's offsetsForTimes: the first offset per partition with timestamp >= ``at``."""
        held = {p: n for (t, p), n in self._store.held_offsets(snapshot_id).items() if t == topic}
        out = {p: held.get(p, 0) for p in range(partitions)}
        if snapshot_id is None:
            return out
        rows = self._store.read_events(EventQuery(topics=(topic,), since=at), ("partition", "offset"), snapshot_id)
        if rows.num_rows:
            first = rows.group_by("partition").aggregate([("offset", "min")])
            for p, m in zip(first["partition"].to_pylist(), first["offset_min"].to_pylist(), strict=True):
                out[p] = m
        return out
