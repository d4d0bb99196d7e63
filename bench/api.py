"""API extract and replay: time to first byte, throughput and server RSS, against DuckDB on the same snapshot.

Usage: python bench/api.py [--rows 5000000]
Builds a consumption table of N synthetic rows (and a small events table), serves it with
`mhhs serve` in a subprocess, streams /v1/consumption as Arrow IPC and as NDJSON (role MDS:
raw, all rows), and reads the same snapshot with DuckDB's iceberg_scan (the baseline).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.auth import issue_token
from api.settings import ApiSettings
from bench.commit_latency import TOPIC, sample_batch
from bench.harness import write_results
from lakehouse.catalog import open_catalog
from lakehouse.duck import connect, iceberg_scan_sql
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import CONSUMPTION, TABLES, ensure_table
from lakehouse.writer import LandingWriter


def build(lake: LakehouseSettings, rows: int) -> None:
    schema = TABLES[CONSUMPTION].arrow_schema
    table = ensure_table(open_catalog(lake), lake, CONSUMPTION)
    rng = np.random.default_rng(1)
    chunk = 1_000_000
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for lo in range(0, rows, chunk):
        n = min(chunk, rows - lo)
        idx = np.arange(lo, lo + n)
        day = (idx // (48 * 20_000)) % 30
        period = idx % 48
        end_us = np.datetime64("2026-01-01T00:00:00", "us") + (
            day * 86_400_000_000 + (period + 1) * 1_800_000_000
        ).astype("timedelta64[us]")
        mpan = np.char.add("10", np.char.zfill(((idx // 48) % 20_000).astype(str), 11))
        cols = {
            "mpan": pa.array(mpan.tolist(), pa.large_string()),
            "measurement_quantity": pa.array(["AI"] * n, pa.large_string()),
            "utc_settlement_date": pa.array((np.datetime64("2026-01-01") + day.astype("timedelta64[D]")), pa.date32()),
            "period_end_utc": pa.array(end_us, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
            "local_settlement_date": pa.array(
                (np.datetime64("2026-01-01") + day.astype("timedelta64[D]")), pa.date32()
            ),
            "local_period": pa.array(period + 1, pa.int32()),
            "consumption_kwh": pa.array(np.round(rng.gamma(2.0, 0.15, n), 3)).cast(pa.decimal128(12, 3)),
            "quality_indicator": pa.array(["A"] * n, pa.large_string()),
            "estimation_reason": pa.nulls(n, pa.int32()),
            "data_service_dip_id": pa.array(["1234567890"] * n, pa.large_string()),
            "connection_type": pa.array(["W"] * n, pa.large_string()),
            "transaction_id": pa.array(["T-bench"] * n, pa.large_string()),
            "sender_timestamp": pa.array(["2026-01-02T01:00:00Z"] * n, pa.large_string()),
            "source_topic": pa.array([TOPIC] * n, pa.large_string()),
            "source_partition": pa.array(np.zeros(n, np.int32)),
            "source_offset": pa.array(idx // 48, pa.int64()),
            "landed_at": pa.array([start] * n, pa.timestamp("us", tz="UTC")),
            "consumption_raw": pa.nulls(n, pa.large_string()),
            "refine_flag": pa.nulls(n, pa.large_string()),
        }
        table.append(pa.table(cols).cast(schema))
    writer = LandingWriter(lake)
    events = sample_batch(500)
    writer.commit(events, events.slice(0, 0), "bench", {(TOPIC, 0): events.num_rows}, {}, max_attempts=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed_get(url: str, headers: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to first byte, total seconds, bytes) of a streamed GET."""
    t0 = time.perf_counter()
    first = None
    total = 0
    with httpx.stream("GET", url, headers=headers, timeout=600) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_raw():
            if first is None:
                first = time.perf_counter() - t0
            total += len(chunk)
    return first or 0.0, time.perf_counter() - t0, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = LakehouseSettings(warehouse=str(Path(tmp) / "wh"))
        build(lake, args.rows)
        table = ensure_table(open_catalog(lake), lake, CONSUMPTION)
        snap = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
        con = connect()
        t = time.perf_counter()
        duck_rows = con.sql(f"SELECT * FROM {iceberg_scan_sql(table, snap)}").to_arrow_table().num_rows
        duck_s = time.perf_counter() - t

        port = free_port()
        env = dict(os.environ, MHHS_WAREHOUSE=lake.warehouse, MHHS_API_DEV_MODE="true", MHHS_LOG_LEVEL="WARNING")
        server = subprocess.Popen(
            [sys.executable, "-m", "mhhs", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = [0]
        stop = threading.Event()

        def watch() -> None:
            ps = psutil.Process(server.pid)
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], ps.memory_info().rss)
                except psutil.NoSuchProcess:
                    return
                time.sleep(0.1)

        threading.Thread(target=watch, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {
            "Authorization": "Bearer " + issue_token(ApiSettings(dev_mode=True), "MDSV", "MDS", ["replay", "extract"])
        }
        try:
            results = {}
            for fmt in ("arrow", "ndjson"):
                url = f"{base}/v1/consumption?format={fmt}&snapshot_id={snap}&versions=all"  # a plain scan, as DuckDB
                ttfb, total, nbytes = timed_get(url, headers)
                results[fmt] = {
                    "ttfb_s": round(ttfb, 3),
                    "seconds": round(total, 2),
                    "bytes": nbytes,
                    "rows_per_s": round(duck_rows / total),
                    "ratio_to_duckdb": round(duck_s / total, 3),
                }
            replay_ttfb, _, _ = timed_get(f"{base}/v1/replays/{TOPIC}?from_offsets=0:0&limit=1000", headers)
        finally:
            stop.set()
            server.terminate()
            server.wait(timeout=30)
    figures = {
        "rows": duck_rows,
        "duckdb_seconds": round(duck_s, 2),
        "duckdb_rows_per_s": round(duck_rows / duck_s),
        "extract": results,
        "replay_ttfb_s": round(replay_ttfb, 3),
        "server_peak_rss_mb": round(peak[0] / 2**20),
    }
    rows = [("duckdb iceberg_scan (baseline)", "-", f"{duck_s:.1f}", f"{duck_rows / duck_s:,.0f}", "1.00")]
    for fmt, r in results.items():
        rows.append(
            (
                f"API /v1/consumption {fmt}",
                f"{r['ttfb_s']:.3f}",
                f"{r['seconds']:.1f}",
                f"{r['rows_per_s']:,}",
                f"{r['ratio_to_duckdb']:.2f}",
            )
        )
    rows.append((f"replay first byte; server peak RSS {peak[0] / 2**20:,.0f} MB", f"{replay_ttfb:.3f}", "-", "-", "-"))
    write_results("api", figures, rows, ("path", "first byte s", "seconds", "rows/s", "vs duckdb"))


if __name__ == "__main__":
    main()
