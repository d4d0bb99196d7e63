"""Additive migrations: applied once, in order; old snapshots stay readable; others refused."""

from __future__ import annotations

import pytest
from pyiceberg.types import StringType

from lakehouse.migrations import Migration, MigrationError, migrate, schema_version
from lakehouse.tables import EVENTS
from lakehouse.writer import LandingWriter


def test_an_additive_migration_keeps_old_snapshots_readable(landed: LandingWriter) -> None:
    table = landed.events
    old_snapshot = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
    rows_before = table.scan(snapshot_id=old_snapshot).to_arrow()
    add = Migration(EVENTS, 1, "add a note column", lambda u: u.add_column("note", StringType(), doc="free text"))
    assert migrate(table, EVENTS, [add]) == [1]
    assert migrate(table, EVENTS, [add]) == []  # applied once
    assert schema_version(table) == 1
    assert "note" in table.schema().column_names
    again = table.scan(snapshot_id=old_snapshot).to_arrow()
    assert again.num_rows == rows_before.num_rows
    now = table.scan(selected_fields=("offset", "note")).to_arrow()
    assert now["note"].null_count == now.num_rows


def test_a_destructive_migration_is_refused_and_changes_nothing(landed: LandingWriter) -> None:
    table = landed.events
    drop = Migration(EVENTS, 7, "drop a column", lambda u: u.delete_column("gsp_group"))
    with pytest.raises(MigrationError):
        migrate(table, EVENTS, [drop])
    table.refresh()
    assert "gsp_group" in table.schema().column_names
    assert schema_version(table) == 0
