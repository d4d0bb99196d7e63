"""API extracts in each format against DuckDB producing the same format from the same snapshot.

Usage: python bench/api.py [--rows 5000000] [--runs 3]
Builds a consumption table of N synthetic rows (and a small events table), serves it with
`mhhs serve` in a subprocess and streams /v1/consumption (role MDS: raw, all rows;
``versions=all``: a plain scan of the snapshot, the work DuckDB's baseline does, where the default
``latest`` would also pick the current version of each half hour) as Arrow IPC, Parquet, CSV and
NDJSON. Each is measured against DuckDB on the same snapshot and columns:

- arrow: ``SELECT <columns> FROM iceberg_scan(...)`` fetched to an Arrow table and written to a
  file as an Arrow IPC stream (the format the API sends; the time to the table in memory, the
  baseline until 2026-12, is reported beside it as ``ratio_to_duckdb_in_memory``);
- parquet / csv / ndjson: ``COPY (SELECT <columns> FROM iceberg_scan(...)) TO <file>``
  (FORMAT parquet with zstd, as the API writes; csv with a header; json, one object a line).

Baseline and API alternate, ``--runs`` times each per format; medians are reported. The API's
body is written to a file by curl (``--client httpx``: Python's client, which spends ~0.5 s of CPU
per 200 MB on the same two cores as the server), as DuckDB writes its own, and checked afterwards:
its row count (Arrow stream and trailer, Parquet footer, CSV lines, NDJSON lines and end line) must
equal the table's.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import numpy as np
import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.auth import issue_token
from api.settings import ApiSettings
from bench.bodies import body_rows, curl_get, timed_get
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


FORMATS = ("arrow", "parquet", "csv", "ndjson")
GOALS = {"arrow": 0.8, "parquet": 0.8, "csv": 0.5, "ndjson": 0.5}
RUN_FIGURES: tuple[str, ...] = ("baseline_s", "api_s", "ttfb_s", "api_bytes", "baseline_bytes", "rss")
RUN_FIGURES += ("baseline_cpu_s", "server_cpu_s", "client_cpu_s", "baseline_in_memory_s")
COPY_OPTIONS = {"parquet": "FORMAT parquet, COMPRESSION zstd", "csv": "FORMAT csv, HEADER", "ndjson": "FORMAT json"}


def duckdb_run(con: duckdb.DuckDBPyConnection, fmt: str, select: str, out: Path) -> tuple[float, int, int, float]:
    """(seconds, rows, bytes, seconds until in memory) of DuckDB producing ``fmt`` from ``select`` in ``out``.

    Arrow: the query fetched to an Arrow table (the "in memory" time), then written to ``out`` as an
    IPC stream, the format the API sends and curl writes to a file, as COPY writes the others. The
    fastest way measured: streaming DuckDB's record batches into the writer took 0.68 s where this
    took 0.54 s (2 M rows, medians of 3; 1 M-row batches 1.22 s).
    """
    t = time.perf_counter()
    if fmt == "arrow":
        result = con.sql(select).to_arrow_table()
        in_memory = time.perf_counter() - t
        with pa.output_stream(str(out), buffer_size=1 << 20) as sink, pa.ipc.new_stream(sink, result.schema) as w:
            w.write_table(result)  # buffered: unbuffered, each of the ~50 buffers a batch was a write call
        return time.perf_counter() - t, result.num_rows, out.stat().st_size, in_memory
    copied = con.execute(f"COPY ({select}) TO '{out}' ({COPY_OPTIONS[fmt]})").fetchone()
    seconds = time.perf_counter() - t
    return seconds, int(copied[0]) if copied else -1, out.stat().st_size, seconds


class PeakRss:
    """The peak RSS of a process, sampled every 50 ms; ``reset()`` starts a new window."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self.overall = 0
        self._ps = psutil.Process(pid)
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self._ps.memory_info().rss
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, rss)
            self.overall = max(self.overall, rss)
            time.sleep(0.05)

    def reset(self) -> None:
        self.peak = 0

    def stop(self) -> None:
        self._stop.set()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def wait_idle(pid: int, timeout: float = 30.0) -> None:
    """Until the server is idle: it writes the access log after a response ends, and that work is not
    left to slow the measurement that follows."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now - last < 0.01:
            return
        last = now


def client_cpu_seconds() -> float:
    """CPU seconds of the client so far: this process (httpx, or reading curl's pipe) and its finished
    children (curl)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of " + ",".join(FORMATS))
    parser.add_argument(
        "--client",
        choices=("curl", "httpx"),
        default="curl" if shutil.which("curl") else "httpx",
        help="what reads the API's bodies (curl: httpx spends ~0.5 s of CPU per 200 MB on the cores measured)",
    )
    args = parser.parse_args()
    get = curl_get if args.client == "curl" else timed_get
    formats = [f for f in args.formats.split(",") if f]
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        lake = LakehouseSettings(warehouse=str(Path(tmp) / "wh"))
        build(lake, args.rows)
        table = ensure_table(open_catalog(lake), lake, CONSUMPTION)
        snap = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
        con = connect()

        port = free_port()
        env = dict(os.environ, MHHS_WAREHOUSE=lake.warehouse, MHHS_API_DEV_MODE="true", MHHS_LOG_LEVEL="WARNING")
        server = subprocess.Popen(
            [sys.executable, "-m", "mhhs", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rss = PeakRss(server.pid)
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

        def url(fmt: str) -> str:  # versions=all: a plain scan of the snapshot, as DuckDB's
            return f"{base}/v1/consumption?format={fmt}&snapshot_id={snap}&versions=all"

        try:
            # warm-up (page cache, imports, entitlement history) and the columns the API sends
            timed_get(url("arrow"), headers, out_dir / "warm.arrow")
            wait_idle(server.pid)
            columns = pa.ipc.open_stream(pa.OSFile(str(out_dir / "warm.arrow"))).schema.names
            select = f"SELECT {', '.join(columns)} FROM {iceberg_scan_sql(table, snap)}"
            table_rows = int(con.sql(f"SELECT count(*) FROM {iceberg_scan_sql(table, snap)}").fetchone()[0])  # type: ignore[index]
            duckdb_run(con, "arrow", select, out_dir / "warm")
            for warm in out_dir.glob("warm*"):
                warm.unlink()  # ~400 MB each: not kept in the page cache beside the measured runs
            runs: dict[str, dict[str, list[float]]] = {f: {k: [] for k in RUN_FIGURES} for f in formats}
            for _ in range(args.runs):
                for fmt in formats:
                    target = out_dir / f"duckdb.{fmt}"
                    cpu = time.process_time()
                    seconds, rows, nbytes, in_memory = duckdb_run(con, fmt, select, target)
                    runs[fmt]["baseline_cpu_s"].append(time.process_time() - cpu)
                    runs[fmt]["baseline_in_memory_s"].append(in_memory)
                    if rows != table_rows:
                        raise AssertionError(f"DuckDB's {fmt} has {rows} rows of {table_rows}")
                    target.unlink(missing_ok=True)
                    runs[fmt]["baseline_s"].append(seconds)
                    runs[fmt]["baseline_bytes"].append(nbytes)
                    body = out_dir / f"api.{fmt}"
                    rss.reset()
                    server_cpu, client_cpu = cpu_seconds(server.pid), client_cpu_seconds()
                    ttfb, total, nbytes = get(url(fmt), headers, body)
                    runs[fmt]["client_cpu_s"].append(client_cpu_seconds() - client_cpu)
                    wait_idle(server.pid)
                    runs[fmt]["rss"].append(rss.peak)
                    runs[fmt]["server_cpu_s"].append(cpu_seconds(server.pid) - server_cpu)  # with its access log write
                    got = body_rows(fmt, body)
                    if got != table_rows:
                        raise AssertionError(f"API {fmt} body has {got} rows of {table_rows}")
                    body.unlink()
                    runs[fmt]["api_s"].append(total)
                    runs[fmt]["ttfb_s"].append(ttfb)
                    runs[fmt]["api_bytes"].append(nbytes)
            replay_ttfb, _, _ = timed_get(f"{base}/v1/replays/{TOPIC}?from_offsets=0:0&limit=1000", headers)
        finally:
            rss.stop()
            server.terminate()
            server.wait(timeout=30)

    extract: dict[str, dict[str, object]] = {}
    for fmt in formats:
        r = runs[fmt]
        b, a = median(r["baseline_s"]), median(r["api_s"])
        extract[fmt] = {
            "baseline": "iceberg_scan to Arrow, written as an IPC stream file"
            if fmt == "arrow"
            else f"COPY ... TO ({COPY_OPTIONS[fmt]})",
            "baseline_seconds": round(b, 3),
            "baseline_rows_per_s": round(table_rows / b),
            "baseline_bytes": int(median(r["baseline_bytes"])),
            "seconds": round(a, 3),
            "rows_per_s": round(table_rows / a),
            "bytes": int(median(r["api_bytes"])),
            "ttfb_s": round(median(r["ttfb_s"]), 3),
            "ratio_to_duckdb": round(b / a, 3),  # median baseline / median API
            # Arrow: DuckDB's table in memory, before it is written (the baseline until 2026-12)
            "ratio_to_duckdb_in_memory": round(median(r["baseline_in_memory_s"]) / a, 3) if fmt == "arrow" else None,
            "paired_ratios": [round(x / y, 3) for x, y in zip(r["baseline_s"], r["api_s"], strict=True)],
            "goal": GOALS[fmt],
            "meets_goal": b / a >= GOALS[fmt],
            "server_peak_rss_mb": round(max(r["rss"]) / 2**20),
            # CPU seconds, steadier than wall time on a shared machine: DuckDB's (this process), the
            # server's and the client's
            "baseline_cpu_s": round(median(r["baseline_cpu_s"]), 3),
            "server_cpu_s": round(median(r["server_cpu_s"]), 3),
            "client_cpu_s": round(median(r["client_cpu_s"]), 3),
            "runs": {k: [round(v, 3) for v in vs] for k, vs in r.items() if k in ("baseline_s", "api_s", "ttfb_s")},
        }
    figures = {
        "rows": table_rows,
        "runs": args.runs,
        "client": args.client,
        "versions": "all",
        "columns": len(columns),
        "duckdb_seconds": extract["arrow"]["baseline_seconds"] if "arrow" in extract else None,
        "extract": extract,
        "replay_ttfb_s": round(replay_ttfb, 3),
        "server_peak_rss_mb": round(rss.overall / 2**20),
    }
    lines: list[tuple[str, ...]] = []
    for fmt, e in extract.items():
        lines.append(
            (
                fmt,
                f"{e['baseline_seconds']:.2f}",
                f"{e['seconds']:.2f}",
                f"{e['rows_per_s']:,}",
                f"{e['ratio_to_duckdb']:.2f}"
                + (f" ({e['ratio_to_duckdb_in_memory']:.2f} in memory)" if fmt == "arrow" else ""),
                f"{e['goal']:.1f}" + ("" if e["meets_goal"] else " short"),
                f"{e['ttfb_s']:.3f}",
                f"{e['server_peak_rss_mb']:,}",
            )
        )
    lines.append(("replay", "-", "-", "-", "-", "-", f"{replay_ttfb:.3f}", "-"))
    titles = ("format", "duckdb s", "api s", "rows/s", "ratio", "goal", "1st byte s", "RSS MB")
    write_results("api", figures, lines, titles)


if __name__ == "__main__":
    main()
