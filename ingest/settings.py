"""Ingest settings: the broker to read, the consumer group and batching (env prefix ``MHHS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """Frozen ingest configuration; build once at the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="MHHS_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port[,host:port] of an existing Kafka cluster; unset: the local broker (`mhhs broker up`)",
    )
    kafka_api_version: str = Field(default="4.0", description="Kafka API version to speak")
    max_message_bytes: int = Field(
        default=1_048_576, gt=0, description="records larger than this are quarantined as oversized"
    )

    group_id: str = Field(default="mhhs-event-store", description="ingest consumer group")
    worker_id: str = Field(default="", description="this worker's name; empty uses host-pid")
    batch_max_records: int = Field(default=50_000, gt=0)
    batch_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="bounds memory per batch")
    batch_max_seconds: float = Field(default=10.0, gt=0)
    fetch_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="bytes one fetch asks the broker for")
    partition_fetch_max_bytes: int = Field(
        default=2 * 1024 * 1024, gt=0, description="of those, per partition (a larger record still comes whole)"
    )
    commit_max_attempts: int = Field(default=50, gt=0, description="Iceberg commit retries on conflict")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Prometheus port; 0 disables")
    session_timeout_ms: int = Field(default=10_000, ge=1000, description="consumer group session timeout")
    broker_wait_seconds: float = Field(
        default=300.0, ge=0, description="at start, how long to wait for an unreachable broker before giving up"
    )

    def api_version_tuple(self) -> tuple[int, ...]:
        """The API version as kafka-python wants it, e.g. ``(4, 0)``."""
        return tuple(int(p) for p in self.kafka_api_version.split("."))
