"""The benchmark harness: a broker to measure against, and results written as JSON plus a short table."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from devstack.kafka import start_local_broker
from devstack.settings import DevstackSettings
from ingest.settings import IngestSettings

RESULTS = Path(__file__).resolve().parent / "results"


def broker(data_dir: Path) -> tuple[str, IngestSettings]:
    """MHHS_KAFKA_BOOTSTRAP if set, else a local broker under ``data_dir``.

    The local broker waits Kafka's default 3 s for a new group's members before assigning (the dev
    broker waits 0, so tests start at once), as a production cluster would: members of one
    ``--processes`` command then share the first assignment rather than one working alone until the
    first rebalance. The benchmarks time from a group's first assignment, so the wait is not counted.
    """
    settings = IngestSettings()
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap, settings
    local = DevstackSettings(kafka_data_dir=data_dir, kafka_initial_rebalance_delay_ms=3000)
    return start_local_broker(local.broker()).bootstrap, settings


def write_results(name: str, figures: dict[str, Any], rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> Path:
    """Write ``figures`` to bench/results/<name>.json and print ``rows`` as a table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    table = Table(title=name)
    for h in headers:
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(*r)
    Console().print(table)
    print(f"figures written to {path}")
    return path


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
