"""Ingest test helpers: publish simulated markets, run workers, compare the tables with Kafka."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import date
from pathlib import Path

from contract.topics import load_topic_catalogue
from ingest.kafka_client import publish, read_all
from ingest.settings import IngestSettings
from ingest.topics import create_topics
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import EVENTS, QUARANTINE
from market.simulation import Simulation, SimulationParams


def publish_market(bootstrap: str, settings: IngestSettings, **params: object) -> Simulation:
    """Simulate a market with ``params`` and publish every record to ``bootstrap``.

    The records published are kept in ``sim.published`` (a simulation runs once).
    """
    create_topics(settings, bootstrap)
    base: dict[str, object] = {"mpans": 150, "days": 2, "start": date(2026, 3, 28), "seed": 5}
    base.update(params)
    sim = Simulation(SimulationParams(**base))  # type: ignore[arg-type]
    records = list(sim.records())
    publish(bootstrap, settings.api_version_tuple(), (r.as_out() for r in records))
    sim.published = records  # type: ignore[attr-defined]
    return sim


def kafka_inventory(bootstrap: str, settings: IngestSettings) -> tuple[set[tuple[str, int, int]], Counter[str]]:
    """Every (topic, partition, offset) now in the MHHS topics, and the multiset of transaction IDs."""
    coords: set[tuple[str, int, int]] = set()
    txns: Counter[str] = Counter()
    for rec in read_all(bootstrap, settings.api_version_tuple(), load_topic_catalogue().names, timeout_s=120):
        coords.add((rec.topic, rec.partition, rec.offset))
        txn = dict(rec.headers).get("transactionID")
        if txn is not None:
            txns[txn.decode()] += 1
    return coords, txns


def table_inventory(lake: LakehouseSettings) -> tuple[list[tuple[str, int, int]], Counter[str]]:
    """Every (topic, partition, offset) in events + quarantine (with repeats), and transaction IDs."""
    coords: list[tuple[str, int, int]] = []
    txns: Counter[str] = Counter()
    for name in (EVENTS, QUARANTINE):
        t = read_table(lake, name, ["topic", "partition", "offset", "transaction_id"])
        coords += list(zip(t["topic"].to_pylist(), t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True))
        txns.update(x for x in t["transaction_id"].to_pylist() if x is not None)
    return coords, txns


def assert_exactly_once(bootstrap: str, settings: IngestSettings, lake: LakehouseSettings) -> int:
    """The tables hold every record in the topics exactly once; return how many."""
    produced, produced_txns = kafka_inventory(bootstrap, settings)
    landed, landed_txns = table_inventory(lake)
    dupes = [c for c, n in Counter(landed).items() if n > 1]
    assert not dupes, f"{len(dupes)} records landed more than once, e.g. {dupes[:3]}"
    missing = produced - set(landed)
    assert not missing, f"{len(missing)} records never landed, e.g. {sorted(missing)[:3]}"
    assert set(landed) == produced
    assert landed_txns == produced_txns
    return len(produced)


def ingest_env(bootstrap: str, lake: LakehouseSettings, group: str, **extra: str) -> dict[str, str]:
    """Environment for an ``mhhs ingest`` subprocess."""
    env = dict(os.environ)
    env.update(
        {
            "MHHS_KAFKA_BOOTSTRAP": bootstrap,
            "MHHS_WAREHOUSE": lake.warehouse,
            "MHHS_GROUP_ID": group,
            "MHHS_LOG_LEVEL": "WARNING",
            "MHHS_SESSION_TIMEOUT_MS": "6000",
        }
    )
    env.update(extra)
    return env


def spawn_ingest(env: dict[str, str], until_idle: float, log: Path, *more: str) -> subprocess.Popen[bytes]:
    """Start ``mhhs ingest --until-idle`` (and ``more`` arguments) as a separate process (so it can be killed)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mhhs", "ingest", "--until-idle", str(until_idle), *more],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def consumed_so_far(port: int) -> int | None:
    """Records an ingest worker has read from Kafka, from its Prometheus endpoint (None: not up yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("mhhs_ingest_records_consumed_total")))  # fmt: skip


def wait_until_consumed(port: int, records: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Block until the worker behind ``port`` has read at least ``records`` records (or fail the test)."""
    deadline = time.monotonic() + timeout_s
    while (consumed_so_far(port) or 0) < records:
        assert proc.poll() is None, "the ingest worker exited early"
        assert time.monotonic() < deadline, f"the worker read {consumed_so_far(port)} of {records} records"
        time.sleep(0.5)


def wait_until_landed(lake: LakehouseSettings, records: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Block until events + quarantine hold at least ``records`` rows (or fail the test)."""
    deadline = time.monotonic() + timeout_s

    def landed() -> int:
        try:
            return sum(read_table(lake, name, ["offset"]).num_rows for name in (EVENTS, QUARANTINE))
        except Exception:  # the tables may not exist yet
            return 0

    while (n := landed()) < records:
        assert proc.poll() is None, "the ingest worker exited early"
        assert time.monotonic() < deadline, f"{n} of {records} records landed"
        time.sleep(1.0)
