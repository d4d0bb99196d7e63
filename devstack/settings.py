"""Settings of the local development stack (env prefix ``MHHS_``), turned into plain configs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from devstack.kafka import LocalBrokerConfig
from devstack.maven import DEFAULT_CACHE


class DevstackSettings(BaseSettings):
    """Frozen configuration of the local broker; build once at the entry point."""

    model_config = SettingsConfigDict(env_prefix="MHHS_", frozen=True, extra="ignore")

    kafka_version: str = Field(default="4.4.0", description="Apache Kafka release the local broker runs")
    kafka_port: int = Field(default=0, ge=0, le=65535, description="local broker port; 0 picks a free one")
    kafka_data_dir: Path = Field(default=Path("var/kafka"), description="local broker's KRaft store and logs")
    kafka_cache_dir: Path = Field(default=DEFAULT_CACHE, description="where Maven puts fetched jars (outside git)")
    kafka_heap: str = Field(default="1g", description="local broker's Java max heap")
    max_message_bytes: int = Field(
        default=1_048_576, gt=0, description="ingest's record limit; the broker accepts 4x this (at least 8 MiB)"
    )

    kafka_initial_rebalance_delay_ms: int = Field(
        default=0,
        ge=0,
        description="group.initial.rebalance.delay.ms of the local broker: 0 starts a new group at once "
        "(tests); Kafka's default, 3000, lets members that start together join one generation",
    )

    def broker(self) -> LocalBrokerConfig:
        """The local broker these settings describe."""
        return LocalBrokerConfig(
            data_dir=self.kafka_data_dir,
            port=self.kafka_port,
            version=self.kafka_version,
            cache_dir=self.kafka_cache_dir,
            heap=self.kafka_heap,
            max_message_bytes=max(4 * self.max_message_bytes, 8 * 1024 * 1024),
            initial_rebalance_delay_ms=self.kafka_initial_rebalance_delay_ms,
        )
