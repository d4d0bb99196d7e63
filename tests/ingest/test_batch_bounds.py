"""A batch is bounded by bytes as well as records: one poll cannot carry it far past either bound."""

from __future__ import annotations

from ingest.kafka_client import PolledRecords
from ingest.service import IngestWorker, RunStats
from ingest.settings import IngestSettings


def _worker(max_records: int, max_bytes: int) -> IngestWorker:
    worker = object.__new__(IngestWorker)  # the bounds only: no broker, no table
    worker.settings = IngestSettings(batch_max_records=max_records, batch_max_bytes=max_bytes)
    worker.stats = RunStats()
    worker._buffer = PolledRecords.empty()
    worker._batch_started = None
    worker._seen_bytes = 0
    worker._mean_record_bytes = 0.0

    class _Counter:
        def labels(self, *_: object) -> _Counter:
            return self

        def inc(self, *_: object) -> None:
            return None

    worker.metrics = type("M", (), {"consumed": _Counter()})()
    return worker


def _polled(n: int, size: int) -> PolledRecords:
    out = PolledRecords.empty()
    for i in range(n):
        out.topics.append("t")
        out.partitions.append(0)
        out.offsets.append(i)
        out.timestamps_ms.append(0)
        out.timestamp_types.append(0)
        out.keys.append(None)
        out.values.append(b"x" * size)
        out.headers.append([])
    out.nbytes = n * size
    return out


def test_a_batch_is_committed_before_a_poll_could_carry_it_past_its_byte_bound() -> None:
    worker = _worker(max_records=1_000_000, max_bytes=1_000_000)
    assert worker._poll_budget() == 10_000  # nothing seen yet: the records bound only
    worker._add(_polled(50, 6_500))
    assert worker._poll_budget() == 1_000_000 // 6_500  # polls sized to the byte bound ...
    assert worker._batch_due(0.0)  # ... so a second one could pass it: commit first
    small = _worker(max_records=1_000_000, max_bytes=1_000_000)
    small._add(_polled(10_000, 10))  # 100 kB in a full poll of 10 k small records
    assert small._poll_budget() == 10_000
    for _ in range(8):
        assert not small._batch_due(0.0)
        small._add(_polled(10_000, 10))
    assert small._buffer.nbytes == 900_000 and not small._batch_due(0.0)  # one more poll still fits
    small._add(_polled(10_000, 10))
    assert small._batch_due(0.0) and small._buffer.nbytes <= 1_000_000


def test_polls_never_ask_for_more_records_than_the_batch_has_room_for() -> None:
    worker = _worker(max_records=150, max_bytes=1 << 30)
    worker._add(_polled(100, 10))
    assert worker._poll_budget() == 50
    worker._add(_polled(50, 10))
    assert worker._poll_budget() == 1
    assert worker._batch_due(0.0)  # full: commit before the next poll
