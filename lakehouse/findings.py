"""Reads of the quality tables: the latest run of each date and the findings it vouches for."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.store import Store
from lakehouse.tables import QUALITY_FINDINGS, QUALITY_RUNS, TABLES


def latest_runs(store: Store) -> pa.Table:
    """The ``quality_runs`` rows of the latest run of each date (one row per suite)."""
    runs = store.read(QUALITY_RUNS)
    if runs.num_rows == 0:
        return runs
    ordered = runs.sort_by([("ended_at", "descending")])
    latest: dict[date, str] = {}
    for day, run_id in zip(ordered["utc_settlement_date"].to_pylist(), ordered["run_id"].to_pylist(), strict=True):
        latest.setdefault(day, run_id)
    pairs = pa.table(
        {
            "utc_settlement_date": pa.array(list(latest), pa.date32()),
            "run_id": pa.array(list(latest.values()), pa.large_string()),
        }
    )
    return runs.join(pairs, keys=["utc_settlement_date", "run_id"], join_type="inner")


def latest_findings(store: Store, date_from: date | None = None, date_to: date | None = None) -> pa.Table:
    """The findings of the latest run of each date (optionally in [date_from, date_to]), as Arrow."""
    findings = store.read(QUALITY_FINDINGS)
    runs = latest_runs(store)
    if runs.num_rows == 0 or findings.num_rows == 0:
        return TABLES[QUALITY_FINDINGS].arrow_schema.empty_table()
    pairs = runs.select(["utc_settlement_date", "run_id"]).group_by(["utc_settlement_date", "run_id"]).aggregate([])
    rows = findings.join(pairs, keys=["utc_settlement_date", "run_id"], join_type="inner")
    if date_from is not None:
        rows = rows.filter(pc.greater_equal(rows["utc_settlement_date"], pa.scalar(date_from, pa.date32())))
    if date_to is not None:
        rows = rows.filter(pc.less_equal(rows["utc_settlement_date"], pa.scalar(date_to, pa.date32())))
    return rows.select(findings.column_names).sort_by([("utc_settlement_date", "ascending"), ("rule", "ascending")])
