"""The SQL catalog on S3-compatible storage (moto's server, a real HTTP S3 endpoint), by settings alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from lakehouse.catalog import open_catalog
from lakehouse.history import create_tag, list_snapshots
from lakehouse.maintenance import compact_table, expire_table, whole_table_checksum
from lakehouse.refine import refine_consumption
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from tests.lakehouse.conftest import GROUP, simulated_batches


@pytest.fixture()
def s3_lake(tmp_path: Path) -> Iterator[LakehouseSettings]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="warehouse")
    try:
        yield LakehouseSettings(
            warehouse="s3://warehouse/mhhs",
            catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
            s3_endpoint=endpoint,
            s3_access_key_id="testing",
            s3_secret_access_key="testing",  # type: ignore[arg-type]
            keep_last_snapshots=2,
            snapshot_retention_hours=0,
        )
    finally:
        server.stop()


def test_land_read_tag_refine_compact_and_expire_on_s3(s3_lake: LakehouseSettings) -> None:
    writer = LandingWriter(s3_lake)
    assert writer.events.location().startswith("s3://warehouse/mhhs")
    batches = simulated_batches(10, 150)
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
