"""Refine at scale: `refine_consumption` vs DuckDB's structured parse of the same IF-021 messages.

Usage: python bench/refine.py [--rows 5000000] [--runs 3]
Lands about rows / 48 IF-021 messages (a simulated day's documents, repeated at new offsets) in the
events table through the real writer, then, alternating, `--runs` times each:
- baseline: DuckDB (connected, its avro and iceberg extensions loaded: ~0.2 s, which refine also
  pays, once a run) reading the same events snapshot (`iceberg_scan`), `from_json` with the IF-021 structure
  declared + `unnest` of the periods, written to Parquet (`COPY ... TO`);
- refine: `rebuild_consumption` (read, parse, type, local dates and periods, flags and rejects,
  Iceberg commits with the watermark), the whole table from the events table.
Reports medians, rows/s and the ratio baseline / refine (goal >= 0.8). The registration refine is
not measured here (it needs registration traffic; the tests cover its results).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import write_results

TOPIC = "mhhs.consumption.if-021"


def land(warehouse: Path, rows: int) -> int:
    """Land about ``rows`` / 48 IF-021 messages; return the messages landed."""
    from ingest.decode import decode_batch
    from ingest.kafka_client import PolledRecords
    from ingest.validate import RecordValidator
    from lakehouse.settings import LakehouseSettings
    from lakehouse.writer import LandingWriter
    from market.simulation import Simulation, SimulationParams

    sim = Simulation(SimulationParams(mpans=2000, days=1, start=date(2026, 6, 10), seed=3, malformed_rate=0.0))
    docs = [r for r in sim.records() if r.topic == TOPIC]
    messages = -(-rows // 48)
    writer = LandingWriter(LakehouseSettings(warehouse=str(warehouse)))
    validator = RecordValidator(1 << 20)
    offsets = [0] * 6
    landed = 0
    while landed < messages:
        polled = PolledRecords.empty()
        for i in range(min(20_000, messages - landed)):
            rec = docs[(landed + i) % len(docs)]
            part = (landed + i) % 6
            polled.topics.append(rec.topic)
            polled.partitions.append(part)
            polled.offsets.append(offsets[part])
            offsets[part] += 1
            polled.timestamps_ms.append(1_781_049_600_000)
            polled.timestamp_types.append(0)
            polled.keys.append(rec.key)
            polled.values.append(rec.value)
            polled.headers.append(list(rec.headers))
        d = decode_batch(polled, validator, "bench", f"b{landed}", datetime.now(UTC))
        writer.commit(d.events, d.quarantine, "bench", d.next_offsets, {}, max_attempts=5)
        landed += len(polled)
    return landed


def baseline(warehouse: Path, out: Path) -> tuple[float, int]:
    """DuckDB: the events snapshot, from_json with the declared structure, unnest, to Parquet."""
    from lakehouse.catalog import open_catalog
    from lakehouse.duck import connect, iceberg_scan_sql
    from lakehouse.refine.consumption import _STRUCTURE
    from lakehouse.settings import LakehouseSettings
    from lakehouse.tables import EVENTS, ensure_table

    settings = LakehouseSettings(warehouse=str(warehouse))
    events = ensure_table(open_catalog(settings), settings, EVENTS)
    started = time.perf_counter()  # from a DuckDB with the iceberg extension loaded, as refine starts its run
    con = connect()
    con.execute(
        f"""
        COPY (
            WITH docs AS (
                SELECT mpan, settlement_date, transaction_id, "partition", "offset",
                       from_json(decode("value"), '{_STRUCTURE}').CustomBlock AS c
                FROM {iceberg_scan_sql(events)} WHERE topic = '{TOPIC}'
            )
            SELECT mpan, settlement_date, transaction_id, "partition", "offset",
                   c.measurementQuantityID AS quantity, unnest(c.periods, recursive := true)
            FROM docs
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
        """
    )
    seconds = time.perf_counter() - started
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return seconds, rows


def refine(warehouse: Path) -> tuple[float, int]:
    from lakehouse.catalog import open_catalog
    from lakehouse.refine import rebuild_consumption
    from lakehouse.settings import LakehouseSettings

    settings = LakehouseSettings(warehouse=str(warehouse))
    catalog = open_catalog(settings)
    started = time.perf_counter()
    commit = rebuild_consumption(catalog, settings)
    return time.perf_counter() - started, commit.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-refine-") as tmp:
        warehouse = Path(tmp) / "warehouse"
        started = time.perf_counter()
        messages = land(warehouse, args.rows)
        print(f"landed {messages:,} IF-021 messages in {time.perf_counter() - started:.1f} s")
        base, ours = [], []
        base_rows = ours_rows = 0
        for i in range(args.runs):
            seconds, base_rows = baseline(warehouse, Path(tmp) / f"baseline-{i}.parquet")
            base.append(seconds)
            seconds, ours_rows = refine(warehouse)
            ours.append(seconds)
            print(f"run {i + 1}: baseline {base[-1]:.2f} s, refine {ours[-1]:.2f} s")
    b, r = statistics.median(base), statistics.median(ours)
    figures = {
        "messages": messages,
        "baseline": {"seconds": base, "median_s": b, "rows": base_rows, "rows_per_s": base_rows / b},
        "refine": {"seconds": ours, "median_s": r, "rows": ours_rows, "rows_per_s": ours_rows / r},
        "ratio": b / r,
        "goal_ratio": 0.8,
    }
    write_results(
        "refine",
        figures,
        [
            ("DuckDB from_json + unnest -> Parquet", f"{base_rows:,}", f"{b:.2f}", f"{base_rows / b:,.0f}", ""),
            ("refine_consumption (rebuild)", f"{ours_rows:,}", f"{r:.2f}", f"{ours_rows / r:,.0f}", f"{b / r:.2f}"),
        ],
        ("", "rows", "median s", "rows/s", "ratio (goal >= 0.8)"),
    )


if __name__ == "__main__":
    main()
