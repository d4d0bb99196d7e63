"""Apache Iceberg's own REST catalog server, fetched from Maven Central, over S3-compatible storage.

The server is the Iceberg project's ``RESTCatalogServer`` (the one behind the
``apache/iceberg-rest-fixture`` image), a runnable jar published as
``org.apache.iceberg:iceberg-open-api``. It keeps its catalog in SQLite and table metadata on the
object store through Iceberg's ``S3FileIO``, as a production REST catalog would.
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

from devstack.errors import ServerStartError
from devstack.maven import DEFAULT_CACHE, fetch_artifacts, java_binary

ICEBERG_REST_VERSION = "1.10.0"


@dataclass(frozen=True, slots=True)
class ObjectStore:
    """An S3-compatible endpoint, a bucket and credentials."""

    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_answering(proc: subprocess.Popen[bytes], uri: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerStartError(f"the REST catalog server exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/v1/config", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerStartError(f"the REST catalog server did not answer: {log_path.read_text()[-2000:]}")
        time.sleep(0.5)


@contextmanager
def rest_catalog_server(
    workdir: Path,
    store: ObjectStore,
    prefix: str = "rest",
    cache_dir: Path = DEFAULT_CACHE,
    timeout_s: float = 90.0,
) -> Iterator[str]:
    """Start Iceberg's REST catalog server with its warehouse at ``s3://bucket/prefix``; yield its URI.

    Raises:
        MavenFetchError: if the jar cannot be fetched.
        ServerStartError: if the server exits or does not answer within ``timeout_s``.
    """
    libs = fetch_artifacts(
        f"iceberg-rest-{ICEBERG_REST_VERSION}",
        [f"org.apache.iceberg:iceberg-open-api:{ICEBERG_REST_VERSION}"],
        cache_dir,
    )
    port = _free_port()
    env = {
        **os.environ,
        "CATALOG_WAREHOUSE": f"s3://{store.bucket}/{prefix}",
        "CATALOG_URI": f"jdbc:sqlite:file:{workdir / 'rest-catalog.db'}",
        "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
        "CATALOG_S3_ENDPOINT": store.endpoint,
        "CATALOG_S3_PATH__STYLE__ACCESS": "true",
        "CATALOG_REST_PORT": str(port),
        "AWS_ACCESS_KEY_ID": store.access_key_id,
        "AWS_SECRET_ACCESS_KEY": store.secret_access_key,
        "AWS_REGION": store.region,
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
        _wait_answering(proc, uri, log_path, timeout_s)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
