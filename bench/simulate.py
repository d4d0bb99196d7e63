"""Simulator throughput: N IF-021 messages generated (and optionally published to Kafka).

Usage: python bench/simulate.py [--messages 1000000] [--kafka]
Baseline in the same run: orjson-serialising one prebuilt IF-021 message N times (the floor
for any JSON producer in Python). Reports messages/s, MB/s and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import broker, write_results
from ingest.kafka_client import publish
from ingest.topics import create_topics
from market.simulation import Simulation, SimulationParams


def if021(n: int):  # type: ignore[no-untyped-def]
    days = 50  # registrations (11 records per MPAN) stay a small share, as in a real market month
    sim = Simulation(SimulationParams(mpans=max(1, n // days + n // 1000), days=days, start=date(2026, 1, 1), seed=3))
    count = 0
    for rec in sim.records():
        if rec.interface == "IF-021":
            yield rec
            count += 1
            if count >= n:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--kafka", action="store_true", help="publish to Kafka as well as generating")
    args = parser.parse_args()
    n = args.messages

    sample = next(iter(if021(1)))
    message = orjson.loads(sample.value or b"{}")
    t = time.perf_counter()
    for _ in range(n):
        orjson.dumps(message)
    base_s = time.perf_counter() - t

    t = time.perf_counter()
    nbytes = 0
    produced = 0
    if args.kafka:
        with tempfile.TemporaryDirectory() as tmp:
            bootstrap, settings = broker(Path(tmp) / "kafka")
            create_topics(settings, bootstrap)

            def stream():  # type: ignore[no-untyped-def]
                nonlocal nbytes, produced
                for rec in if021(n):
                    nbytes += len(rec.value or b"")
                    produced += 1
                    yield rec.as_out()

            t = time.perf_counter()
            publish(bootstrap, settings.api_version_tuple(), stream())
            sim_s = time.perf_counter() - t
    else:
        for rec in if021(n):
            nbytes += len(rec.value or b"")
            produced += 1
        sim_s = time.perf_counter() - t
    mb = nbytes / 2**20
    mode = "generate + publish to Kafka" if args.kafka else "generate"
    figures = {
        "messages": produced,
        "megabytes": round(mb, 1),
        "mode": mode,
        "simulator": {
            "seconds": round(sim_s, 2),
            "msgs_per_s": round(produced / sim_s),
            "mb_per_s": round(mb / sim_s, 1),
        },
        "baseline_orjson_dumps": {"seconds": round(base_s, 2), "msgs_per_s": round(n / base_s)},
        "ratio_simulator_to_baseline": round((produced / sim_s) / (n / base_s), 3),
    }
    rows = [
        (f"simulator ({mode})", f"{produced:,}", f"{sim_s:.1f}", f"{produced / sim_s:,.0f}", f"{mb / sim_s:,.1f}"),
        ("baseline: orjson.dumps of one message", f"{n:,}", f"{base_s:.1f}", f"{n / base_s:,.0f}", "-"),
    ]
    write_results(
        "simulate_kafka" if args.kafka else "simulate", figures, rows, ("path", "messages", "seconds", "msgs/s", "MB/s")
    )


if __name__ == "__main__":
    main()
