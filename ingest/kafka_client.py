"""The one module that speaks Kafka (kafka-python): admin, producer and consumer at the boundary.

Everything else in the project sees plain values (``OutRecord``, ``InRecord``, offsets by
``(topic, partition)``) and the errors of ``ingest.errors``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from contract.records import TP, InRecord, OutRecord
from ingest.errors import BrokerUnavailableError


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
        admin = KafkaAdminClient(
            **_common(bootstrap, api_version), request_timeout_ms=30000, bootstrap_timeout_ms=10_000
        )
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
            _wait_for_leaders(admin, [p.name for p in missing])
        return [p.name for p in missing]
    except KafkaError as exc:  # the broker went away between connecting and asking
        raise BrokerUnavailableError(bootstrap, str(exc)) from exc
    finally:
        admin.close()


def _wait_for_leaders(admin: KafkaAdminClient, topics: list[str], timeout_s: float = 30.0) -> None:
    """Wait until every partition of ``topics`` has a leader (a producer then sends without retrying)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = admin.describe_topics(topics)
        partitions = [p for t in described for p in t.get("partitions") or []]
        # kafka-python 3 names it leader_id (DescribeTopicPartitions); 2.x said leader
        leaders = [p.get("leader_id", p.get("leader", -1)) for p in partitions]
        if len(described) == len(topics) and leaders and all(leader >= 0 for leader in leaders):
            return
        time.sleep(0.1)


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


def _drain(consumer: KafkaConsumer, bootstrap: str, timeout_s: float) -> Iterator[InRecord]:
    """Read the assigned partitions from their positions to the log end as it is now."""
    tps = list(consumer.assignment())
    ends = consumer.end_offsets(tps)
    remaining = {tp for tp in tps if consumer.position(tp) < ends[tp]}
    deadline = time.monotonic() + timeout_s
    while remaining:
        if time.monotonic() > deadline:
            raise BrokerUnavailableError(bootstrap, f"timed out reading {len(remaining)} partitions")
        for tp, msgs in consumer.poll(timeout_ms=500, max_records=10_000).items():
            for m in msgs:
                if m.offset < ends[tp]:
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


def _reader(bootstrap: str, api_version: tuple[int, ...]) -> KafkaConsumer:
    return KafkaConsumer(
        **_common(bootstrap, api_version),
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


def read_all(
    bootstrap: str, api_version: tuple[int, ...], topics: Iterable[str], timeout_s: float = 60.0
) -> Iterator[InRecord]:
    """Read every record currently in ``topics``, from the start to the log end, without a group.

    Raises:
        BrokerUnavailableError: if the end is not reached within ``timeout_s``.
    """
    consumer = _reader(bootstrap, api_version)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        yield from _drain(consumer, bootstrap, timeout_s)
    finally:
        consumer.close()


def read_from(
    bootstrap: str, api_version: tuple[int, ...], topic: str, positions: Mapping[int, int], timeout_s: float = 60.0
) -> list[InRecord]:
    """Every record of ``topic`` from ``positions`` (partition -> offset; others from 0) to the log end.

    Raises:
        BrokerUnavailableError: if the end is not reached within ``timeout_s``.
    """
    consumer = _reader(bootstrap, api_version)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, positions.get(tp.partition, 0))
        return list(_drain(consumer, bootstrap, timeout_s))
    finally:
        consumer.close()


@dataclass(slots=True)
class PolledRecords:
    """Records from one or more polls, column by column (the shape Arrow wants)."""

    topics: list[str]
    partitions: list[int]
    offsets: list[int]
    timestamps_ms: list[int]
    timestamp_types: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[list[tuple[str, bytes]]]
    nbytes: int = 0

    @classmethod
    def empty(cls) -> PolledRecords:
        return cls([], [], [], [], [], [], [], [], 0)

    def __len__(self) -> int:
        return len(self.offsets)

    def extend(self, other: PolledRecords) -> None:
        self.topics += other.topics
        self.partitions += other.partitions
        self.offsets += other.offsets
        self.timestamps_ms += other.timestamps_ms
        self.timestamp_types += other.timestamp_types
        self.keys += other.keys
        self.values += other.values
        self.headers += other.headers
        self.nbytes += other.nbytes


