"""Shared fixtures: a real Apache Kafka broker for the session (or the one MHHS_KAFKA_BOOTSTRAP names)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.kafka import LocalBrokerConfig, start_local_broker, stop_local_broker
from devstack.settings import DevstackSettings
from ingest.settings import IngestSettings


@pytest.fixture(scope="session")
def broker_settings() -> IngestSettings:
    """Ingest's settings for the session's broker (MHHS_KAFKA_BOOTSTRAP, else the local one started here)."""
    return IngestSettings(kafka_bootstrap=os.environ.get("MHHS_KAFKA_BOOTSTRAP"))


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> LocalBrokerConfig:
    """A local broker's configuration private to this test session (jars cached outside git)."""
    return DevstackSettings(kafka_data_dir=tmp_path_factory.mktemp("kafka")).broker()


@pytest.fixture(scope="session")
def kafka_bootstrap(broker_settings: IngestSettings, local_broker: LocalBrokerConfig) -> Iterator[str]:
    """A running broker's bootstrap address: the configured one, else a local broker started here."""
    if broker_settings.kafka_bootstrap:
        yield broker_settings.kafka_bootstrap
        return
    broker = start_local_broker(local_broker)
    try:
        yield broker.bootstrap
    finally:
        stop_local_broker(local_broker)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside its own directory so relative var/ paths stay private."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
