"""Table definitions with stable field IDs, partition specs, sort orders and table properties.

The only place that says what the product's Iceberg tables look like. Schema changes are
additive migrations in ``lakehouse.migrations``; field IDs here never change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from lakehouse.settings import LakehouseSettings

EVENTS = "events"
QUARANTINE = "quarantine"
PAYLOAD_TABLES = (EVENTS, QUARANTINE)  # a row carries a whole message
CONSUMPTION = "consumption"
ACCESS_LOG = "access_log"
REGISTRATION = "registration"
REFINE_REJECTS = "refine_rejects"
QUALITY_RUNS = "quality_runs"
QUALITY_FINDINGS = "quality_findings"
COMPLETENESS = "completeness"
GRANTS = "grants"
DELIVERIES = "deliveries"
LEASES = "leases"


def _headers(first_id: int) -> ListType:
    return ListType(
        element_id=first_id,
        element_type=StructType(
            NestedField(first_id + 1, "key", StringType(), required=True),
            NestedField(first_id + 2, "value", BinaryType(), required=False),
        ),
        element_required=True,
    )


def _kafka_fields(headers_id: int) -> tuple[NestedField, ...]:
    return (
        NestedField(1, "topic", StringType(), required=True, doc="Kafka topic"),
        NestedField(2, "partition", IntegerType(), required=True, doc="Kafka partition"),
        NestedField(3, "offset", LongType(), required=True, doc="Kafka offset"),
        NestedField(4, "kafka_timestamp", TimestamptzType(), required=True, doc="record timestamp"),
        NestedField(5, "kafka_timestamp_type", IntegerType(), required=True, doc="0 create, 1 log append"),
        NestedField(6, "key", BinaryType(), required=False, doc="record key bytes"),
        NestedField(7, "headers", _headers(headers_id), required=False, doc="record headers in order"),
    )


def _landing_fields(first_id: int) -> tuple[NestedField, ...]:
    return (
        NestedField(first_id, "landed_at", TimestamptzType(), required=True, doc="when ingest landed it"),
        NestedField(first_id + 1, "worker_id", StringType(), required=True, doc="ingest worker"),
        NestedField(first_id + 2, "batch_id", StringType(), required=True, doc="ingest batch"),
    )


# Field IDs are those Iceberg assigns on creation (top level first, then nested), so the
# definitions here and the tables in the catalog always agree; tests check it.
EVENTS_SCHEMA = Schema(
    *_kafka_fields(headers_id=22),
    NestedField(8, "value", BinaryType(), required=True, doc="the value bytes exactly as received"),
    NestedField(9, "interface_id", StringType(), required=True),
    NestedField(10, "schema_version", StringType(), required=True),
    NestedField(11, "event_code", StringType(), required=False),
    NestedField(12, "transaction_id", StringType(), required=False),
    NestedField(13, "sender_dip_id", StringType(), required=False),
    NestedField(14, "sender_role", StringType(), required=False),
    NestedField(15, "sender_timestamp", StringType(), required=False, doc="as sent, ISO 8601"),
    NestedField(16, "mpan", StringType(), required=False),
    NestedField(17, "gsp_group", StringType(), required=False),
    NestedField(18, "settlement_date", DateType(), required=True, doc="by the topic catalogue's rule"),
    *_landing_fields(19),
)

QUARANTINE_SCHEMA = Schema(
    *_kafka_fields(headers_id=16),
    NestedField(8, "value", BinaryType(), required=False, doc="raw bytes; null for a tombstone"),
    NestedField(9, "error_code", StringType(), required=True, doc="stable quarantine code"),
    NestedField(10, "error_reason", StringType(), required=True, doc="readable reason"),
    NestedField(11, "transaction_id", StringType(), required=False, doc="from the header, if any"),
    NestedField(12, "interface_id", StringType(), required=False, doc="from the header, if any"),
    *_landing_fields(13),
)


CONSUMPTION_SCHEMA = Schema(
    NestedField(1, "mpan", StringType(), required=True),
    NestedField(2, "measurement_quantity", StringType(), required=True, doc="AI, AE, RI or RE"),
    NestedField(3, "utc_settlement_date", DateType(), required=True),
    NestedField(4, "period_end_utc", TimestamptzType(), required=True, doc="UTC end of the half hour"),
    NestedField(5, "local_settlement_date", DateType(), required=True, doc="Europe/London date of the period start"),
    NestedField(6, "local_period", IntegerType(), required=True, doc="1..46/48/50 on the local day"),
    NestedField(7, "consumption_kwh", DecimalType(12, 3), required=False),
    NestedField(8, "quality_indicator", StringType(), required=False),
    NestedField(9, "estimation_reason", IntegerType(), required=False),
    NestedField(10, "data_service_dip_id", StringType(), required=False),
    NestedField(11, "connection_type", StringType(), required=False),
    NestedField(12, "transaction_id", StringType(), required=False),
    NestedField(13, "sender_timestamp", StringType(), required=False),
    NestedField(14, "source_topic", StringType(), required=True),
    NestedField(15, "source_partition", IntegerType(), required=True),
    NestedField(16, "source_offset", LongType(), required=True),
    NestedField(17, "landed_at", TimestamptzType(), required=True, doc="when the source event was landed"),
    NestedField(18, "consumption_raw", StringType(), required=False, doc="as sent, if the decimal cannot hold it"),
    NestedField(19, "refine_flag", StringType(), required=False, doc="excess_precision or out_of_range"),
)


REGISTRATION_SCHEMA = Schema(
    NestedField(1, "mpan", StringType(), required=True),
    NestedField(2, "role", StringType(), required=True, doc="SUP, SDS, ADS, UMSDS, MSS, MSA or UMSO"),
    NestedField(3, "participant", StringType(), required=True, doc="MPID"),
    NestedField(4, "effective_from", DateType(), required=True),
    NestedField(5, "effective_to", DateType(), required=False, doc="null while active"),
    NestedField(6, "status", StringType(), required=True, doc="active or ended"),
    NestedField(7, "segment", StringType(), required=False),
    NestedField(8, "energisation", StringType(), required=False, doc="as confirmed"),
    NestedField(9, "domestic", BooleanType(), required=False),
    NestedField(10, "consent", StringType(), required=False),
    NestedField(11, "transaction_id", StringType(), required=False, doc="the confirming IF-036"),
    NestedField(12, "participant_dip_id", StringType(), required=False, doc="the DIP ID of that MPID in that role"),
)

ACCESS_LOG_SCHEMA = Schema(
    NestedField(1, "day", DateType(), required=True, doc="UTC date the access started"),
    NestedField(2, "started_at", TimestamptzType(), required=True),
    NestedField(3, "ended_at", TimestamptzType(), required=True),
    NestedField(4, "subject", StringType(), required=True, doc="participant MPID or DIP ID"),
    NestedField(5, "role", StringType(), required=True),
    NestedField(6, "endpoint", StringType(), required=True),
    NestedField(7, "filters", StringType(), required=True, doc="the request's filters as JSON"),
    NestedField(8, "snapshot_id", LongType(), required=False),
    NestedField(9, "rows", LongType(), required=True),
    NestedField(10, "bytes", LongType(), required=True),
    NestedField(11, "checksum", StringType(), required=False, doc="hex digest of the body sent"),
    NestedField(12, "outcome", StringType(), required=True, doc="ok, or the problem code"),
    NestedField(13, "checksum_algorithm", StringType(), required=False, doc="sha256 or blake3 (null: sha256)"),
)


REFINE_REJECTS_SCHEMA = Schema(
    NestedField(1, "target", StringType(), required=True, doc="the typed table the row was refused by"),
    NestedField(2, "source_topic", StringType(), required=True),
    NestedField(3, "source_partition", IntegerType(), required=True),
    NestedField(4, "source_offset", LongType(), required=True),
    NestedField(5, "transaction_id", StringType(), required=False),
    NestedField(6, "mpan", StringType(), required=False),
    NestedField(7, "utc_settlement_date", DateType(), required=False),
    NestedField(8, "field", StringType(), required=True, doc="the field that could not be refined"),
    NestedField(9, "value_as_sent", StringType(), required=False, doc="the field as sent"),
    NestedField(10, "reason", StringType(), required=True, doc="stable code, e.g. invalid_period_end"),
    NestedField(11, "refined_at", TimestamptzType(), required=True),
)


QUALITY_RUNS_SCHEMA = Schema(
    NestedField(1, "run_id", StringType(), required=True),
    NestedField(2, "suite", StringType(), required=True),
    NestedField(3, "utc_settlement_date", DateType(), required=True),
    NestedField(4, "started_at", TimestamptzType(), required=True),
    NestedField(5, "ended_at", TimestamptzType(), required=True),
    NestedField(6, "events_snapshot_id", LongType(), required=False, doc="the snapshots validated"),
    NestedField(7, "consumption_snapshot_id", LongType(), required=False),
    NestedField(8, "registration_snapshot_id", LongType(), required=False),
    NestedField(9, "evaluated", LongType(), required=True, doc="entities the suite validated"),
    NestedField(10, "unexpected_by_rule", StringType(), required=True, doc='JSON {"rule": entities}'),
    NestedField(11, "errors", LongType(), required=True),
    NestedField(12, "warnings", LongType(), required=True),
    NestedField(13, "success", BooleanType(), required=True, doc="no unexpected entity of any severity"),
    NestedField(14, "fingerprint", StringType(), required=True, doc="what was validated (files and snapshots)"),
)

QUALITY_FINDINGS_SCHEMA = Schema(
    NestedField(1, "run_id", StringType(), required=True),
    NestedField(2, "suite", StringType(), required=True),
    NestedField(3, "rule", IntegerType(), required=True, doc="DOMAIN.md's rule number"),
    NestedField(4, "severity", StringType(), required=True, doc="error, warning, info or kpi"),
    NestedField(5, "check", StringType(), required=True, doc="the expectation that found it"),
    NestedField(6, "utc_settlement_date", DateType(), required=True),
    NestedField(7, "mpan", StringType(), required=False),
    NestedField(8, "measurement_quantity", StringType(), required=False),
    NestedField(9, "participant", StringType(), required=False, doc="data service DIP ID, sender or MPID"),
    NestedField(10, "transaction_id", StringType(), required=False),
    NestedField(11, "observed", StringType(), required=False),
    NestedField(12, "expected", StringType(), required=False),
)

COMPLETENESS_SCHEMA = Schema(
    NestedField(1, "run_id", StringType(), required=True),
    NestedField(2, "topic", StringType(), required=True),
    NestedField(3, "utc_settlement_date", DateType(), required=True),
    NestedField(4, "certified_at", TimestamptzType(), required=True),
    NestedField(5, "events_snapshot_id", LongType(), required=False, doc="the snapshot the certificate describes"),
    NestedField(6, "quarantine_snapshot_id", LongType(), required=False),
    NestedField(7, "events", LongType(), required=True, doc="events of the topic on the date"),
    NestedField(8, "quarantined", LongType(), required=True, doc="quarantined records of the topic (any date)"),
    NestedField(9, "offset_gaps", StringType(), required=True, doc="JSON [[partition, from, to), ...] of the topic"),
    NestedField(10, "gap_offsets", LongType(), required=True),
    NestedField(11, "expected_channels", LongType(), required=False, doc="IF-021: MPAN x quantity due"),
    NestedField(12, "missing_channels", LongType(), required=False),
    NestedField(13, "missing", StringType(), required=False, doc='JSON [["mpan", "quantity"], ...]'),
    NestedField(14, "late_arrivals", LongType(), required=True, doc="events landed over N days after the date"),
    NestedField(15, "late_after_days", IntegerType(), required=True),
    NestedField(16, "complete", BooleanType(), required=True, doc="no gap and nothing missing"),
)


GRANTS_SCHEMA = Schema(
    NestedField(1, "grant_id", StringType(), required=True),
    NestedField(2, "version", IntegerType(), required=True, doc="1 when created, +1 per amendment or revocation"),
    NestedField(3, "status", StringType(), required=True, doc="active or revoked"),
    NestedField(4, "recipient", StringType(), required=True, doc="the recipient's token subject"),
    NestedField(5, "dataset", StringType(), required=True),
    NestedField(6, "filters", StringType(), required=True, doc="JSON: topics, dates, GSP groups, distributors, MPANs"),
    NestedField(7, "columns", StringType(), required=True, doc="JSON list (empty: all the policy allows)"),
    NestedField(8, "masking", StringType(), required=True, doc="JSON overrides of the third-party policy (stricter)"),
    NestedField(9, "schedule", StringType(), required=True, doc="cron, UTC"),
    NestedField(10, "format", StringType(), required=True),
    NestedField(11, "destination", StringType(), required=True),
    NestedField(12, "valid_from", TimestamptzType(), required=True),
    NestedField(13, "valid_to", TimestamptzType(), required=False),
    NestedField(14, "approved_by", StringType(), required=True),
    NestedField(15, "recorded_at", TimestamptzType(), required=True),
    NestedField(16, "note", StringType(), required=False),
)

DELIVERIES_SCHEMA = Schema(
    NestedField(1, "delivery_id", StringType(), required=True),
    NestedField(2, "grant_id", StringType(), required=True),
    NestedField(3, "grant_version", IntegerType(), required=True),
    NestedField(4, "recipient", StringType(), required=True),
    NestedField(5, "dataset", StringType(), required=True),
    NestedField(6, "full", BooleanType(), required=True),
    NestedField(7, "source_table", StringType(), required=True),
    NestedField(8, "snapshot_from", LongType(), required=False, doc="exclusive; null for a full delivery"),
    NestedField(9, "snapshot_to", LongType(), required=False),
    NestedField(10, "files", IntegerType(), required=True),
    NestedField(11, "rows", LongType(), required=True),
    NestedField(12, "bytes", LongType(), required=True),
    NestedField(13, "manifest_sha256", StringType(), required=True),
    NestedField(14, "location", StringType(), required=True),
    NestedField(15, "policy_version", StringType(), required=True),
    NestedField(16, "created_at", TimestamptzType(), required=True),
)

LEASES_SCHEMA = Schema(
    NestedField(1, "name", StringType(), required=True),
    NestedField(2, "holder", StringType(), required=True),
    NestedField(3, "acquired_at", TimestamptzType(), required=True),
    NestedField(4, "expires_at", TimestamptzType(), required=True),
)


@dataclass(frozen=True, slots=True)
class TableDef:
    """A table's name, schema, partition spec and sort order."""

    name: str
    schema: Schema
    partition_spec: PartitionSpec
    sort_order: SortOrder

    @property
    def arrow_schema(self) -> pa.Schema:
        return schema_to_pyarrow(self.schema, include_field_ids=False)


