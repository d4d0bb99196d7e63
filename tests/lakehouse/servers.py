"""Real servers for the catalog tests: moto's S3 server and Apache Iceberg's REST catalog server.

The REST catalog is the Iceberg project's own ``RESTCatalogServer`` (the server behind the
``apache/iceberg-rest-fixture`` image), a runnable jar on Maven Central as
``org.apache.iceberg:iceberg-open-api``. Here it keeps its catalog in SQLite and its metadata on the
S3 server through Iceberg's ``S3FileIO``, as a production REST catalog would on object storage.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from lakehouse.maven import fetch_artifacts, java_binary

ICEBERG_REST_VERSION = "1.10.0"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint: str
    bucket: str


@contextmanager
def s3_server(bucket: str = "warehouse") -> Iterator[S3Server]:
    """moto in server mode: a real HTTP S3 endpoint on 127.0.0.1 with one bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    ).create_bucket(Bucket=bucket)
    try:
        yield S3Server(endpoint, bucket)
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def rest_catalog_server(workdir: Path, s3: S3Server, prefix: str = "rest") -> Iterator[str]:
    """Start Iceberg's REST catalog server over ``s3``; yield its URI; stop it afterwards."""
    libs = fetch_artifacts(
        f"iceberg-rest-{ICEBERG_REST_VERSION}", [f"org.apache.iceberg:iceberg-open-api:{ICEBERG_REST_VERSION}"]
    )
    port = _free_port()
    env = {
        **os.environ,
        "CATALOG_WAREHOUSE": f"s3://{s3.bucket}/{prefix}",
        "CATALOG_URI": f"jdbc:sqlite:file:{workdir / 'rest-catalog.db'}",
        "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
        "CATALOG_S3_ENDPOINT": s3.endpoint,
        "CATALOG_S3_PATH__STYLE__ACCESS": "true",
        "CATALOG_REST_PORT": str(port),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
    }
    log_path = workdir / "rest-catalog.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [java_binary(), "-Xmx512m", "-cp", f"{libs}/*", "org.apache.iceberg.rest.RESTCatalogServer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the REST catalog server exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/v1/config", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the REST catalog server did not answer: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
