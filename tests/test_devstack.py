"""The local broker's configuration follows the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.kafka import _properties
from devstack.settings import DevstackSettings


def _delay(config_text: str) -> str:
    lines = [line for line in config_text.splitlines() if line.startswith("group.initial.rebalance.delay.ms=")]
    assert len(lines) == 1
    return lines[0].split("=", 1)[1]


def test_a_new_group_is_assigned_at_once_unless_the_wait_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MHHS_KAFKA_INITIAL_REBALANCE_DELAY_MS", raising=False)
    assert _delay(_properties(Path("/tmp/k"), 9092, 9093, DevstackSettings().broker())) == "0"
    monkeypatch.setenv("MHHS_KAFKA_INITIAL_REBALANCE_DELAY_MS", "3000")  # Kafka's own default
    assert _delay(_properties(Path("/tmp/k"), 9092, 9093, DevstackSettings().broker())) == "3000"
    monkeypatch.setenv("MHHS_KAFKA_INITIAL_REBALANCE_DELAY_MS", "-1")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        DevstackSettings()
