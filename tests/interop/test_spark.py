"""Valid Iceberg for other engines: Apache Spark with Iceberg's Spark runtime reads what we wrote.

Spark opens the product's own SQLite catalog through Iceberg's JdbcCatalog and must see exactly the
rows, snapshots, tags and snapshot summaries that pyiceberg and DuckDB see; and, in the same
session, the scaled-out deployment: Iceberg's REST catalog server with the data on S3 (moto).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from devstack.iceberg_rest import rest_catalog_server
from devstack.spark import spark_jars
from lakehouse import duck
from lakehouse.catalog import open_catalog
from lakehouse.history import create_tag, list_snapshots
from lakehouse.maintenance import compact_table, content_checksum
from lakehouse.refine import refine_consumption, refine_registration
from lakehouse.settings import LakehouseSettings
from lakehouse.spark import catalog_needs, spark_session
from lakehouse.tables import CONSUMPTION, EVENTS, QUARANTINE, REGISTRATION, identifier
from tests.support.landing import land
from tests.support.servers import ACCESS_KEY, SECRET_KEY, s3_server

pytestmark = pytest.mark.interop


def _canon(value: Any) -> Any:
    """An engine-neutral form of one value (time zones, byte strings and decimals as text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, Decimal | date):
        return str(value)
    if isinstance(value, list):
        return tuple(_canon(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    return value


def _rows(table: pa.Table) -> Counter[tuple[Any, ...]]:
    names = sorted(table.column_names)
    return Counter(tuple(_canon(row[n]) for n in names) for row in table.select(names).to_pylist())


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> LakehouseSettings:
    settings = LakehouseSettings(warehouse=str(tmp_path_factory.mktemp("interop") / "warehouse"))
    writer = land(settings, 8, 250)
    create_tag(writer.events, "before-compaction")
    catalog = open_catalog(settings)
    refine_consumption(catalog, settings)
    refine_registration(catalog, settings)
    compact_table(writer.events)
    return settings


@pytest.fixture(scope="module")
def rest_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LakehouseSettings]:
    """The scaled-out deployment: Iceberg's REST catalog server over S3 storage, written by the product."""
    workdir = tmp_path_factory.mktemp("interop-rest")
    with s3_server() as s3, rest_catalog_server(workdir, s3, prefix="mhhs") as uri:
        settings = LakehouseSettings(
            catalog_name="mhhsrest",
            catalog_type="rest",
            catalog_uri=uri,
            warehouse=f"s3://{s3.bucket}/mhhs",
            s3_endpoint=s3.endpoint,
            s3_access_key_id=ACCESS_KEY,
            s3_secret_access_key=SECRET_KEY,  # type: ignore[arg-type]
        )
        land(settings, 8, 250)
        refine_consumption(open_catalog(settings), settings)
        yield settings


@pytest.fixture(scope="module")
def spark(lake: LakehouseSettings, rest_lake: LakehouseSettings) -> Iterator[Any]:
    logging.getLogger("py4j").setLevel(logging.ERROR)  # its exit-time chatter after pytest closes stderr
    jars = spark_jars([catalog_needs(lake), catalog_needs(rest_lake)])
    session = spark_session(lake, rest_lake, jars=jars, app_name="mhhs-interop-test")
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@pytest.mark.parametrize("name", [EVENTS, QUARANTINE, CONSUMPTION, REGISTRATION])
def test_spark_reads_every_row_and_column_as_pyiceberg_does(lake: LakehouseSettings, spark: Any, name: str) -> None:
    table = open_catalog(lake).load_table(identifier(lake, name))
    ours = table.scan().to_arrow()
    theirs = spark.table(f"{lake.catalog_name}.{identifier(lake, name)}").toArrow()
    assert ours.num_rows > 0
    assert theirs.num_rows == ours.num_rows
    assert sorted(theirs.column_names) == sorted(ours.column_names)
    assert _rows(theirs) == _rows(ours)


def test_counts_and_checksums_agree_across_spark_duckdb_and_pyiceberg(lake: LakehouseSettings, spark: Any) -> None:
    events = open_catalog(lake).load_table(identifier(lake, EVENTS))
    cols = ["topic", "partition", "offset", "value"]
    ours = content_checksum(events.scan(selected_fields=tuple(cols)).to_arrow())
    spark_rows = spark.table(f"{lake.catalog_name}.{identifier(lake, EVENTS)}").select(*cols).toArrow()
    with duck.connect() as con:
        sql = f'SELECT topic, "partition", "offset", value FROM {duck.iceberg_scan_sql(events)}'
        duck_rows = con.execute(sql).to_arrow_table()
    assert content_checksum(spark_rows) == ours
    assert content_checksum(duck_rows) == ours
    per_topic = spark.sql(
        f"SELECT topic, count(*) AS n FROM {lake.catalog_name}.{identifier(lake, EVENTS)} GROUP BY topic"
    ).collect()
    ours_per_topic = Counter(events.scan(selected_fields=("topic",)).to_arrow().column("topic").to_pylist())
    assert {r["topic"]: r["n"] for r in per_topic} == dict(ours_per_topic)


def test_spark_sees_the_history_tags_and_offsets_summaries(lake: LakehouseSettings, spark: Any) -> None:
    events = open_catalog(lake).load_table(identifier(lake, EVENTS))
    name = f"{lake.catalog_name}.{identifier(lake, EVENTS)}"
    snapshots = {s.snapshot_id: s for s in list_snapshots(events)}
    theirs = spark.sql(f"SELECT snapshot_id, operation, summary FROM {name}.snapshots").collect()
    assert {r["snapshot_id"] for r in theirs} == set(snapshots)
    assert any(r["operation"] == "replace" for r in theirs), "the compaction is a replace snapshot"
    for row in theirs:
        ours = events.metadata.snapshot_by_id(row["snapshot_id"])
        assert ours is not None and ours.summary is not None
        assert row["summary"].get("mhhs.offsets") == ours.summary.additional_properties.get("mhhs.offsets")
    tagged = next(s for s in snapshots.values() if "before-compaction" in s.tags)
    at_tag = spark.read.option("tag", "before-compaction").table(name)
    assert at_tag.count() == tagged.total_records
    cols = ["topic", "partition", "offset", "value"]
    pinned = events.scan(snapshot_id=tagged.snapshot_id, selected_fields=tuple(cols)).to_arrow()
    assert content_checksum(at_tag.select(*cols).toArrow()) == content_checksum(pinned)
    by_id = spark.read.option("snapshot-id", tagged.snapshot_id).table(name)
    assert by_id.count() == tagged.total_records


@pytest.mark.parametrize("name", [EVENTS, CONSUMPTION])
def test_spark_reads_the_rest_catalog_on_s3(rest_lake: LakehouseSettings, spark: Any, name: str) -> None:
    table = open_catalog(rest_lake).load_table(identifier(rest_lake, name))
    assert table.metadata_location.startswith("s3://")
    ours = table.scan().to_arrow()
    theirs = spark.table(f"{rest_lake.catalog_name}.{identifier(rest_lake, name)}").toArrow()
    assert ours.num_rows > 0 and theirs.num_rows == ours.num_rows
    assert _rows(theirs) == _rows(ours)
