"""Lakehouse settings: which Iceberg catalog and warehouse, and the retention policy (``MHHS_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class LakehouseSettings(BaseSettings):
    """Frozen lakehouse configuration; build once at the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="MHHS_", frozen=True, extra="ignore")

    catalog_name: str = Field(default="mhhs", description="the catalog's name")
    catalog_type: Literal["sql", "rest"] = Field(default="sql", description="sql (embedded) or rest")
    catalog_uri: str | None = Field(
        default=None,
        description="SQLAlchemy URI (sql) or REST endpoint (rest); default: SQLite in the warehouse",
    )
    catalog_credential: SecretStr | None = Field(default=None, description="REST OAuth2 client:secret")
    catalog_token: SecretStr | None = Field(default=None, description="REST bearer token")
    warehouse: str = Field(default="var/warehouse", description="a local directory or s3://bucket/prefix")
    namespace: str = Field(default="mhhs", description="Iceberg namespace of the product's tables")

    s3_endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL")
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    snapshot_retention_hours: float = Field(
        default=168.0, ge=0, description="snapshots younger than this are kept by `lake expire`"
    )
    keep_last_snapshots: int = Field(default=10, ge=1, description="always keep at least this many")
    max_snapshots: int = Field(
        default=500,
        ge=0,
        description="expiry keeps at most this many untagged snapshots, however young (0: no limit): each "
        "one retained makes every commit slower (~0.14 ms); time travel by snapshot reaches back this many "
        "commits, then tags and landed_at (docs/capacity.md)",
    )
    maintenance_every_commits: int = Field(
        default=50, ge=1, description="the writer expires old snapshots every this many commits"
    )
    refine_every_commits: int = Field(
        default=0, ge=0, description="ingest refines the typed tables every this many commits (0: never)"
    )
    refine_window_messages: int = Field(
        default=50_000, ge=1, description="IF-021 messages refined per commit (bounds refine's memory)"
    )
    metadata_versions_max: int = Field(default=20, ge=1, description="old metadata files kept")
    target_file_mb: int = Field(default=128, ge=1, description="target data file size")
