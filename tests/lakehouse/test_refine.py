"""The typed consumption table: incremental, exactly once, rebuildable identically, clock-aware."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.table import Table

from lakehouse.catalog import open_catalog
from lakehouse.duck import connect
from lakehouse.maintenance import compact_table, content_checksum
from lakehouse.offsets import committed_offsets
from lakehouse.refine import consumption, rebuild_consumption, refine_consumption
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import CONSUMPTION, EVENTS, ensure_table
from lakehouse.writer import LandingWriter, add_files_with_offsets
from tests.support.landing import GROUP, simulated_batches


def _rows(lake: LakehouseSettings) -> pa.Table:
    t = ensure_table(open_catalog(lake), lake, CONSUMPTION)
    t.refresh()
    return t.scan().to_arrow()


def _fingerprint(rows: pa.Table) -> tuple[int, str]:
    keyed = pa.table(
        {
            "topic": rows["source_topic"],
            "partition": rows["source_partition"],
            "offset": rows["source_offset"],
            "value": pa.array(
                [
                    f"{a}|{b}|{c}|{d}".encode()
                    for a, b, c, d in zip(
                        rows["period_end_utc"].to_pylist(),
                        rows["consumption_kwh"].to_pylist(),
                        rows["local_period"].to_pylist(),
                        rows["quality_indicator"].to_pylist(),
                        strict=True,
                    )
                ]
            ),
        }
    )
    return content_checksum(keyed)


def test_incremental_refine_is_exactly_once_and_equals_a_rebuild(lake: LakehouseSettings) -> None:
    writer = LandingWriter(lake)
    catalog = open_catalog(lake)
    batches = simulated_batches(12, 150)
    for events, quarantine, offsets in batches[:8]:
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    first = refine_consumption(catalog, lake)
    assert first.rows > 0
    assert refine_consumption(catalog, lake).rows == 0  # nothing new: nothing twice
    for events, quarantine, offsets in batches[8:]:
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    refine_consumption(catalog, lake)
    incremental = _rows(lake)
    coords = Counter(
        zip(
            incremental["source_topic"].to_pylist(),
            incremental["source_offset"].to_pylist(),
            incremental["source_partition"].to_pylist(),
            incremental["period_end_utc"].to_pylist(),
            strict=True,
        )
    )
    assert max(coords.values()) == 1
    if21 = sum(int(pa.compute.sum(pa.compute.equal(b[0]["interface_id"], "IF-021")).as_py() or 0) for b in batches)
    assert incremental.num_rows >= if21 * 45  # 48 periods each, a few business faults drop some

    rebuild_consumption(catalog, lake)
    rebuilt = _rows(lake)
    assert _fingerprint(rebuilt) == _fingerprint(incremental)


def test_local_periods_follow_the_clock_change(lake: LakehouseSettings) -> None:
    writer = LandingWriter(lake)
    for events, quarantine, offsets in simulated_batches(12, 150):  # UTC days 2026-03-28 and -29
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    refine_consumption(open_catalog(lake), lake)
    rows = _rows(lake).to_pylist()
    by_local: dict[tuple[str, str, object], list[int]] = {}
    for r in rows:
        if r["quality_indicator"] is None:
            continue
        by_local.setdefault((r["mpan"], r["measurement_quantity"], r["local_settlement_date"]), []).append(
            r["local_period"]
        )
    spring = [sorted(v) for (m, q, d), v in by_local.items() if str(d) == "2026-03-29"]
    complete = [v for v in spring if len(v) == len(set(v)) and len(v) >= 46]
    assert complete, "expected whole local days on the spring clock change"
    assert all(v == list(range(1, 47)) for v in complete)  # 46 periods in local time
    utc_counts = Counter((r["mpan"], r["utc_settlement_date"]) for r in rows if r["measurement_quantity"] == "AI")
    assert max(utc_counts.values()) >= 48  # a UTC day always has 48


@pytest.mark.parametrize("dated", ["by_clock", "row_by_row"])
def test_every_row_has_the_local_date_and_period_zoneinfo_gives(
    lake: LakehouseSettings, dated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if dated == "row_by_row":  # as for a window whose instants span too many half hours for one clock
        clock = consumption._clock
        monkeypatch.setattr(consumption, "_clock", lambda con, first, last: clock(con, None, None))
    writer = LandingWriter(lake)
    for events, quarantine, offsets in simulated_batches(12, 150)[:6]:  # across the spring clock change
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    refine_consumption(open_catalog(lake), lake)
    rows = _rows(lake)
    assert rows.num_rows > 0
    london = ZoneInfo("Europe/London")
    for end, local_date, period in zip(
        rows["period_end_utc"].to_pylist(),
        rows["local_settlement_date"].to_pylist(),
        rows["local_period"].to_pylist(),
        strict=True,
    ):
        start = end - timedelta(minutes=30)
        day = start.astimezone(london).date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=london)
        assert (local_date, period) == (day, int((start - midnight).total_seconds() // 1800) + 1)


def test_compaction_sorts_refined_files_by_the_tables_sort_order(lake: LakehouseSettings) -> None:
    writer = LandingWriter(lake)
    catalog = open_catalog(lake)
    batches = simulated_batches(12, 150)
    for events, quarantine, offsets in batches:
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
        refine_consumption(catalog, lake)  # a refine run per batch: partitions of several files
    table = ensure_table(catalog, lake, CONSUMPTION)
    one_day = table.scan(row_filter=f"utc_settlement_date = '{table.scan().to_arrow()['utc_settlement_date'][0]}'")
    table.append(one_day.to_arrow().slice(0, 100))  # and a file pyiceberg wrote (its strings: large_string)
    before = _fingerprint(_rows(lake))
    report = compact_table(table)
    assert report.partitions_rewritten > 0
    assert _fingerprint(_rows(lake)) == before
    for task in table.scan().plan_files():
        with table.io.new_input(task.file.file_path).open() as fh:
            rows = pq.read_table(fh, columns=["mpan", "period_end_utc"]).to_pylist()
        keys = [(r["mpan"], r["period_end_utc"]) for r in rows]
        assert keys == sorted(keys)


def test_files_written_for_a_window_another_run_refined_first_are_not_committed(lake: LakehouseSettings) -> None:
    writer = LandingWriter(lake)
    catalog = open_catalog(lake)
    for events, quarantine, offsets in simulated_batches(12, 150):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    table = ensure_table(catalog, lake, CONSUMPTION)
    con = connect()
    try:  # a run plans the window from an empty watermark and writes its files ...
        con.register("batch", ensure_table(catalog, lake, EVENTS).scan().to_arrow())
        refined = consumption.explode_consumption(
            con,
            f"SELECT * FROM batch WHERE topic = '{consumption.CONSUMPTION_TOPIC}'",
            (None, None),
            table,
        )
    finally:
        con.close()
    assert refined.files
    first = refine_consumption(catalog, lake)  # ... while another run refines everything first
    table.refresh()
    starts = {tp: 0 for tp in committed_offsets(table, "refine")}
    lost = add_files_with_offsets(table, refined.files, refined.rows, "refine", starts, starts, {}, 5)
    assert lost is None
    assert not any(Path(f.file_path.removeprefix("file://")).exists() for f in refined.files)
    assert _rows(lake).num_rows == first.rows  # nothing twice


def _one_days_if021(lake: LakehouseSettings) -> tuple[Table, pa.Table, date]:
    """The consumption table, and the IF-021 events of one settlement date of a landed market."""
    writer = LandingWriter(lake)
    catalog = open_catalog(lake)
    for events, quarantine, offsets in simulated_batches(12, 150):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    landed = ensure_table(catalog, lake, EVENTS).scan().to_arrow()
    if21 = landed.filter(pa.compute.equal(landed["topic"], consumption.CONSUMPTION_TOPIC))
    day = if21["settlement_date"][0].as_py()
    return ensure_table(catalog, lake, CONSUMPTION), if21.filter(pa.compute.equal(if21["settlement_date"], day)), day


@pytest.fixture()
def passes(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """What each COPY of refine was partitioned by (None: one unpartitioned file)."""
    seen: list[str | None] = []
    staged_copy = consumption.staged_copy

    def spy(con: Any, sql: str, t: Any, by: str | None = None) -> Any:
        seen.append(by)
        return staged_copy(con, sql, t, by)

    monkeypatch.setattr(consumption, "staged_copy", spy)
    return seen


def _explode(table: Table, events: pa.Table, dates: tuple[date, date]) -> consumption.Refined:
    con = connect()
    try:
        con.register("batch", events)
        return consumption.explode_consumption(con, "SELECT * FROM batch", dates, table)
    finally:
        con.close()


def test_a_window_of_one_settlement_date_is_one_file_with_the_rows_of_the_partitioned_pass(
    lake: LakehouseSettings, passes: list[str | None]
) -> None:
    table, if21, day = _one_days_if021(lake)
    one = _explode(table, if21, (day, day))
    partitioned = _explode(table, if21, (day, day + timedelta(days=1)))  # as if spanning two dates

    def read(files: list[Any]) -> pa.Table:
        parts = []
        for f in files:
            with table.io.new_input(f.file_path).open() as fh:
                parts.append(pq.read_table(fh))
        keys = ("source_partition", "source_offset", "period_end_utc")
        return pa.concat_tables(parts).sort_by([(k, "ascending") for k in keys])

    assert passes == [None, "bucket"]  # one unpartitioned pass, then the partitioned one
    assert len(one.files) == 1 and one.rows > 0
    assert f"/utc_settlement_date={day.isoformat()}/" in one.files[0].file_path
    assert read(one.files).equals(read(partitioned.files))
    assert one.rejects.num_rows == partitioned.rejects.num_rows == 0


def test_a_one_date_window_with_a_refused_row_sets_it_aside(lake: LakehouseSettings, passes: list[str | None]) -> None:
    table, if21, day = _one_days_if021(lake)
    clean = _explode(table, if21, (day, day)).rows
    values = if21["value"].to_pylist()
    values[0] = values[0].replace(
        b'"settlementPeriodEffectiveToDateTime":"', b'"settlementPeriodEffectiveToDateTime":"x', 1
    )
    assert values[0] != if21["value"][0].as_py()
    if21 = if21.set_column(if21.schema.get_field_index("value"), "value", pa.array(values, if21["value"].type))
    refined = _explode(table, if21, (day, day))
    assert passes == [None, None, "bucket"]  # clean: one file; with a refused row: set aside by the partitioned pass
    assert refined.rejects["reason"].to_pylist() == ["invalid_period_end"]
    assert sum(f.record_count for f in refined.files) == refined.rows == clean - 1


def test_a_one_date_window_of_no_rows_writes_no_file(lake: LakehouseSettings, passes: list[str | None]) -> None:
    table, if21, day = _one_days_if021(lake)
    refined = _explode(table, if21.slice(0, 0), (day, day))  # e.g. every IF-021 of the window quarantined
    assert passes == [None]
    assert (refined.files, refined.rows, refined.rejects.num_rows) == ([], 0, 0)
