"""Snapshots, time travel and tags over tables landed by the real writer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse.errors import LakehouseError, SnapshotNotFoundError
from lakehouse.history import create_tag, list_snapshots, resolve_snapshot
from lakehouse.offsets import committed_offsets
from lakehouse.writer import LandingWriter
from tests.support.landing import GROUP, simulated_batches


def test_each_commit_is_a_snapshot_with_offsets_and_counts(landed: LandingWriter) -> None:
    snaps = list_snapshots(landed.events)
    assert len(snaps) == 6
    totals = [s.total_records for s in snaps]
    assert totals == sorted(totals) and totals[-1] == landed.events.scan().to_arrow().num_rows
    assert all(GROUP in s.offsets for s in snaps)
    # offsets only move forward from one snapshot to the next
    for before, after in itertools.pairwise(snaps):
        for tp, n in before.offsets[GROUP].items():
            assert after.offsets[GROUP][tp] >= n


def test_reading_as_of_a_snapshot_id_time_or_tag_sees_that_state(landed: LandingWriter) -> None:
    table = landed.events
    snaps = list_snapshots(table)
    third = snaps[2]
    create_tag(table, "settlement-run-1", third.snapshot_id)
    rows_then = table.scan(snapshot_id=third.snapshot_id).to_arrow().num_rows
    assert rows_then == third.total_records
    assert resolve_snapshot(table, tag="settlement-run-1") == third.snapshot_id
    assert resolve_snapshot(table, as_of=third.committed_at) in {s.snapshot_id for s in snaps[2:3]} | {
        s.snapshot_id for s in snaps if s.committed_at == third.committed_at
    }
    with pytest.raises(SnapshotNotFoundError):
        resolve_snapshot(table, as_of=snaps[0].committed_at - timedelta(days=1))
    with pytest.raises(SnapshotNotFoundError):
        resolve_snapshot(table, tag="no-such-tag")
    with pytest.raises(SnapshotNotFoundError):
        resolve_snapshot(table, snapshot_id=12345)
    with pytest.raises(LakehouseError):
        create_tag(table, "settlement-run-1")


def test_fencing_drops_rows_the_table_already_holds(landed: LandingWriter) -> None:
    before = landed.events.scan().to_arrow().num_rows
    events, quarantine, offsets = simulated_batches(6, 150)[2]  # a zombie re-sends batch 3
    result = landed.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    assert result.events.rows == 0 and result.events.dropped == events.num_rows
    assert landed.events.scan().to_arrow().num_rows == before
    held = committed_offsets(landed.events, GROUP)
    assert all(held[tp] >= n for tp, n in offsets.items())


def test_timestamps_are_utc_and_in_commit_order(landed: LandingWriter) -> None:
    snaps = list_snapshots(landed.events)
    assert all(s.committed_at.tzinfo == UTC for s in snaps)
    assert snaps[-1].committed_at <= datetime.now(UTC) + timedelta(seconds=1)
