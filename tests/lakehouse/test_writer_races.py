"""Lost commit races: the retry commits the files it already wrote, or deletes them; nothing is orphaned."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from lakehouse import writer
from lakehouse.catalog import open_catalog
from lakehouse.offsets import committed_offsets
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import EVENTS, ensure_table
from lakehouse.writer import append_with_offsets
from tests.support.landing import GROUP, simulated_batches


def _split_by_partition(events: pa.Table, partition: int) -> tuple[pa.Table, dict[tuple[str, int], int]]:
    rows = events.filter(pc.equal(events["partition"], partition))
    nxt: dict[tuple[str, int], int] = {}
    for t, p, o in zip(
        rows["topic"].to_pylist(), rows["partition"].to_pylist(), rows["offset"].to_pylist(), strict=True
    ):
        nxt[(t, p)] = max(nxt.get((t, p), 0), o + 1)
    return rows, nxt


def _parquet_on_disk(lake: LakehouseSettings) -> set[str]:
    return {p.name for p in Path(lake.warehouse).rglob("events/data/**/*.parquet")}


def _parquet_in_table(lake: LakehouseSettings) -> set[str]:
    table = ensure_table(open_catalog(lake), lake, EVENTS)
    table.refresh()
    return {Path(t.file.file_path).name for t in table.scan().plan_files()}


def _stale_pair(lake: LakehouseSettings) -> tuple[Table, Table]:
    """The events table loaded twice: two writers that each think their metadata is current."""
    first = ensure_table(open_catalog(lake), lake, EVENTS)
    second = ensure_table(open_catalog(lake), lake, EVENTS)
    return first, second


def test_a_race_lost_to_another_members_partitions_commits_the_files_already_written(lake: LakehouseSettings) -> None:
    events = simulated_batches(1, 300)[0][0]
    mine, my_offsets = _split_by_partition(events, 0)
    theirs, their_offsets = _split_by_partition(events, 1)
    assert mine.num_rows and theirs.num_rows
    winner, loser = _stale_pair(lake)
    append_with_offsets(winner, theirs, GROUP, their_offsets, {}, max_attempts=5)
    commit = append_with_offsets(loser, mine, GROUP, my_offsets, {}, max_attempts=5)  # stale: loses, retries
    assert commit.attempts == 2
    assert commit.rows == mine.num_rows
    assert _parquet_on_disk(lake) == _parquet_in_table(lake)  # the retry wrote no second copy
    held = committed_offsets(ensure_table(open_catalog(lake), lake, EVENTS), GROUP)
    assert held == {**my_offsets, **their_offsets}


def test_a_race_lost_to_a_writer_that_landed_the_same_rows_deletes_the_files(lake: LakehouseSettings) -> None:
    events = simulated_batches(1, 300)[0][0]
    rows, offsets = _split_by_partition(events, 0)
    winner, zombie = _stale_pair(lake)
    append_with_offsets(winner, rows, GROUP, offsets, {}, max_attempts=5)
    commit = append_with_offsets(zombie, rows, GROUP, offsets, {}, max_attempts=5)  # a revoked member, late
    assert (commit.rows, commit.dropped, commit.attempts) == (0, rows.num_rows, 2)
    assert _parquet_on_disk(lake) == _parquet_in_table(lake)  # its files were deleted, not orphaned
    table = ensure_table(open_catalog(lake), lake, EVENTS)
    assert table.scan().to_arrow().num_rows == rows.num_rows


def test_a_race_lost_to_a_writer_that_landed_some_of_the_rows_writes_the_rest_anew(lake: LakehouseSettings) -> None:
    events = simulated_batches(1, 300)[0][0]
    rows, offsets = _split_by_partition(events, 0)
    cut = int(pc.min(rows["offset"]).as_py()) + rows.num_rows // 2
    first_half = rows.filter(pc.less(rows["offset"], cut))
    half_offsets = {tp: min(n, cut) for tp, n in offsets.items()}
    winner, loser = _stale_pair(lake)
    append_with_offsets(winner, first_half, GROUP, half_offsets, {}, max_attempts=5)
    commit = append_with_offsets(loser, rows, GROUP, offsets, {}, max_attempts=5)
    assert (commit.rows, commit.dropped, commit.attempts) == (
        rows.num_rows - first_half.num_rows,
        first_half.num_rows,
        2,
    )
    assert _parquet_on_disk(lake) == _parquet_in_table(lake)  # the first attempt's files were deleted
    landed = ensure_table(open_catalog(lake), lake, EVENTS).scan().to_arrow()
    assert sorted(landed["offset"].to_pylist()) == sorted(rows["offset"].to_pylist())  # each row once


def test_a_commit_reported_lost_that_landed_keeps_its_files(
    lake: LakehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = simulated_batches(1, 300)[0][0]
    rows, offsets = _split_by_partition(events, 0)
    real = writer._append_files
    calls = 0

    def lands_then_reports_a_conflict(table: Table, files: list[DataFile], summary: dict[str, str]) -> None:
        nonlocal calls
        calls += 1
        real(table, files, summary)
        if calls == 1:  # as a gateway retrying the request would report it
            raise CommitFailedException("409: the table changed")

    monkeypatch.setattr(writer, "_append_files", lands_then_reports_a_conflict)
    table = ensure_table(open_catalog(lake), lake, EVENTS)
    commit = append_with_offsets(table, rows, GROUP, offsets, {}, max_attempts=5)
    assert (commit.rows, commit.attempts, calls) == (rows.num_rows, 2, 1)
    assert _parquet_in_table(lake) and _parquet_on_disk(lake) == _parquet_in_table(lake)  # nothing deleted
    assert ensure_table(open_catalog(lake), lake, EVENTS).scan().to_arrow().num_rows == rows.num_rows
