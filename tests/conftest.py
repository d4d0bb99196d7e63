"""Shared fixtures: a real Apache Kafka broker for the session (or the one MHHS_KAFKA_BOOTSTRAP names)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.localbroker import LocalBroker, start_local_broker, stop_local_broker
from ingest.settings import IngestSettings


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory) -> IngestSettings:
    """Settings for a broker private to this test session (jars cached outside git)."""
    data_dir = tmp_path_factory.mktemp("kafka")
    return IngestSettings(kafka_data_dir=data_dir, kafka_bootstrap=os.environ.get("MHHS_KAFKA_BOOTSTRAP"))


@pytest.fixture(scope="session")
def kafka_bootstrap(broker_settings: IngestSettings) -> Iterator[str]:
    """A running broker's bootstrap address: the configured one, else a local broker started here."""
    if broker_settings.kafka_bootstrap:
        yield broker_settings.kafka_bootstrap
        return
    broker: LocalBroker = start_local_broker(broker_settings)
    try:
        yield broker.bootstrap
    finally:
        stop_local_broker(broker_settings)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside its own directory so relative var/ paths stay private."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
