"""Simulated batches decoded by ingest and landed through the real writer (no broker needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from ingest.decode import decode_batch
from ingest.kafka_client import PolledRecords
from ingest.validate import RecordValidator
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from market.messages import SimRecord
from market.simulation import Simulation, SimulationParams

GROUP = "test-group"


def simulated_batches(batches: int, per_batch: int, seed: int = 3) -> list[tuple[pa.Table, pa.Table, dict]]:
    """Decoded batches of a simulated market, with Kafka coordinates assigned in publication order."""
    sim = Simulation(SimulationParams(mpans=80, days=2, start=date(2026, 3, 28), seed=seed, malformed_rate=0.01))
    return decoded_batches(list(sim.records()), batches, per_batch)


def decoded_batches(
    records: list[SimRecord],
    batches: int,
    per_batch: int,
    next_offset: dict[tuple[str, int], int] | None = None,
    validator: RecordValidator | None = None,
) -> list[tuple[pa.Table, pa.Table, dict]]:
    """``records`` decoded as ingest would, in batches, with offsets assigned per (topic, key-derived partition).

    ``next_offset`` carries on the numbering of earlier batches (it is updated); ``validator`` may be
    a looser one, to land records an older contract accepted.
    """
    next_offset = {} if next_offset is None else next_offset
    out = []
    validator = validator or RecordValidator(1 << 20)
    for b in range(batches):
        chunk = records[b * per_batch : (b + 1) * per_batch]
        if not chunk:
            break
        polled = polled_records(chunk, next_offset)
        d = decode_batch(polled, validator, "w", f"b{b}", datetime.now(UTC))
        out.append((d.events, d.quarantine, d.next_offsets))
    return out


def polled_records(records: list[SimRecord], next_offset: dict[tuple[str, int], int]) -> PolledRecords:
    """``records`` as one poll would return them, offsets assigned per (topic, key-derived partition)."""
    polled = PolledRecords.empty()
    for rec in records:
        part = int.from_bytes((rec.key or b"0")[-1:], "big") % 2
        off = next_offset.get((rec.topic, part), 0)
        next_offset[(rec.topic, part)] = off + 1
        polled.topics.append(rec.topic)
        polled.partitions.append(part)
        polled.offsets.append(off)
        polled.timestamps_ms.append(1_774_656_000_000 + off)
        polled.timestamp_types.append(0)
        polled.keys.append(rec.key)
        polled.values.append(rec.value)
        polled.headers.append(list(rec.headers))
    return polled


def land(settings: LakehouseSettings, batches: int, per_batch: int) -> LandingWriter:
    """Land ``batches`` simulated batches through the real writer (one snapshot each); return the writer."""
    writer = LandingWriter(settings)
    for events, quarantine, offsets in simulated_batches(batches, per_batch):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    return writer
