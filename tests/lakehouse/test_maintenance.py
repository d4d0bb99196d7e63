"""Retention deletes only what nothing references; compaction changes no row."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from lakehouse.history import create_tag, list_snapshots
from lakehouse.maintenance import compact_table, expire_table, live_files, whole_table_checksum
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from tests.support.landing import GROUP, simulated_batches


def _files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file() and p.suffix in (".parquet", ".avro")}


def test_expire_keeps_tags_and_newest_and_deletes_unreferenced_files(
    landed: LandingWriter, lake: LakehouseSettings
) -> None:
    table = landed.events
    first = list_snapshots(table)[0]
    create_tag(table, "keep-me", first.snapshot_id)
    rows_tagged = table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows
    orphan = Path(table.location().removeprefix("file://")) / "data" / "orphan-from-a-crashed-commit.parquet"
    orphan.write_bytes(b"not referenced by anything")

    report = expire_table(table, lake, orphan_min_age=timedelta(0))

    remaining = {s.snapshot_id for s in list_snapshots(table)}
    assert first.snapshot_id in remaining  # tagged
    assert len(remaining) == 1 + lake.keep_last_snapshots
    assert report.snapshots_expired == 6 - len(remaining)
    assert not orphan.exists()
    assert table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows == rows_tagged
    on_disk = {p.removeprefix("file://") for p in live_files(table)}
    for path in on_disk:
        assert Path(path).exists(), f"a live file was deleted: {path}"


def test_young_unreferenced_files_are_left_for_the_next_run(landed: LandingWriter, lake: LakehouseSettings) -> None:
    table = landed.events
    inflight = Path(table.location().removeprefix("file://")) / "data" / "in-flight.parquet"
    inflight.write_bytes(b"just written by a commit in progress")
    expire_table(table, lake, orphan_min_age=timedelta(hours=1))
    assert inflight.exists()


def test_compaction_rewrites_small_files_without_changing_rows(landed: LandingWriter) -> None:
    table = landed.events
    before = whole_table_checksum(table)
    files_before = table.inspect.files().num_rows
    report = compact_table(table)
    after = whole_table_checksum(table)
    assert before == after
    assert report.files_after < files_before
    partitions = {str(p) for p in table.inspect.files().column("partition").to_pylist()}
    assert table.inspect.files().num_rows == len(partitions)  # one file per partition now
    rows = table.scan(selected_fields=("topic", "partition", "offset")).to_arrow()
    assert rows.num_rows == before[0]


def test_compaction_while_ingest_commits_loses_no_commit(lake: LakehouseSettings) -> None:
    writer = LandingWriter(lake)
    batches = simulated_batches(12, 90, seed=9)
    for events, quarantine, offsets in batches[:6]:
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    other = LandingWriter(lake)  # a second process's view of the same tables

    def keep_ingesting() -> None:
        for events, quarantine, offsets in batches[6:]:
            other.commit(events, quarantine, GROUP, offsets, {}, max_attempts=50)

    thread = threading.Thread(target=keep_ingesting)
    thread.start()
    compact_table(writer.events)
    thread.join()
    expected = sum(b[0].num_rows for b in batches)
    writer.events.refresh()
    landed_rows = writer.events.scan(selected_fields=("topic", "partition", "offset")).to_arrow()
    coords = list(zip(*(landed_rows.column(c).to_pylist() for c in ("topic", "partition", "offset")), strict=True))
    assert len(coords) == expected
    assert len(set(coords)) == expected


def test_expiry_keeps_at_most_max_snapshots_untagged_however_young(tmp_path: Path) -> None:
    # a day of retention, but a commit's cost grows with every snapshot kept: the ceiling bounds it
    lake = LakehouseSettings(
        warehouse=str(tmp_path / "w"), snapshot_retention_hours=24, keep_last_snapshots=1, max_snapshots=3
    )
    writer = LandingWriter(lake)
    for events, quarantine, offsets in simulated_batches(6, 150):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    snaps = list_snapshots(writer.events)
    create_tag(writer.events, "settlement-run-1", snaps[0].snapshot_id)
    assert expire_table(writer.events, lake, orphan_min_age=timedelta(days=1)).snapshots_expired == 2
    assert [s.snapshot_id for s in list_snapshots(writer.events)] == [snaps[0].snapshot_id] + [
        s.snapshot_id for s in snaps[3:]
    ]  # the tag, and the newest three
    unlimited = lake.model_copy(update={"max_snapshots": 0})
    assert expire_table(writer.events, unlimited, orphan_min_age=timedelta(days=1)).snapshots_expired == 0


def test_a_tag_with_a_max_age_lapses_and_its_snapshot_expires(tmp_path: Path) -> None:
    # a crashed quality run leaves its tags behind: they lapse, and retention takes their snapshots
    from datetime import UTC, datetime

    from lakehouse.maintenance import expire_old_snapshots
    from lakehouse.store import Store
    from lakehouse.tables import EVENTS

    lake = LakehouseSettings(warehouse=str(tmp_path / "w"), keep_last_snapshots=1, max_snapshots=1)
    writer = LandingWriter(lake)
    for events, quarantine, offsets in simulated_batches(4, 100):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    first, second = (s.snapshot_id for s in list_snapshots(writer.events)[:2])
    store = Store(lake)
    store.move_tag(EVENTS, "quality-crashed", first, max_age=timedelta(hours=2))
    store.move_tag(EVENTS, "settlement-run-1", second)
    now = datetime.now(UTC)
    assert expire_old_snapshots(writer.events, lake, now + timedelta(hours=1)) == 1  # the third only
    assert set(writer.events.metadata.refs) == {"main", "quality-crashed", "settlement-run-1"}
    assert expire_old_snapshots(writer.events, lake, now + timedelta(hours=3)) == 1  # the lapsed tag's
    assert set(writer.events.metadata.refs) == {"main", "settlement-run-1"}
    assert first not in {s.snapshot_id for s in list_snapshots(writer.events)}
    store.remove_tag(EVENTS, "settlement-run-1")
    store.remove_tag(EVENTS, "settlement-run-1")  # already gone: nothing to do
    assert set(store.table(EVENTS).metadata.refs) == {"main"}
