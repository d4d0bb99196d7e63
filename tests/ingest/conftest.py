"""Ingest fixtures: a private lake per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.settings import LakehouseSettings


@pytest.fixture()
def lake(tmp_path: Path) -> LakehouseSettings:
    """A private SQLite catalog and warehouse for one test."""
    return LakehouseSettings(
        warehouse=str(tmp_path / "warehouse"),
        maintenance_every_commits=10,
        keep_last_snapshots=5,
        snapshot_retention_hours=0,
    )
