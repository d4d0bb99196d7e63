"""Quality suites at scale: one UTC day of 100,000 MPANs (AI, 48 periods: 4.8 M rows) plus their registration.

Usage: python bench/quality.py [--mpans 100000]
Builds the events, consumption and registration tables synthetically (vectorised; about 1% of the
MPANs carry a business fault), then, each in its own process so their peak RSS is their own:
- baseline: DuckDB evaluating the same rules' SQL directly (the frames' SQL and the violations'
  predicates), over the same partitions;
- quality: `QualityRunner.run` for that date (frames in DuckDB, Great Expectations deciding, findings
  and runs written to Iceberg, Data Docs built).
Reports both times (after imports), the ratio baseline / quality (goal >= 0.5) and the quality
process's peak RSS (goal < 2 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DAY = date(2026, 6, 10)
TOPIC = "mhhs.consumption.if-021"


def _mpans(n: int) -> list[str]:
    from contract.identifiers import mpan_check_digit

    bodies = [f"{10 + i % 14:02d}{i:010d}" for i in range(n)]
    return [b + str(mpan_check_digit(b)) for b in bodies]


def build(warehouse: Path, n: int) -> None:
    """The three tables for one day of ``n`` MPANs (every 100th with a fault)."""
    from contract.identifiers import DNO_BY_DISTRIBUTOR
    from lakehouse.settings import LakehouseSettings
    from lakehouse.store import Store
    from lakehouse.tables import CONSUMPTION, EVENTS, REGISTRATION, TABLES

    store = Store(LakehouseSettings(warehouse=str(warehouse)))
    mpans = np.array(_mpans(n))
    dips = np.array([f"{1_000_000_000 + i % 20:010d}" for i in range(n)])
    wrong = np.arange(n) % 100 == 7  # the wrong data service sends these
    sender = np.where(wrong, "9999999999", dips)
    txns = np.char.add("T-BENCH-", np.arange(n).astype(str))
    landed = datetime(2026, 6, 11, 6, tzinfo=UTC)
    gsp = np.array([DNO_BY_DISTRIBUTOR[m[:2]][1] for m in mpans])
    schema = TABLES[EVENTS].arrow_schema
    events = {
        "topic": pa.array([TOPIC] * n, pa.large_string()),
        "partition": pa.array(np.arange(n) % 6, pa.int32()),
        "offset": pa.array(np.arange(n) // 6, pa.int64()),
        "kafka_timestamp": pa.array([landed] * n, pa.timestamp("us", tz="UTC")),
        "kafka_timestamp_type": pa.array(np.zeros(n, dtype=np.int32)),
        "key": pa.array(np.char.encode(mpans), pa.large_binary()),
        "headers": pa.nulls(n, schema.field("headers").type),
        "value": pa.array([b"{}"] * n, pa.large_binary()),
        "interface_id": pa.array(["IF-021"] * n, pa.large_string()),
        "schema_version": pa.array(["001"] * n, pa.large_string()),
        "event_code": pa.array(["[ActivePower]"] * n, pa.large_string()),
        "transaction_id": pa.array(txns, pa.large_string()),
        "sender_dip_id": pa.array(sender, pa.large_string()),
        "sender_role": pa.array(["SDS"] * n, pa.large_string()),
        "sender_timestamp": pa.array(["2026-06-11T01:00:00Z"] * n, pa.large_string()),
        "mpan": pa.array(mpans, pa.large_string()),
        "gsp_group": pa.array(gsp, pa.large_string()),
        "settlement_date": pa.array([DAY] * n, pa.date32()),
        "landed_at": pa.array([landed] * n, pa.timestamp("us", tz="UTC")),
        "worker_id": pa.array(["bench"] * n, pa.large_string()),
        "batch_id": pa.array(["bench"] * n, pa.large_string()),
    }
    store.append(EVENTS, pa.table(events, schema=schema))

    cschema = TABLES[CONSUMPTION].arrow_schema
    chunk = 20_000  # MPANs per append
    start = np.datetime64(DAY.isoformat(), "us")
    for lo in range(0, n, chunk):
        idx = np.arange(lo, min(n, lo + chunk))
        rows = len(idx) * 48
        period = np.tile(np.arange(48), len(idx))
        m = np.repeat(idx, 48)
        kwh = np.round(0.1 + (m % 7) * 0.05 + period * 0.001, 3)
        kwh = np.where((m % 100 == 3) & (period == 10), -0.25, kwh)  # rule 8
        qi = np.where((m % 50 == 1) & (period < 4), "E2", "A")
        reason = np.where(qi == "A", None, np.where(m % 100 == 51, None, 2))  # rule 4 on some estimates
        cols = {
            "mpan": pa.array(mpans[m], pa.large_string()),
            "measurement_quantity": pa.array(np.full(rows, "AI"), pa.large_string()),
            "utc_settlement_date": pa.array(np.full(rows, DAY), pa.date32()),
            "period_end_utc": pa.array(start + ((period + 1) * 1_800_000_000).astype("timedelta64[us]")).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "local_settlement_date": pa.array(np.full(rows, DAY), pa.date32()),
            "local_period": pa.array(period + 1, pa.int32()),
            "consumption_kwh": pa.array(kwh).cast(pa.decimal128(12, 3)),
            "quality_indicator": pa.array(qi, pa.large_string()),
            "estimation_reason": pa.array(reason.tolist(), pa.int32()),
            "data_service_dip_id": pa.array(sender[m], pa.large_string()),
            "connection_type": pa.array(np.full(rows, "W"), pa.large_string()),
            "transaction_id": pa.array(txns[m], pa.large_string()),
            "sender_timestamp": pa.array(np.full(rows, "2026-06-11T01:00:00Z"), pa.large_string()),
            "source_topic": pa.array(np.full(rows, TOPIC), pa.large_string()),
            "source_partition": pa.array(m % 6, pa.int32()),
            "source_offset": pa.array(m // 6, pa.int64()),
            "landed_at": pa.array(np.full(rows, landed), pa.timestamp("us", tz="UTC")),
            "consumption_raw": pa.nulls(rows, pa.large_string()),
            "refine_flag": pa.nulls(rows, pa.large_string()),
        }
        store.append(CONSUMPTION, pa.table(cols, schema=cschema))

    rschema = TABLES[REGISTRATION].arrow_schema
    frm = DAY - timedelta(days=30)
    reg = []
    for role, who, dip in (("SUP", "SUPA", "2000000000"), ("SDS", "SDSA", None), ("MSS", "MSSA", "3000000000")):
        reg.append(
            pa.table(
                {
                    "mpan": pa.array(mpans, pa.large_string()),
                    "role": pa.array([role] * n, pa.large_string()),
                    "participant": pa.array([who] * n, pa.large_string()),
                    "effective_from": pa.array([frm] * n, pa.date32()),
                    "effective_to": pa.nulls(n, pa.date32()),
                    "status": pa.array(["active"] * n, pa.large_string()),
                    "segment": pa.array(["S"] * n, pa.large_string()),
                    "energisation": pa.array(["E"] * n, pa.large_string()),
                    "domestic": pa.array([True] * n),
                    "consent": pa.array(["H"] * n, pa.large_string()),
                    "transaction_id": pa.array(txns, pa.large_string()),
                    "participant_dip_id": pa.array(dips if dip is None else [dip] * n, pa.large_string()),
                },
                schema=rschema,
            )
        )
    store.append(REGISTRATION, pa.concat_tables(reg))


VIOLATIONS = {  # the rules' predicates over the frames: what the suites' expectations say, in SQL
    "events": "NOT mpan_valid OR occurrences > 1 OR (home_gsp_group IS NOT NULL AND gsp_group <> home_gsp_group)",
    "consumption": "periods <> 48 OR distinct_periods <> 48 OR NOT ends_ok OR versions > 1"
    " OR estimates_without_reason > 0 OR negative_periods > 0 OR imprecise_periods > 0"
    " OR max_outlier_ratio > 5 OR longest_zero_run > 11"
    " OR NOT energised OR participant IS DISTINCT FROM appointed_data_service OR NOT confirmed_before",
}


def baseline(warehouse: Path) -> dict[str, float]:
    """DuckDB, the same SQL, the violations selected directly."""
    import duckdb

    from lakehouse.settings import LakehouseSettings
    from lakehouse.store import Store
    from quality.frames import CONSUMPTION_SQL, EVENTS_SQL, KPI_SQL
    from quality.runner import QualityRunner
    from quality.settings import QualitySettings

    store = Store(LakehouseSettings(warehouse=str(warehouse)))
    runner = QualityRunner(store, QualitySettings())
    started = time.perf_counter()
    sources, _ = runner._sources(DAY, runner.pins())
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, src in (("ev", sources.events), ("cons", sources.consumption), ("hist", sources.history),
                      ("reg", sources.registration)):  # fmt: skip
        con.register(name, src)
    found = con.execute(f"SELECT count(*) FROM ({EVENTS_SQL}) WHERE {VIOLATIONS['events']}").fetchone()
    con.execute(f"CREATE TEMP TABLE consumption_frame AS {CONSUMPTION_SQL}", {"min_history": 5})
    bad = con.execute(f"SELECT count(*) FROM consumption_frame WHERE {VIOLATIONS['consumption']}").fetchone()
    kpi = con.execute(f"SELECT count(*) FROM ({KPI_SQL}) WHERE actual_share < 1").fetchone()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "violations": float(found[0] + bad[0] + kpi[0])}  # type: ignore[index]


def quality(warehouse: Path) -> dict[str, float]:
    """The product: frames, Great Expectations, findings and runs written, Data Docs built."""
    from lakehouse.settings import LakehouseSettings
    from lakehouse.store import Store
    from quality.runner import QualityRunner
    from quality.settings import QualitySettings

    store = Store(LakehouseSettings(warehouse=str(warehouse)))
    runner = QualityRunner(store, QualitySettings(docs_dir=warehouse.parent / "docs"))
    started = time.perf_counter()
    run = runner.run([DAY])
    seconds = time.perf_counter() - started
    findings = sum(len(o.findings) for d in run.validated for o in d.outcomes)
    return {"seconds": seconds, "findings": float(findings)}


def _peak_rss_mb() -> float:
    """This process's high-water RSS (VmHWM: reset by exec, unlike getrusage's maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(kind: str, warehouse: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--warehouse", str(warehouse)],
        capture_output=True, text=True, check=True, env={**os.environ, "MHHS_LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mpans", type=int, default=100_000)
    parser.add_argument("--child", choices=["baseline", "quality"])
    parser.add_argument("--warehouse", type=Path)
    args = parser.parse_args()
    if args.child:
        figures = baseline(args.warehouse) if args.child == "baseline" else quality(args.warehouse)
        figures["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(figures))
        return
    from bench.harness import write_results

    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / "warehouse"
        t0 = time.perf_counter()
        build(warehouse, args.mpans)
        build_s = time.perf_counter() - t0
        base = _child("baseline", warehouse)
        ours = _child("quality", warehouse)
    ratio = base["seconds"] / ours["seconds"]
    figures = {
        "mpans": args.mpans,
        "consumption_rows": args.mpans * 48,
        "build_seconds": round(build_s, 1),
        "baseline": {k: round(v, 2) for k, v in base.items()},
        "quality": {k: round(v, 2) for k, v in ours.items()},
        "ratio_baseline_to_quality": round(ratio, 3),
        "goals": {"ratio_at_least": 0.5, "peak_rss_mb_below": 2048},
    }
    rows = [
        ("DuckDB, the rules' SQL (baseline)", f"{base['seconds']:.1f}", f"{base['peak_rss_mb']:,.0f}",
         f"{base['violations']:,.0f} entities"),
        ("mhhs quality run (GX)", f"{ours['seconds']:.1f}", f"{ours['peak_rss_mb']:,.0f}",
         f"{ours['findings']:,.0f} findings"),
        ("ratio baseline / quality", f"{ratio:.3f}", "", ""),
    ]  # fmt: skip
    write_results("quality", figures, rows, ("path", "seconds", "peak RSS MB", "found"))


if __name__ == "__main__":
    main()