def columns(fetched: Iterable[Iterable[Any]]) -> PolledRecords:
    """kafka-python's records (one iterable per partition) as columns: the worker's per-record step."""
    out = PolledRecords.empty()
    for msgs in fetched:
        for m in msgs:
            out.topics.append(m.topic)
            out.partitions.append(m.partition)
            out.offsets.append(m.offset)
            out.timestamps_ms.append(m.timestamp)
            out.timestamp_types.append(m.timestamp_type)
            out.keys.append(m.key)
            out.values.append(m.value)
            out.headers.append(m.headers or [])
            out.nbytes += max(0, m.serialized_value_size) + max(0, m.serialized_key_size)
    return out


class GroupConsumer:
    """A consumer-group member whose positions come from the store, not from Kafka.

    ``on_assigned(partitions)`` returns the next offset to read for each newly assigned
    partition (from the Iceberg table); partitions it does not name start at the beginning.
    ``on_revoked(partitions)`` runs before partitions are taken away (commit what is in hand).
    """

    def __init__(
        self,
        bootstrap: str,
        api_version: tuple[int, ...],
        group_id: str,
        topics: Sequence[str],
        on_assigned: Callable[[list[TP]], Mapping[TP, int]],
        on_revoked: Callable[[list[TP]], None],
        client_id: str,
        max_fetch_bytes: int,
        max_partition_fetch_bytes: int,
        session_timeout_ms: int = 10_000,
    ) -> None:
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        outer = self

        class _Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                tps = [(tp.topic, tp.partition) for tp in revoked]
                if tps:
                    on_revoked(tps)

            def on_partitions_assigned(self, assigned: Any) -> None:
                tps = [(tp.topic, tp.partition) for tp in assigned]
                positions = on_assigned(tps) if tps else {}
                for tp in assigned:
                    start = positions.get((tp.topic, tp.partition))
                    if start is None:
                        outer._consumer.seek_to_beginning(tp)
                    else:
                        outer._consumer.seek(tp, start)

        try:
            self._consumer = KafkaConsumer(
                **_common(bootstrap, api_version),
                group_id=group_id,
                client_id=client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=session_timeout_ms,
                # a rebalance (a member joining or leaving) is noticed by the next heartbeat: at 1 s, a
                # second `--processes` member got its partitions 1.5-1.7 s after the first, 2.6-2.8 s at 2.5 s
                heartbeat_interval_ms=max(500, session_timeout_ms // 10),
                max_poll_interval_ms=600_000,
                # small fetches: kafka-python holds a response twice while it parses it (measured: 2 x 31 MB
                # at 64 MiB); a larger record still comes whole (fetch v3+: the broker sends the first
                # batch of a response whatever its size, and kafka-python rotates the partitions)
                max_partition_fetch_bytes=max_partition_fetch_bytes,
                fetch_max_bytes=max_fetch_bytes,
                reconnect_backoff_max_ms=5000,
            )
        except KafkaError as exc:
            raise BrokerUnavailableError(bootstrap, str(exc)) from exc
        self._consumer.subscribe(topics=list(topics), listener=_Listener())

    def poll(self, timeout_ms: int, max_records: int) -> PolledRecords:
        """Fetch up to ``max_records`` records; an outage yields an empty result, not an error."""
        try:
            fetched = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            log_warning("poll_failed", exc)
            time.sleep(min(5.0, timeout_ms / 1000))
            return PolledRecords.empty()
        return columns(fetched.values())

    def commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit ``offsets`` to Kafka for lag tools only; failures are logged, never raised."""
        from kafka.structs import OffsetAndMetadata

        try:
            self._consumer.commit({TopicPartition(t, p): OffsetAndMetadata(n, "", -1) for (t, p), n in offsets.items()})
        except (KafkaError, AssertionError) as exc:  # e.g. a rebalance in progress
            log_warning("kafka_offset_commit_failed", exc)
            return False
        return True

    def lag(self) -> dict[TP, int]:
        """Records behind the log end, per assigned partition (from the last fetch's high water)."""
        out: dict[TP, int] = {}
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            try:
                out[(tp.topic, tp.partition)] = max(0, high - self._consumer.position(tp, timeout_ms=100))
            except KafkaError:
                continue
        return out

    def assignment(self) -> list[TP]:
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def log_warning(event: str, exc: BaseException) -> None:
    import logging

    logging.getLogger(__name__).warning(event, extra={"error": f"{type(exc).__name__}: {exc}"})
