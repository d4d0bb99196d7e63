"""The Kafka record types shared by producers (the simulator, `mhhs publish`) and the consumer (ingest)."""

from __future__ import annotations

from dataclasses import dataclass

TP = tuple[str, int]
"""A topic-partition: ``(topic, partition)``."""


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to publish: topic, key, value (None is a tombstone) and headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class InRecord:
    """A record read from Kafka, with its coordinates."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
