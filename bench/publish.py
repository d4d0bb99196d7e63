"""Publish throughput: `mhhs publish FILE` vs a raw kafka-python producer sending the same bytes.

Usage: python bench/publish.py [--messages 100000] [--runs 3]
Builds N IF-021 records once (a simulated day's documents, repeated to N, ~6.8 kB each), then,
`--runs` times each, in turn (each of the three goes first once in every three runs, as the machine
may be shared), every run into a fresh topic with the partitions and configs of the product's plan
for `mhhs.consumption.if-021` (`ingest.topics.topic_plans`):
- baseline: a raw `KafkaProducer` with the product's settings (acks=all, idempotence, zstd,
  linger_ms=20, batch_size=512 KiB, max_request_size=8 MiB: the same settings, so the ratio measures
  the product's overhead, not its tuning), sending prebuilt key/value/header lists, then flush;
- publish: `mhhs publish FILE` in process (the typer app, as a user runs it) on a JSON Lines file
  written (and fsynced) just before, so reading and parsing the file is included;
- memory: `ingest.kafka_client.publish` alone over the same records in memory (the path
  `mhhs simulate` to Kafka uses, with its progress callback), to show what the file costs.
Each timing spans producer creation to close. After each run the topic's end offsets must sum to N.
Reports medians, msg/s and MB/s (key + value + header bytes) and the ratios baseline time / product
time (goal >= 0.8).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import broker, write_results
from devstack.kafka import stop_local_broker
from devstack.settings import DevstackSettings
from ingest.kafka_client import TopicPlan, end_offsets, ensure_topics, publish
from ingest.settings import IngestSettings
from ingest.topics import create_topics, topic_plans
from market.jsonl import write_records
from market.messages import SimRecord
from market.simulation import Simulation, SimulationParams

TOPIC = "mhhs.consumption.if-021"


def build(n: int) -> list[SimRecord]:
    """N IF-021 records: one simulated day's documents, repeated in order to N.

    Each repeat has its own value bytes (as records parsed from a file have), not a shared object.
    """
    sim = Simulation(SimulationParams(mpans=2000, days=1, start=date(2026, 6, 10), seed=3, malformed_rate=0.0))
    docs = [r for r in sim.records() if r.interface == "IF-021"]
    return [
        dataclasses.replace(d, value=bytes(memoryview(d.value or b""))) for d in (docs[i % len(docs)] for i in range(n))
    ]


def record_bytes(records: list[SimRecord]) -> int:
    return sum(
        len(r.key or b"") + len(r.value or b"") + sum(len(k.encode()) + len(v) for k, v in r.headers) for r in records
    )


def baseline(bootstrap: str, api: tuple[int, ...], topic: str, records: list[SimRecord]) -> float:
    """Seconds for a raw KafkaProducer, the product's settings, to send and flush ``records``."""
    from kafka import KafkaProducer

    sends = [(r.value, r.key, list(r.headers)) for r in records]
    started = time.perf_counter()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        api_version=api,
        acks="all",
        enable_idempotence=True,
        compression_type="zstd",
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    for value, key, headers in sends:
        producer.send(topic, value=value, key=key, headers=headers)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


def publish_cli(bootstrap: str, path: Path) -> float:
    """Seconds for `mhhs publish FILE`, in process through the typer app."""
    from typer.testing import CliRunner

    from mhhs.cli import app
    from mhhs.logs import configure_logging

    runner = CliRunner()
    started = time.perf_counter()
    result = runner.invoke(app, ["publish", str(path)], env={"MHHS_KAFKA_BOOTSTRAP": bootstrap})
    seconds = time.perf_counter() - started
    configure_logging("WARNING")  # the command logged to the runner's stderr, closed now
    if result.exit_code != 0:
        raise SystemExit(f"mhhs publish failed ({result.exit_code}): {result.output}")
    return seconds


def publish_memory(bootstrap: str, api: tuple[int, ...], topic: str, records: list[SimRecord]) -> float:
    """Seconds for `publish()` over the records in memory, as `mhhs simulate` calls it."""
    outs = [dataclasses.replace(r, topic=topic).as_out() for r in records]
    progress: list[int] = []
    started = time.perf_counter()
    publish(bootstrap, api, iter(outs), on_progress=progress.append)
    return time.perf_counter() - started