def _table(
    name: str, schema: Schema, partition: tuple[tuple[int, str], ...], sort: tuple[int, ...]
) -> tuple[str, TableDef]:
    """A table partitioned by identity on ``partition`` (source field ID, name) and sorted by ``sort``."""
    spec = PartitionSpec(
        *(PartitionField(fid, 1000 + i, IdentityTransform(), pname) for i, (fid, pname) in enumerate(partition))
    )
    order = SortOrder(*(SortField(fid, IdentityTransform()) for fid in sort))
    return name, TableDef(name, schema, spec, order)


TABLES: dict[str, TableDef] = dict(
    [
        _table(EVENTS, EVENTS_SCHEMA, ((1, "topic"), (18, "settlement_date")), (2, 3)),
        _table(QUARANTINE, QUARANTINE_SCHEMA, ((1, "topic"),), (2, 3)),
        _table(CONSUMPTION, CONSUMPTION_SCHEMA, ((3, "utc_settlement_date"),), (1, 4)),
        _table(REGISTRATION, REGISTRATION_SCHEMA, ((2, "role"),), (1, 4)),
        _table(ACCESS_LOG, ACCESS_LOG_SCHEMA, ((1, "day"),), (2,)),
        _table(REFINE_REJECTS, REFINE_REJECTS_SCHEMA, ((1, "target"),), (2, 3, 4)),
        _table(QUALITY_RUNS, QUALITY_RUNS_SCHEMA, ((3, "utc_settlement_date"),), (4,)),
        _table(QUALITY_FINDINGS, QUALITY_FINDINGS_SCHEMA, ((6, "utc_settlement_date"),), (3, 7)),
        _table(COMPLETENESS, COMPLETENESS_SCHEMA, ((3, "utc_settlement_date"),), (2,)),
        _table(GRANTS, GRANTS_SCHEMA, (), (1, 2)),
        _table(DELIVERIES, DELIVERIES_SCHEMA, (), (16,)),
        _table(LEASES, LEASES_SCHEMA, (), (3,)),
    ]
)


