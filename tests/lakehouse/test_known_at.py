"""'As known at T' survives snapshot expiry, and never answers with an older state; Polars reads the same rows."""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from lakehouse import frames
from lakehouse.errors import SnapshotNotFoundError
from lakehouse.history import create_tag, list_snapshots, read_as_known_at, resolve_snapshot
from lakehouse.maintenance import expire_table
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from tests.support.landing import GROUP, simulated_batches


def _land_around_a_moment(lake: LakehouseSettings, tag_first: str | None = None) -> tuple[LandingWriter, datetime]:
    """Three batches, a moment, three more; ``tag_first`` tags the first snapshot."""
    writer = LandingWriter(lake)
    batches = simulated_batches(6, 150)
    then = datetime.now(UTC)
    for i, (events, quarantine, offsets) in enumerate(batches):
        if i == 3:
            time.sleep(0.05)
            then = datetime.now(UTC)
            time.sleep(0.05)
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
        if i == 0 and tag_first:
            create_tag(writer.events, tag_first, writer.events.current_snapshot().snapshot_id)  # type: ignore[union-attr]
    return writer, then


def test_as_known_at_survives_expiry_of_old_snapshots(lake: LakehouseSettings) -> None:
    writer, then = _land_around_a_moment(lake)
    before, how = read_as_known_at(writer.events, then, ("topic", "partition", "offset"))
    assert how.startswith("snapshot:")
    expire_table(writer.events, lake, orphan_min_age=timedelta(0))  # keeps only the newest 3
    assert min(s.committed_at for s in list_snapshots(writer.events)) > then
    after, how = read_as_known_at(writer.events, then, ("topic", "partition", "offset"))
    assert how == "landed_at"
    key = lambda t: sorted(zip(*(t[c].to_pylist() for c in ("topic", "partition", "offset")), strict=True))  # noqa: E731
    assert key(after) == key(before)
    assert 0 < after.num_rows < writer.events.scan().to_arrow().num_rows


def test_polars_lazyframe_reads_the_same_rows(lake: LakehouseSettings) -> None:
    writer = LandingWriter(lake)
    for events, quarantine, offsets in simulated_batches(6, 150):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pl.exceptions.PerformanceWarning)  # planned natively (polars-iceberg)
        lf = frames.scan(lake, "events")
        counted = lf.group_by("interface_id").agg(pl.len()).collect()
        assert counted["len"].sum() == writer.events.scan().to_arrow().num_rows
        first = list_snapshots(writer.events)[0].snapshot_id
        at_first = frames.scan(lake, "events", snapshot_id=first).select(pl.len()).collect().item()
    assert 0 < at_first < counted["len"].sum()


def test_a_time_whose_snapshots_were_expired_is_not_answered_with_an_older_tagged_one(lake: LakehouseSettings) -> None:
    # the first snapshot survives expiry as a tag (as a delivery's start does); the ones after it do not
    writer, then = _land_around_a_moment(lake, tag_first="settlement-run-0")
    before, _ = read_as_known_at(writer.events, then, ("topic", "partition", "offset"))
    tagged = resolve_snapshot(writer.events, tag="settlement-run-0")
    expire_table(writer.events, lake, orphan_min_age=timedelta(0))  # keeps the newest 3 and the tag
    kept = list_snapshots(writer.events)
    assert tagged in {s.snapshot_id for s in kept} and len(kept) == 4
    with pytest.raises(SnapshotNotFoundError, match="have been expired"):
        resolve_snapshot(writer.events, as_of=then)  # was: the tagged first snapshot, two batches short
    after, how = read_as_known_at(writer.events, then, ("topic", "partition", "offset"))
    assert how == "landed_at" and after.num_rows == before.num_rows
    newest = kept[-1]
    assert resolve_snapshot(writer.events, as_of=newest.committed_at + timedelta(days=1)) == newest.snapshot_id
    assert resolve_snapshot(writer.events, as_of=kept[-2].committed_at) == kept[-2].snapshot_id  # its child is kept
