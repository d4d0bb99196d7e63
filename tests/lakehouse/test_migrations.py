"""Additive migrations: applied once, in order; old snapshots stay readable; others refused."""

from __future__ import annotations

import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import StringType

from lakehouse import tables as tables_module
from lakehouse.catalog import open_catalog
from lakehouse.migrations import Migration, MigrationError, migrate, schema_version
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import ACCESS_LOG, CONSUMPTION, EVENTS, TABLES, ensure_table, identifier, table_properties
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


def test_processes_racing_to_migrate_apply_it_once(landed: LandingWriter, lake: LakehouseSettings) -> None:
    add = Migration(EVENTS, 1, "add a note column", lambda u: u.add_column("note", StringType(), doc="free text"))
    first, second = (open_catalog(lake).load_table(identifier(lake, EVENTS)) for _ in range(2))  # both before it
    assert migrate(first, EVENTS, [add]) == [1]
    assert migrate(second, EVENTS, [add]) == []  # lost the race: re-read, found it applied
    assert schema_version(second) == 1 and second.schema().column_names.count("note") == 1


def test_a_destructive_migration_is_refused_and_changes_nothing(landed: LandingWriter) -> None:
    table = landed.events
    drop = Migration(EVENTS, 7, "drop a column", lambda u: u.delete_column("gsp_group"))
    with pytest.raises(MigrationError):
        migrate(table, EVENTS, [drop])
    table.refresh()
    assert "gsp_group" in table.schema().column_names
    assert schema_version(table) == 0


def test_an_older_table_gains_the_write_properties_added_since_and_keeps_its_own(lake: LakehouseSettings) -> None:
    catalog = open_catalog(lake)
    ident = identifier(lake, EVENTS)
    old = {k: v for k, v in table_properties(lake, EVENTS).items() if k != "write.parquet.page-row-limit"}
    old["write.parquet.row-group-limit"] = "7"  # an operator's own choice
    d = TABLES[EVENTS]
    catalog.create_namespace_if_not_exists(lake.namespace)
    catalog.create_table(ident, schema=d.schema, partition_spec=d.partition_spec, properties=old)
    table = ensure_table(catalog, lake, EVENTS)
    assert table.metadata.properties["write.parquet.page-row-limit"] == "128"
    assert table.metadata.properties["write.parquet.row-group-limit"] == "7"
    reloaded = open_catalog(lake).load_table(ident)  # committed, not just in memory
    assert reloaded.metadata.properties["write.parquet.page-row-limit"] == "128"
    ensure_table(catalog, lake, EVENTS)  # nothing missing: no further commit
    assert len(open_catalog(lake).load_table(ident).metadata.metadata_log) == len(reloaded.metadata.metadata_log)
    narrow = ensure_table(catalog, lake, CONSUMPTION)  # small rows: Iceberg's page default, not 128 rows
    assert "write.parquet.page-row-limit" not in narrow.metadata.properties


def test_a_table_whose_properties_cannot_be_added_still_opens(lake: LakehouseSettings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ensure_table(open_catalog(lake), lake, EVENTS)
    catalog = open_catalog(lake)
    table = catalog.load_table(identifier(lake, EVENTS))

    def refuse(*_: object, **__: object) -> None:
        raise PermissionError("read-only credentials")

    monkeypatch.setattr(type(table), "transaction", refuse)
    monkeypatch.setattr(tables_module, "table_properties", lambda s, n=None: {"mhhs.new-property": "1"})
    opened = ensure_table(catalog, lake, EVENTS)  # logged, not raised
    assert "mhhs.new-property" not in opened.metadata.properties


def test_an_access_log_made_before_checksum_algorithm_gains_the_column(lake: LakehouseSettings) -> None:
    catalog = open_catalog(lake)
    d = TABLES[ACCESS_LOG]
    old = Schema(*(f for f in d.schema.fields if f.name != "checksum_algorithm"))
    catalog.create_namespace_if_not_exists(lake.namespace)
    catalog.create_table(identifier(lake, ACCESS_LOG), schema=old, partition_spec=d.partition_spec)
    table = ensure_table(catalog, lake, ACCESS_LOG)
    assert "checksum_algorithm" in table.schema().column_names
    assert schema_version(table) == 1
    field_id = d.schema.find_field("checksum_algorithm").field_id
    assert table.schema().find_field("checksum_algorithm").field_id == field_id  # as a new table declares it
