"""The quarantine vocabulary: a stable code for every way a record can be technically invalid."""

from __future__ import annotations

# Stable quarantine codes, in the order ingest's checks run, with what each means.
ERROR_CODES: dict[str, str] = {
    "tombstone": "the record has no value (a tombstone)",
    "oversized": "the value is larger than the configured maximum",
    "invalid_utf8": "the value is not valid UTF-8",
    "invalid_json": "the value is not valid JSON",
    "invalid_envelope": "the value is not a DIP envelope with CommonBlock.S0",
    "unknown_topic": "the topic is not in the topic catalogue",
    "unknown_interface": "the interfaceID has no schema",
    "topic_mismatch": "the interface does not belong on this topic",
    "unknown_schema_version": "the schemaVersion of this interface has no schema",
    "missing_settlement_date": "the settlement-date field is missing",
    "invalid_settlement_date": "the settlement-date field is not a valid date",
    "schema_violation": "the message does not match its interface's JSON Schema",
}
