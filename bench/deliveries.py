"""A 5 M-row consumption grant delivered as Parquet, against DuckDB's COPY of the same rows to Parquet.

Usage: python bench/deliveries.py [--rows 5000000] [--keep DIR]
Builds a consumption table of N synthetic rows, records a grant covering every MPAN, then, each in its
own process so their peak RSS is their own:
- baseline: DuckDB `COPY (SELECT <the delivered columns> FROM iceberg_scan(<same snapshot>)) TO ...
  (FORMAT parquet)`;
- delivery: `mhhs deliveries run --grant G --full` (entitled, masked for the third party, files, hashes,
  signature, manifest, recorded).
Reports both times, the ratio baseline / delivery (goal >= 0.7) and the delivery's peak RSS (goal < 1 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(warehouse: Path, rows: int) -> list[str]:
    """The consumption table; return the columns a consumption grant delivers."""
    from access.policy import load_policy
    from bench.api import build as build_consumption
    from deliveries.registry import available_columns
    from lakehouse.settings import LakehouseSettings

    build_consumption(LakehouseSettings(warehouse=str(warehouse)), rows)
    return list(available_columns(load_policy())["consumption"])


def _grant(store: object, out: Path) -> str:
    """A fresh grant over every MPAN, delivered under ``out`` (so runs over a kept table start clean)."""
    from access.grants import Grant
    from access.policy import load_policy
    from deliveries.registry import GrantRegistry

    grant_id = f"bench-{uuid.uuid4().hex[:8]}"
    GrantRegistry(store, load_policy()).add(  # type: ignore[arg-type]
        Grant(
            grant_id=grant_id,
            recipient="BENCH",
            dataset="consumption",
            schedule="0 6 * * *",
            destination=str(out),
            approved_by="bench",
            distributors=("10",),
            valid_from=datetime.now(UTC) - timedelta(days=1),
        )
    )
    return grant_id


def baseline(warehouse: Path, columns: list[str], out: Path) -> dict[str, float]:
    from lakehouse.duck import connect, iceberg_scan_sql
    from lakehouse.settings import LakehouseSettings
    from lakehouse.store import Store

    store = Store(LakehouseSettings(warehouse=str(warehouse)))
    table = store.table("consumption")
    started = time.perf_counter()
    con = connect()
    select = ", ".join(f'"{c}"' for c in columns if c != "mpan")
    con.execute(
        f"COPY (SELECT mpan, {select} FROM {iceberg_scan_sql(table, store.resolve('consumption'))}) "
        f"TO '{out / 'duckdb.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
    )
    return {"seconds": time.perf_counter() - started, "bytes": float((out / "duckdb.parquet").stat().st_size)}


def delivery(warehouse: Path, root: Path) -> dict[str, float]:
    from access.policy import load_policy
    from deliveries.runner import DeliveryRunner
    from deliveries.settings import DeliveriesSettings
    from deliveries.signing import load_or_create_key
    from lakehouse.settings import LakehouseSettings
    from lakehouse.store import Store

    settings = DeliveriesSettings(signing_key_file=root / "key.pem", jwks_file=root / "jwks.json")
    key = load_or_create_key(settings.signing_key_file, settings.jwks_file)
    store = Store(LakehouseSettings(warehouse=str(warehouse)))
    out = Path(tempfile.mkdtemp(dir=root))
    grant_id = _grant(store, out)
    runner = DeliveryRunner(store, load_policy(), key, settings, b"bench")
    started = time.perf_counter()
    [outcome] = runner.run([grant_id], full=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(out)
    return {"seconds": seconds, "rows": float(outcome.rows)}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(*args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True,
                          env={**os.environ, "MHHS_LOG_LEVEL": "WARNING"})  # fmt: skip
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--child", choices=["baseline", "delivery"])
    parser.add_argument("--root", type=Path)
    parser.add_argument("--columns", default="")
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this directory instead of a temporary one")
    args = parser.parse_args()
    if args.child:
        root = args.root
        if args.child == "baseline":
            figures = baseline(root / "warehouse", args.columns.split(","), root)
        else:
            figures = delivery(root / "warehouse", root)
        figures["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(figures))
        return
    from bench.harness import write_results

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        built = root / "columns.json"
        if built.exists():  # a kept table: each delivery run records its own grant, so runs do not interfere
            columns = json.loads(built.read_text())
        else:
            root.mkdir(parents=True, exist_ok=True)
            columns = build(root / "warehouse", args.rows)
            built.write_text(json.dumps(columns))
        base = _child("--child", "baseline", "--root", str(root), "--columns", ",".join(columns))
        ours = _child("--child", "delivery", "--root", str(root))
    ratio = base["seconds"] / ours["seconds"]
    figures = {
        "rows": args.rows,
        "baseline": {k: round(v, 2) for k, v in base.items()},
        "delivery": {k: round(v, 2) for k, v in ours.items()},
        "ratio_baseline_to_delivery": round(ratio, 3),
        "goals": {"ratio_at_least": 0.7, "peak_rss_mb_below": 1024},
    }
    rows = [
        ("DuckDB COPY ... TO parquet (baseline)", f"{base['seconds']:.1f}", f"{base['peak_rss_mb']:,.0f}"),
        ("mhhs deliveries run --full", f"{ours['seconds']:.1f}", f"{ours['peak_rss_mb']:,.0f}"),
        ("ratio baseline / delivery", f"{ratio:.3f}", ""),
    ]
    write_results("deliveries", figures, rows, ("path", "seconds", "peak RSS MB"))


if __name__ == "__main__":
    main()
