"""Prometheus metrics of the ingest worker (one registry per worker, served on request)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class IngestMetrics:
    """Records consumed / landed / quarantined, lag per partition, commit latency, batch size, and
    the seconds spent per stage (where a worker's time goes: ``rate()`` of each over its sum)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.consumed = Counter("mhhs_ingest_records_consumed", "records read from Kafka", ["topic"], registry=r)
        self.landed = Counter("mhhs_ingest_records_landed", "records committed to the events table", registry=r)
        self.quarantined = Counter(
            "mhhs_ingest_records_quarantined", "records committed to quarantine", ["code"], registry=r
        )
        self.duplicates = Counter(
            "mhhs_ingest_records_fenced", "records dropped because the table already held them", registry=r
        )
        self.lag = Gauge("mhhs_ingest_lag_records", "records behind the log end", ["topic", "partition"], registry=r)
        self.commit_seconds = Histogram(
            "mhhs_ingest_commit_seconds",
            "Iceberg commit latency per batch",
            buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.stage_seconds = Counter(
            "mhhs_ingest_stage_seconds",
            "seconds spent per stage: poll (polls that returned records), decode (validating, building Arrow, "
            "handing memory back), commit (the attempt that landed; retries' waits are not counted)",
            ["stage"],
            registry=r,
        )
        self.batch_records = Histogram(
            "mhhs_ingest_batch_records",
            "records per committed batch",
            buckets=(10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000),
            registry=r,
        )

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (a daemon thread)."""
        start_http_server(port, registry=self.registry)
