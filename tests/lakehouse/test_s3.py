"""Catalogs on S3-compatible storage (moto's server, a real HTTP S3 endpoint), by settings alone.

Two catalogs: the embedded SQL catalog, and Apache Iceberg's REST catalog server from Maven Central.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.iceberg_rest import rest_catalog_server
from lakehouse.catalog import open_catalog
from lakehouse.history import create_tag, list_snapshots
from lakehouse.maintenance import compact_table, expire_table, whole_table_checksum
from lakehouse.refine import refine_consumption
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from tests.support.landing import GROUP, simulated_batches
from tests.support.servers import ACCESS_KEY, SECRET_KEY, s3_server


@pytest.fixture(params=["sql", "rest"])
def s3_lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LakehouseSettings]:
    """The product's settings for a catalog on S3: the SQL catalog, or Iceberg's own REST server."""
    with s3_server() as s3, contextlib.ExitStack() as stack:
        common = {
            "s3_endpoint": s3.endpoint,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "keep_last_snapshots": 2,
            "snapshot_retention_hours": 0,
        }
        if request.param == "sql":
            yield LakehouseSettings(
                warehouse=f"s3://{s3.bucket}/mhhs", catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}", **common
            )
        else:
            uri = stack.enter_context(rest_catalog_server(tmp_path, s3, prefix="mhhs"))
            yield LakehouseSettings(catalog_type="rest", catalog_uri=uri, warehouse=f"s3://{s3.bucket}/mhhs", **common)


def test_land_read_tag_refine_compact_and_expire_on_s3(s3_lake: LakehouseSettings) -> None:
    writer = LandingWriter(s3_lake)
    assert writer.events.location().startswith("s3://warehouse/mhhs")
    batches = simulated_batches(6, 150)
    for events, quarantine, offsets in batches:
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    expected = sum(b[0].num_rows for b in batches)
    assert writer.events.scan().to_arrow().num_rows == expected
    create_tag(writer.events, "on-s3", list_snapshots(writer.events)[0].snapshot_id)
    assert refine_consumption(open_catalog(s3_lake), s3_lake).rows > 0
    before = whole_table_checksum(writer.events)
    compact_table(writer.events)
    assert whole_table_checksum(writer.events) == before
    report = expire_table(writer.events, s3_lake, orphan_min_age=timedelta(0))
    assert report.snapshots_expired > 0 and report.files_deleted > 0  # compacted-away files are gone
    assert whole_table_checksum(writer.events) == before
    tagged = list_snapshots(writer.events)[0]
    assert "on-s3" in tagged.tags
    assert writer.events.scan(snapshot_id=tagged.snapshot_id).to_arrow().num_rows == tagged.total_records
