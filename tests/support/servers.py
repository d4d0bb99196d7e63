"""moto's S3 server for the catalog tests (Iceberg's REST catalog server is in ``devstack.iceberg_rest``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

from devstack.iceberg_rest import ObjectStore

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@contextmanager
def s3_server(bucket: str = "warehouse") -> Iterator[ObjectStore]:
    """moto in server mode: a real HTTP S3 endpoint on 127.0.0.1 with one bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).create_bucket(Bucket=bucket)
    try:
        yield ObjectStore(endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION)
    finally:
        server.stop()
