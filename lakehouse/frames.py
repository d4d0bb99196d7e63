"""Polars LazyFrames over the product's tables, pinned to a snapshot (for analysts)."""

from __future__ import annotations

import polars as pl

from lakehouse.catalog import open_catalog
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import ensure_table


def scan(settings: LakehouseSettings, name: str, snapshot_id: int | None = None) -> pl.LazyFrame:
    """A LazyFrame over table ``name`` as of ``snapshot_id`` (default: current)."""
    table = ensure_table(open_catalog(settings), settings, name)
    return pl.scan_iceberg(table, snapshot_id=snapshot_id)
