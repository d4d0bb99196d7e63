"""Decoding a batch into Arrow: every value kept byte for byte, and the batch's Python copies let go."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

from ingest.decode import decode_batch
from ingest.validate import RecordValidator
from market.simulation import Simulation, SimulationParams
from tests.support.landing import polled_records


def test_every_value_lands_byte_for_byte_and_the_batch_no_longer_holds_them() -> None:
    sim = Simulation(SimulationParams(mpans=400, days=2, start=date(2026, 3, 28), seed=5, malformed_rate=0.05))
    every = list(sim.records())
    records = [r for r in every if r.value is None][:3] + every[:2500]
    polled = polled_records(records, {})
    sent = {
        (t, p, o): v for t, p, o, v in zip(polled.topics, polled.partitions, polled.offsets, polled.values, strict=True)
    }
    assert any(v is None for v in sent.values())  # tombstones, quarantined
    decoded = decode_batch(polled, RecordValidator(1 << 20), "w", "b", datetime.now(UTC))
    assert polled.values == []  # consumed: each value is held once, in Arrow
    landed = {}
    for table in (decoded.events, decoded.quarantine):
        cols = table.select(["topic", "partition", "offset", "value"]).to_pydict()
        coords = zip(cols["topic"], cols["partition"], cols["offset"], strict=True)
        landed.update(dict(zip(coords, cols["value"], strict=True)))
    assert decoded.events.num_rows > 1000 and decoded.quarantine.num_rows > 0
    assert landed == sent
    decoded.events.validate(full=True)


def test_the_mhhs_command_does_not_load_great_expectations_or_duckdb() -> None:
    # every `mhhs` process imports the whole command tree: the ingest worker's memory (goal < 512 MiB)
    # has no room for Great Expectations (~170 MB) or DuckDB (~30 MB), which only some commands use
    probe = "import sys, mhhs.cli; print(' '.join(m for m in ('great_expectations', 'duckdb') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