def table_properties(settings: LakehouseSettings, name: str | None = None) -> dict[str, str]:
    """Properties that keep commits cheap and metadata bounded as the table ages (of table ``name``)."""
    props = {
        "format-version": "2",
        "commit.retry.num-retries": "0",  # the writer owns the retry policy (it re-merges offsets)
        "commit.manifest-merge.enabled": "true",
        "commit.manifest.min-count-to-merge": "50",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": str(settings.metadata_versions_max),
        "write.target-file-size-bytes": str(settings.target_file_mb * 1024 * 1024 * 4),
        "write.parquet.compression-codec": "zstd",
        "write.parquet.row-group-limit": "50000",
    }
    if name in PAYLOAD_TABLES:
        # rows per Parquet page of the tables whose rows carry a message (~6.5 KB): ~0.8 MB pages, as
        # Java engines read it. pyarrow takes it as the rows it encodes at a time: with pyiceberg's
        # default, 20000, a whole batch went into one page and one dictionary attempt per file, six
        # files at once (memray: 197 MB at the worker's peak; +146 MB vs +15 MB writing 46 MB of values)
        props["write.parquet.page-row-limit"] = "128"
    return props


def identifier(settings: LakehouseSettings, name: str) -> str:
    """The full identifier of one of the product's tables."""
    return f"{settings.namespace}.{name}"


def ensure_table(catalog: Catalog, settings: LakehouseSettings, name: str) -> Table:
    """Load the table ``name``, creating it (idempotently) on first use, with migrations applied."""
    from lakehouse.migrations import add_missing_properties, migrate

    ident = identifier(settings, name)
    try:
        table = catalog.load_table(ident)
    except NoSuchTableError:
        table = _create(catalog, settings, name, ident)
    migrate(table, name)
    add_missing_properties(table, table_properties(settings, name), ident)
    return table


def _create(catalog: Catalog, settings: LakehouseSettings, name: str, ident: str) -> Table:
    """Create ``name`` at its latest schema, so no migration is pending on a new table."""
    from lakehouse.migrations import VERSION_PROPERTY, latest_version

    d = TABLES[name]
    return catalog.create_table_if_not_exists(
        ident,
        schema=d.schema,
        partition_spec=d.partition_spec,
        sort_order=d.sort_order,
        properties={**table_properties(settings, name), VERSION_PROPERTY: str(latest_version(name))},
    )
