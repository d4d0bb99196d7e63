"""The one module that speaks Kafka (kafka-python): admin, producer and consumer at the boundary.

Everything else in the project sees plain values (``OutRecord``, ``InRecord``, offsets by
``(topic, partition)``) and the errors of ``ingest.errors``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ingest.errors import BrokerUnavailableError

TP = tuple[str, int]


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


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """A topic to create: name, partitions and per-topic configs."""

    name: str
    partitions: int
    configs: tuple[tuple[str, str], ...] = ()


def _common(bootstrap: str, api_version: tuple[int, ...]) -> dict[str, Any]:
    return {"bootstrap_servers": bootstrap.split(","), "api_version": api_version}


def wait_for_broker(bootstrap: str, api_version: tuple[int, ...], timeout_s: float = 60.0) -> int:
    """Block until the broker answers a metadata request; return the number of brokers.

    Raises:
        BrokerUnavailableError: if it does not answer within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(**_common(bootstrap, api_version), request_timeout_ms=5000)
            try:
                cluster = admin.describe_cluster()
                return len(cluster.get("brokers", [])) or 1
            finally:
                admin.close()
        except (KafkaError, OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
    raise BrokerUnavailableError(bootstrap, last)


def ensure_topics(bootstrap: str, api_version: tuple[int, ...], plans: Sequence[TopicPlan]) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Raises:
        BrokerUnavailableError: if the broker cannot be reached.
    """
    try:
        admin = KafkaAdminClient(**_common(bootstrap, api_version), request_timeout_ms=30000)
    except KafkaError as exc:
        raise BrokerUnavailableError(bootstrap, str(exc)) from exc
    try:
        existing = set(admin.list_topics())
        missing = [p for p in plans if p.name not in existing]
        if missing:
            new = [
                NewTopic(
                    p.name,
                    num_partitions=p.partitions,
                    replication_factor=1,
                    topic_configs=dict(p.configs),
                )
                for p in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                admin.create_topics(new, timeout_ms=30000)
            admin.wait_for_topics([p.name for p in missing], timeout_ms=30000)
        return [p.name for p in missing]
    finally:
        admin.close()


def end_offsets(bootstrap: str, api_version: tuple[int, ...], topics: Iterable[str]) -> dict[TP, int]:
    """The log-end offset of every partition of ``topics`` (missing topics are left out)."""
    consumer = KafkaConsumer(**_common(bootstrap, api_version), enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        return {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def publish(
    bootstrap: str,
    api_version: tuple[int, ...],
    records: Iterable[OutRecord],
    *,
    compression: str | None = "zstd",
    max_request_bytes: int = 8 * 1024 * 1024,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Publish ``records`` with an idempotent, batched, compressed producer; return counts per topic.

    Raises:
        BrokerUnavailableError: if the broker cannot be reached or refuses the records.
    """
    try:
        producer = KafkaProducer(
            **_common(bootstrap, api_version),
            acks="all",
            enable_idempotence=True,
            compression_type=compression,
            linger_ms=20,
            batch_size=512 * 1024,
            max_request_size=max_request_bytes,
        )
    except KafkaError as exc:
        raise BrokerUnavailableError(bootstrap, str(exc)) from exc
    counts: dict[str, int] = {}
    sent = 0
    try:
        for rec in records:
            producer.send(rec.topic, value=rec.value, key=rec.key, headers=list(rec.headers))
            counts[rec.topic] = counts.get(rec.topic, 0) + 1
            sent += 1
            if on_progress is not None and sent % 10_000 == 0:
                on_progress(sent)
        producer.flush()
    except KafkaError as exc:
        raise BrokerUnavailableError(bootstrap, f"publish failed: {exc}") from exc
    finally:
        producer.close()
    if on_progress is not None:
        on_progress(sent)
    return counts


def read_all(
    bootstrap: str, api_version: tuple[int, ...], topics: Iterable[str], timeout_s: float = 60.0
) -> Iterator[InRecord]:
    """Read every record currently in ``topics``, from the start to the log end, without a group.

    Raises:
        BrokerUnavailableError: if the end is not reached within ``timeout_s``.
    """
    consumer = KafkaConsumer(
        **_common(bootstrap, api_version),
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(bootstrap, f"timed out reading {len(remaining)} partitions")
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            for tp, msgs in batch.items():
                for m in msgs:
                    yield InRecord(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.timestamp,
                        m.timestamp_type,
                        m.key,
                        m.value,
                        tuple(m.headers or ()),
                    )
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()
