"""File systems for table locations: the local disk, or S3-compatible object storage (pyarrow)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from pyarrow import fs as pafs

from lakehouse.settings import LakehouseSettings


def storage_properties(settings: LakehouseSettings) -> dict[str, Any]:
    """The S3 properties (pyiceberg's names) the settings describe."""
    secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    return {
        "s3.access-key-id": settings.s3_access_key_id,
        "s3.secret-access-key": secret,
        "s3.region": settings.s3_region,
        "s3.endpoint": settings.s3_endpoint,
    }


def filesystem_for_location(location: str, props: Mapping[str, Any]) -> tuple[pafs.FileSystem, str, str]:
    """A pyarrow filesystem for ``location`` (file:// or s3://), the path within it and its scheme prefix.

    Raises:
        ValueError: for a scheme other than file and s3.
    """
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), parsed.path, "file://"
    if parsed.scheme in ("s3", "s3a"):
        secret = props.get("s3.secret-access-key")
        endpoint = props.get("s3.endpoint")
        scheme = "http"
        if endpoint and "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        fs = pafs.S3FileSystem(
            access_key=props.get("s3.access-key-id"),
            secret_key=secret,
            region=props.get("s3.region") or "us-east-1",
            endpoint_override=endpoint,
            scheme=scheme,
        )
        return fs, parsed.netloc + parsed.path, f"{parsed.scheme}://"
    raise ValueError(f"cannot open files at {location}")


def filesystem_for_paths(paths: Sequence[str], props: Mapping[str, Any]) -> tuple[pafs.FileSystem, list[str]]:
    """One filesystem for data files that share a location scheme, and the paths within it."""
    if all(p.startswith("file://") or "://" not in p for p in paths):
        return pafs.LocalFileSystem(), [p.removeprefix("file://") for p in paths]
    fs, _, _ = filesystem_for_location(paths[0], props)
    return fs, [p.split("://", 1)[1] for p in paths]
