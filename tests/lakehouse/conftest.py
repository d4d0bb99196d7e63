"""Lakehouse fixtures: a private SQLite catalog with batches landed through the real writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from tests.support.landing import GROUP, simulated_batches


@pytest.fixture()
def lake(tmp_path: Path) -> LakehouseSettings:
    return LakehouseSettings(warehouse=str(tmp_path / "warehouse"), keep_last_snapshots=3, snapshot_retention_hours=0)


@pytest.fixture()
def landed(lake: LakehouseSettings) -> LandingWriter:
    """Six batches landed through the writer (six snapshots on the events table)."""
    writer = LandingWriter(lake)
    for events, quarantine, offsets in simulated_batches(6, 150):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    return writer
