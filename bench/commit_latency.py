"""Commit latency as the table ages: 2,000+ commits of 1,000 IF-021 rows through the ingest writer.

Usage: python bench/commit_latency.py [--commits 2000] [--control 300]
The managed run is the product's defaults with ``MHHS_MAX_SNAPSHOTS=500``: it merges manifests,
bounds metadata versions and expires snapshots every 50 commits, past the retention (168 h:
nothing, within a run) or beyond the 500 newest, so it is flat only after the ceiling; the control
runs, in the same process, never maintain (every snapshot kept): one with the writer's transaction
(``lakehouse.transaction``), one with pyiceberg's own, which recomputes the metadata on every read.
The figure of merit is p50(last 100 commits) / p50(first 100 commits): flat is ~1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Transaction

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, write_results
from ingest.decode import decode_batch
from ingest.kafka_client import PolledRecords
from ingest.validate import RecordValidator
from lakehouse import writer as writer_module
from lakehouse.settings import LakehouseSettings
from lakehouse.transaction import CommitTransaction
from lakehouse.writer import LandingWriter
from market.simulation import Simulation, SimulationParams

TOPIC = "mhhs.consumption.if-021"


def sample_batch(rows: int) -> pa.Table:
    sim = Simulation(
        SimulationParams(mpans=rows, days=1, start=date(2026, 1, 1), seed=2, business_fault_rate=0, malformed_rate=0)
    )
    polled = PolledRecords.empty()
    for rec in sim.records():
        if rec.interface != "IF-021" or len(polled) >= rows:
            continue
        polled.topics.append(TOPIC)
        polled.partitions.append(0)
        polled.offsets.append(len(polled.offsets))
        polled.timestamps_ms.append(1_767_225_600_000)
        polled.timestamp_types.append(0)
        polled.keys.append(rec.key)
        polled.values.append(rec.value)
        polled.headers.append(list(rec.headers))
    return decode_batch(polled, RecordValidator(1 << 20), "bench", "b", datetime.now(UTC)).events


CEILING = 500  # MHHS_MAX_SNAPSHOTS of the managed run


def run(
    warehouse: Path, commits: int, batch: pa.Table, maintain_every: int, transaction: type[Transaction]
) -> list[float]:
    """``commits`` commits through the writer, with the product's expiry (its default retention, at most
    ``CEILING`` snapshots) every ``maintain_every`` (more than ``commits``: never)."""
    writer_module.CommitTransaction = transaction  # type: ignore[assignment,misc]  # the transaction measured
    lake = LakehouseSettings(warehouse=str(warehouse), maintenance_every_commits=maintain_every, max_snapshots=CEILING)
    writer = LandingWriter(lake)
    empty = batch.slice(0, 0)
    n = batch.num_rows
    latencies = []
    for i in range(commits):
        rows = batch.set_column(
            batch.schema.get_field_index("offset"), batch.schema.field("offset"), pc.add(batch.column("offset"), i * n)
        )
        t = time.perf_counter()
        writer.commit(rows, empty, "bench", {(TOPIC, 0): (i + 1) * n}, {}, max_attempts=5)
        if (i + 1) % maintain_every == 0:
            writer.maintain()
        latencies.append(time.perf_counter() - t)
        if (i + 1) % 250 == 0:
            print(f"  {warehouse.name}: {i + 1} commits, last p50 {percentile(latencies[-100:], 0.5):.3f}s", flush=True)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--control", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    batch = sample_batch(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        managed = run(Path(tmp) / "managed", args.commits, batch, 50, CommitTransaction)
        control = run(Path(tmp) / "control", args.control, batch, 10**9, CommitTransaction)
        plain = run(Path(tmp) / "pyiceberg", args.control, batch, 10**9, Transaction)
        writer_module.CommitTransaction = CommitTransaction  # type: ignore[misc]

    def stats(lat: list[float]) -> dict[str, float]:
        first, last = lat[:100], lat[-100:]
        return {
            "commits": len(lat),
            "first100_p50_s": round(percentile(first, 0.5), 4),
            "last100_p50_s": round(percentile(last, 0.5), 4),
            "last100_p95_s": round(percentile(last, 0.95), 4),
            "growth_ratio": round(percentile(last, 0.5) / percentile(first, 0.5), 3),
        }

    figures = {
        "rows_per_commit": batch.num_rows,
        "managed": stats(managed),
        "control_no_expiry": stats(control),
        "control_no_expiry_pyiceberg_transaction": stats(plain),
    }
    rows: list[tuple[str, ...]] = [
        (
            name,
            str(s["commits"]),
            f"{s['first100_p50_s']:.3f}",
            f"{s['last100_p50_s']:.3f}",
            f"{s['last100_p95_s']:.3f}",
            f"{s['growth_ratio']:.2f}",
        )
        for name, s in (
            (f"expiry every 50, at most {CEILING} snapshots", figures["managed"]),
            ("no expiry", figures["control_no_expiry"]),
            ("no expiry, pyiceberg's Transaction", figures["control_no_expiry_pyiceberg_transaction"]),
        )
    ]
    write_results(
        "commit_latency",
        figures,
        rows,
        ("run", "commits", "p50 first 100 s", "p50 last 100 s", "p95 last 100 s", "last/first"),
    )


if __name__ == "__main__":
    main()
