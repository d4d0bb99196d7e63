"""Read paths on the same snapshot: the project's (Iceberg planning + Arrow reading) vs DuckDB.

Usage: python bench/scan.py [--commits 60] [--rows 1500]
Reads (1) one (topic, settlement date) partition, (2) one Kafka partition's offset range and
(3) the whole table, through ``lakehouse.read.scan_files`` and DuckDB's ``iceberg_scan``.
Reports files read / files in the table, rows/s for each, and project/DuckDB ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.commit_latency import TOPIC, sample_batch
from bench.harness import write_results
from lakehouse.duck import connect, iceberg_scan_sql
from lakehouse.read import scan_files
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter

DATES = [date(2026, 1, 1) + timedelta(days=i) for i in range(10)]


def build(warehouse: Path, commits: int, rows: int) -> LandingWriter:
    batch = sample_batch(rows)
    writer = LandingWriter(LakehouseSettings(warehouse=str(warehouse)))
    empty = batch.slice(0, 0)
    n = batch.num_rows
    for i in range(commits):
        day = DATES[i % len(DATES)]
        b = batch.set_column(
            batch.schema.get_field_index("offset"), batch.schema.field("offset"), pc.add(batch.column("offset"), i * n)
        )
        b = b.set_column(
            b.schema.get_field_index("settlement_date"),
            b.schema.field("settlement_date"),
            pa.array([day] * n, pa.date32()),
        )
        b = b.set_column(
            b.schema.get_field_index("partition"), b.schema.field("partition"), pa.array([i % 3] * n, pa.int32())
        )
        writer.commit(b, empty, "bench", {(TOPIC, i % 3): (i + 1) * n}, {}, max_attempts=5)
    return writer


def best_of(fn, repeat: int = 3) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    best = float("inf")
    rows = files = 0
    for _ in range(repeat):
        t = time.perf_counter()
        rows, files = fn()
        best = min(best, time.perf_counter() - t)
    return best, rows, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=60)
    parser.add_argument("--rows", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        writer = build(Path(tmp) / "wh", args.commits, args.rows)
        table = writer.events
        table.refresh()
        snap = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
        total_files = len(list(table.scan(snapshot_id=snap).plan_files()))
        con = connect()
        src = iceberg_scan_sql(table, snap)
        day = DATES[3]
        lo, hi = 10 * args.rows, 40 * args.rows
        cases = {
            "one topic+date partition": (
                And(EqualTo("topic", TOPIC), EqualTo("settlement_date", day.isoformat())),  # type: ignore[arg-type]
                (ds.field("topic") == TOPIC) & (ds.field("settlement_date") == pa.scalar(day, pa.date32())),
                f"topic = '{TOPIC}' AND settlement_date = DATE '{day.isoformat()}'",
            ),
            "offset range, one partition": (
                And(And(EqualTo("partition", 1), GreaterThanOrEqual("offset", lo)), LessThan("offset", hi)),  # type: ignore[arg-type]
                (ds.field("partition") == 1) & (ds.field("offset") >= lo) & (ds.field("offset") < hi),
                f'"partition" = 1 AND "offset" >= {lo} AND "offset" < {hi}',
            ),
            "whole table": (None, None, "TRUE"),
        }
        figures: dict[str, object] = {"files_in_table": total_files, "snapshot_id": snap}
        rows_out = []
        for name, (prune, arrow_filter, sql) in cases.items():
            from pyiceberg.expressions import AlwaysTrue

            def project(prune=prune, arrow_filter=arrow_filter):  # type: ignore[no-untyped-def]
                t, files = scan_files(table, prune or AlwaysTrue(), arrow_filter, snapshot_id=snap)
                return t.num_rows, files

            def duck(sql=sql):  # type: ignore[no-untyped-def]
                t = con.sql(f"SELECT * FROM {src} WHERE {sql}").to_arrow_table()
                return t.num_rows, -1

            p_s, p_rows, p_files = best_of(project)
            d_s, d_rows, _ = best_of(duck)
            assert p_rows == d_rows, (name, p_rows, d_rows)
            ratio = (p_rows / p_s) / (d_rows / d_s) if p_rows else float("nan")
            figures[name] = {
                "rows": p_rows,
                "files_read": p_files,
                "project_rows_per_s": round(p_rows / p_s),
                "duckdb_rows_per_s": round(d_rows / d_s),
                "ratio_project_to_duckdb": round(ratio, 3),
            }
            rows_out.append(
                (
                    name,
                    f"{p_files}/{total_files}",
                    f"{p_rows:,}",
                    f"{p_rows / p_s:,.0f}",
                    f"{d_rows / d_s:,.0f}",
                    f"{ratio:.2f}",
                )
            )
        # Polars on the same partition: native planning (polars-iceberg) vs planning with pyiceberg
        import os
        import warnings

        import polars as pl

        from lakehouse import frames
        from lakehouse.settings import LakehouseSettings

        lake = LakehouseSettings(warehouse=str(Path(tmp) / "wh"))

        def polars_read():  # type: ignore[no-untyped-def]
            lf = frames.scan(lake, "events", snapshot_id=snap)
            out = lf.filter((pl.col("topic") == TOPIC) & (pl.col("settlement_date") == day)).collect()
            return out.height, -1

        timings = {}
        for planner in ("plugin", "pyiceberg"):
            os.environ["POLARS_ICEBERG_PLANNER"] = planner
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                timings[planner] = best_of(polars_read)
        os.environ.pop("POLARS_ICEBERG_PLANNER")
        (n_s, n_rows, _), (y_s, y_rows, _) = timings["plugin"], timings["pyiceberg"]
        assert n_rows == y_rows == figures["one topic+date partition"]["rows"]  # type: ignore[index]
        figures["polars one partition"] = {
            "rows": n_rows,
            "native_planning_s": round(n_s, 4),
            "pyiceberg_planning_s": round(y_s, 4),
            "speedup_native": round(y_s / n_s, 2),
        }
        rows_out.append(
            ("polars one partition: native / pyiceberg planning", "", f"{n_rows:,}", f"{n_rows / n_s:,.0f}",
             f"{y_rows / y_s:,.0f} (pyiceberg)", f"{y_s / n_s:.2f}x")
        )  # fmt: skip
    write_results(
        "scan", figures, rows_out, ("read", "files read", "rows", "project rows/s", "duckdb rows/s", "project/duckdb")
    )


if __name__ == "__main__":
    main()
