"""The ingest worker: poll, batch, decode, commit to Iceberg (then to Kafka), repeat.

Positions come from the store: on every assignment the worker seeks to the offsets the events
table records for its group. SIGTERM commits the batch in hand and exits cleanly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

import pyarrow as pa
import structlog

from contract.topics import load_topic_catalogue
from ingest.decode import decode_batch
from ingest.kafka_client import TP, GroupConsumer, PolledRecords
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from ingest.validate import RecordValidator
from lakehouse.errors import LakehouseError
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter

log = structlog.get_logger("ingest")


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand what the last batch freed back to the OS: pyarrow's pool, then the C heap (glibc).

    Without it a worker's RSS keeps the high-water mark of its largest batch, fragmented.
    """
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


STAGES = ("poll", "decode", "commit")
"""Where a worker's busy time goes: polls that returned records, validating and building Arrow, committing."""


@dataclass
class RunStats:
    """What a run did so far (also what the progress display shows)."""

    consumed: int = 0
    landed: int = 0
    quarantined: int = 0
    fenced: int = 0
    commits: int = 0
    commit_seconds: list[float] = field(default_factory=list)
    last_snapshot_id: int | None = None
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


class IngestWorker:
    """One member of the ingest consumer group."""

    def __init__(
        self,
        ingest: IngestSettings,
        lake: LakehouseSettings,
        bootstrap: str,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.settings = ingest
        self.lake = lake
        self.worker_id = ingest.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.metrics = metrics or IngestMetrics()
        self.stats = RunStats()
        self._writer = LandingWriter(lake)
        self._validator = RecordValidator(ingest.max_message_bytes)
        self._buffer = PolledRecords.empty()
        self._batch_started: float | None = None
        self._stop = False
        self._assigned_at: float | None = None
        self._commits_since_maintenance = 0
        self._commits_since_refine = 0
        self._seen_bytes = 0
        self._mean_record_bytes = 0.0
        self._poll_seconds = 0.0  # in polls that returned records, since the last commit
        self._consumer = GroupConsumer(
            bootstrap,
            ingest.api_version_tuple(),
            ingest.group_id,
            load_topic_catalogue().names,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            client_id=self.worker_id,
            session_timeout_ms=ingest.session_timeout_ms,
            max_fetch_bytes=ingest.fetch_max_bytes,
            max_partition_fetch_bytes=ingest.partition_fetch_max_bytes,
        )

    # -- rebalance callbacks ---------------------------------------------------------------
    def _on_assigned(self, partitions: list[TP]) -> dict[TP, int]:
        self._assigned_at = time.monotonic()
        held = self._writer.resume_offsets(self.settings.group_id)
        positions = {tp: held[tp] for tp in partitions if tp in held}
        log.info(
            "partitions_assigned",
            worker=self.worker_id,
            partitions=len(partitions),
            from_table=len(positions),
        )
        return positions

    def _on_revoked(self, partitions: list[TP]) -> None:
        log.info("partitions_revoked", worker=self.worker_id, partitions=len(partitions))
        self.flush(in_rebalance=True)  # commit what is in hand; the table fences any re-read

    # -- the loop ------------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        """Ask the loop to commit the batch in hand and return (safe from a signal handler)."""
        self._stop = True

    def run(self, until_idle: float | None = None, on_tick: Callable[[RunStats], None] | None = None) -> RunStats:
        """Consume until stopped (or until every topic has been quiet for ``until_idle`` seconds)."""
        last_record = time.monotonic()
        try:
            while not self._stop:
                got = self._poll()
                now = time.monotonic()
                if got:
                    last_record = now
                if self._batch_due(now):
                    self.flush()
                if on_tick is not None:
                    on_tick(self.stats)
                # idle time counts from the last record, or from joining the group
                quiet_since = max(last_record, self._assigned_at or now)
                if until_idle is not None and now - quiet_since >= until_idle and not len(self._buffer):
                    log.info("idle_exit", worker=self.worker_id, idle_seconds=until_idle)
                    break
            self.flush()
        finally:
            self._consumer.close()
        return self.stats

    def _poll_budget(self) -> int:
        """Records the next poll may return: a steady size that fits the batch's record and byte bounds.

        The size comes from the mean record size seen so far and does not shrink as the batch
        fills (small polls stop kafka-python fetching ahead: measured, half the throughput);
        ``_batch_due`` flushes instead when the next poll could carry the batch past its bytes.
        """
        s = self.settings
        size = 10_000
        if self._mean_record_bytes:
            size = min(size, max(1, int(s.batch_max_bytes / self._mean_record_bytes)))
        return max(1, min(s.batch_max_records - len(self._buffer), size))

    def _poll(self) -> int:
        """Add one poll's records to the batch in hand; return how many.

        A method, so no local name keeps a poll's values alive once the batch is committed (one held
        in ``run`` kept a whole batch of Python bytes beside the next poll's: measured, +65 MB).
        """
        started = time.perf_counter()
        polled = self._consumer.poll(timeout_ms=500, max_records=self._poll_budget())
        if len(polled):
            self._poll_seconds += time.perf_counter() - started  # fetching records, not waiting idle
            self._add(polled)
        return len(polled)

    def _add(self, polled: PolledRecords) -> None:
        if self._batch_started is None:
            self._batch_started = time.monotonic()
        self._buffer.extend(polled)
        self.stats.consumed += len(polled)
        self._seen_bytes += polled.nbytes
        self._mean_record_bytes = self._seen_bytes / self.stats.consumed
        for topic in set(polled.topics):
            self.metrics.consumed.labels(topic).inc(polled.topics.count(topic))

    def _batch_due(self, now: float) -> bool:
        s = self.settings
        if not len(self._buffer):
            return False
        return (
            len(self._buffer) >= s.batch_max_records
            or self._buffer.nbytes + self._poll_budget() * self._mean_record_bytes > s.batch_max_bytes
            or (self._batch_started is not None and now - self._batch_started >= s.batch_max_seconds)
        )

    def flush(self, in_rebalance: bool = False) -> None:
        """Commit the batch in hand to Iceberg, then its offsets to Kafka. Retries until it lands."""
        if not len(self._buffer):
            return
        batch, self._buffer, self._batch_started = self._buffer, PolledRecords.empty(), None
        batch_id = uuid.uuid4().hex
        started = time.perf_counter()
        decoded = decode_batch(batch, self._validator, self.worker_id, batch_id, datetime.now(UTC))
        records = len(batch)
        del batch  # decoding let go of the values; the rest of the batch goes too
        release_memory()  # and their pages go back, so the commit's Parquet buffers do not add to them
        decode_seconds = time.perf_counter() - started
        props = {
            "mhhs.batch-id": batch_id,
            "mhhs.worker-id": self.worker_id,
            "mhhs.group": self.settings.group_id,
        }
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._writer.commit(
                    decoded.events,
                    decoded.quarantine,
                    self.settings.group_id,
                    decoded.next_offsets,
                    props,
                    max_attempts=self.settings.commit_max_attempts,
                )
                break
            except (LakehouseError, OSError) as exc:  # keep the batch; nothing is ever dropped
                wait = min(30.0, 0.5 * 2**attempt)
                log.warning(
                    "commit_retry",
                    worker=self.worker_id,
                    batch_id=batch_id,
                    attempt=attempt,
                    error=str(exc),
                    wait_seconds=wait,
                )
                time.sleep(wait)
        seconds = result.events.seconds + (result.quarantine.seconds if result.quarantine else 0.0)
        landed_q = result.quarantine.rows if result.quarantine else 0
        fenced = result.events.dropped + (result.quarantine.dropped if result.quarantine else 0)
        st = self.stats
        st.landed += result.events.rows
        st.quarantined += landed_q
        st.fenced += fenced
        st.commits += 1
        st.commit_seconds.append(seconds)
        st.last_snapshot_id = result.events.snapshot_id
        for stage, spent in zip(STAGES, (self._poll_seconds, decode_seconds, seconds), strict=True):
            st.stage_seconds[stage] += spent
            self.metrics.stage_seconds.labels(stage).inc(spent)
        m = self.metrics
        m.landed.inc(result.events.rows)
        for code in decoded.quarantine.column("error_code").to_pylist():
            m.quarantined.labels(code).inc()
        m.duplicates.inc(fenced)
        m.commit_seconds.observe(seconds)
        m.batch_records.observe(records)
        log.info(
            "batch_committed",
            worker=self.worker_id,
            batch_id=batch_id,
            rows=result.events.rows,
            quarantined=landed_q,
            fenced=fenced,
            snapshot_id=result.events.snapshot_id,
            commit_seconds=round(seconds, 4),
            decode_seconds=round(decode_seconds, 4),
            poll_seconds=round(self._poll_seconds, 4),
        )
        self._poll_seconds = 0.0
        del decoded
        release_memory()
        if not in_rebalance:
            self._consumer.commit(result.offsets)  # for lag tools only; the table is the truth
            for (topic, partition), lag in self._consumer.lag().items():
                m.lag.labels(topic, str(partition)).set(lag)
        self._commits_since_maintenance += 1
        if self._commits_since_maintenance >= self.lake.maintenance_every_commits:
            self._commits_since_maintenance = 0
            self._maintain()
        self._commits_since_refine += 1
        if self.lake.refine_every_commits and self._commits_since_refine >= self.lake.refine_every_commits:
            self._commits_since_refine = 0
            self._refine()

    def _refine(self) -> None:
        """Bring the typed tables up to date (exactly once, so any worker may do it at any time)."""
        from lakehouse.refine import refine_consumption, refine_registration  # DuckDB: only if refining

        try:
            catalog = self._writer.catalog
            consumption = refine_consumption(catalog, self.lake)
            registration = refine_registration(catalog, self.lake)
            log.info(
                "refined",
                worker=self.worker_id,
                consumption_rows=consumption.rows,
                registration_mpans=registration.mpans_recomputed,
            )
        except Exception as exc:  # refining must never stop ingest: the next run catches up
            log.warning("refine_failed", worker=self.worker_id, error=f"{type(exc).__name__}: {exc}")

    def _maintain(self) -> None:
        try:
            expired = self._writer.maintain()
            log.info("snapshots_expired", worker=self.worker_id, **expired)
        except Exception as exc:  # maintenance must never stop ingest
            log.warning("maintenance_failed", worker=self.worker_id, error=str(exc))


def install_signal_handlers(worker: IngestWorker) -> None:
    """SIGTERM and SIGINT commit the batch in hand and stop the loop."""

    def handler(signum: int, frame: FrameType | None) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