def check(bootstrap: str, api: tuple[int, ...], topic: str, n: int) -> None:
    landed = sum(end_offsets(bootstrap, api, [topic]).values())
    if landed != n:
        raise SystemExit(f"{topic}: {landed} records at the log end, expected {n}")


def figures_of(seconds: list[float], n: int, nbytes: int) -> dict[str, object]:
    m = statistics.median(seconds)
    return {"seconds": seconds, "median_s": m, "msg_per_s": n / m, "mb_per_s": nbytes / m / 1e6}


def measure(
    bootstrap: str, settings: IngestSettings, root: Path, records: list[SimRecord], runs: int
) -> tuple[dict[str, list[float]], TopicPlan]:
    """Alternate baseline, `mhhs publish FILE` and `publish()` ``runs`` times (each first in turn); seconds."""
    n = len(records)
    api = settings.api_version_tuple()
    create_topics(settings, bootstrap)  # the catalogue, as `mhhs publish` would on a fresh broker
    plan = next(p for p in topic_plans(settings) if p.name == TOPIC)
    tag = uuid.uuid4().hex[:8]
    names = {(kind, i): f"bench.publish.{tag}.{kind}-{i}" for kind in ("base", "cli", "mem") for i in range(runs)}
    ensure_topics(bootstrap, api, [TopicPlan(name, plan.partitions, plan.configs) for name in names.values()])
    times: dict[str, list[float]] = {"base": [], "cli": [], "mem": []}
    for i in range(runs):
        order = ("base", "cli", "mem")[i % 3 :] + ("base", "cli", "mem")[: i % 3]  # each goes first in turn
        for kind in order:
            topic = names[kind, i]
            if kind == "base":
                times[kind].append(baseline(bootstrap, api, topic, records))
            elif kind == "cli":
                path = root / f"publish-{i}.jsonl"
                with path.open("wb") as fh:
                    write_records((dataclasses.replace(r, topic=topic) for r in records), fh)
                    fh.flush()
                    os.fsync(fh.fileno())  # on disk, as a file written earlier would be (and in the page cache)
                times[kind].append(publish_cli(bootstrap, path))
                path.unlink()
            else:
                times[kind].append(publish_memory(bootstrap, api, topic, records))
            check(bootstrap, api, topic, n)
        print(
            f"run {i + 1}: baseline {times['base'][-1]:.2f} s, mhhs publish {times['cli'][-1]:.2f} s, "
            f"publish() in memory {times['mem'][-1]:.2f} s"
        )
    return times, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n = args.messages
    records = build(n)
    nbytes = record_bytes(records)
    print(f"{n:,} IF-021 records, {nbytes / n / 1000:.1f} kB each on average")
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        root = Path(tmp)
        bootstrap, settings = broker(root / "kafka")
        try:
            times, plan = measure(bootstrap, settings, root, records, args.runs)
        finally:
            if not settings.kafka_bootstrap:  # ours: do not leave it running over a deleted directory
                stop_local_broker(DevstackSettings(kafka_data_dir=root / "kafka").broker())
    b, c, m = (statistics.median(times[k]) for k in ("base", "cli", "mem"))
    figures = {
        "messages": n,
        "bytes": nbytes,
        "partitions": plan.partitions,
        "settings": {"acks": "all", "idempotence": True, "compression": "zstd", "linger_ms": 20, "batch_kib": 512},
        "baseline": figures_of(times["base"], n, nbytes),
        "publish_file": figures_of(times["cli"], n, nbytes),
        "publish_memory": figures_of(times["mem"], n, nbytes),
        "ratio": b / c,
        "ratio_memory": b / m,
        "goal_ratio": 0.8,
    }
    write_results(
        "publish",
        figures,
        [
            ("raw KafkaProducer, same settings", f"{b:.2f}", f"{n / b:,.0f}", f"{nbytes / b / 1e6:,.1f}", ""),
            ("mhhs publish FILE", f"{c:.2f}", f"{n / c:,.0f}", f"{nbytes / c / 1e6:,.1f}", f"{b / c:.2f}"),
            ("publish() in memory (simulate)", f"{m:.2f}", f"{n / m:,.0f}", f"{nbytes / m / 1e6:,.1f}", f"{b / m:.2f}"),
        ],
        ("", "median s", "msg/s", "MB/s", "ratio (goal >= 0.8)"),
    )


if __name__ == "__main__":
    main()
