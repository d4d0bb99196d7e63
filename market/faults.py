"""Injected faults: business-rule defects (for the quality suites) and malformed records (for ingest).

Each fault is written to the ground-truth manifest with the record it touched.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import orjson

from market.messages import SimRecord, encode

# business fault -> the data-quality rule (DOMAIN.md numbering) it breaks
BUSINESS_FAULTS: dict[str, int] = {
    "missing_periods": 2,
    "duplicate_transaction": 3,
    "estimate_without_reason": 4,
    "unappointed_data_service": 7,
    "consumption_while_deenergised": 6,
    "bad_check_digit": 1,
    "outlier": 9,
    "zero_run": 10,
    "negative_value": 8,
    "excess_precision": 8,
    "gsp_mismatch": 12,
}

# malformed fault -> the quarantine error code ingest must give it
MALFORMED_FAULTS: dict[str, str] = {
    "invalid_json": "invalid_json",
    "invalid_utf8": "invalid_utf8",
    "not_an_object": "invalid_envelope",
    "schema_violation": "schema_violation",
    "wrong_type": "schema_violation",
    "unknown_interface": "unknown_interface",
    "unknown_schema_version": "unknown_schema_version",
    "missing_settlement_date": "missing_settlement_date",
    "invalid_settlement_date": "invalid_settlement_date",
    "tombstone": "tombstone",
    "oversized": "oversized",
    "topic_mismatch": "topic_mismatch",
}


@dataclass(frozen=True, slots=True)
class FaultEntry:
    """One injected fault: which record (sequence number and identity) and which fault."""

    seq: int
    topic: str
    key: str | None
    transaction_id: str
    kind: str  # "business" | "malformed"
    fault: str
    expected_code: str | None = None
    rule: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultPicker:
    """Chooses faults by rate; every kind is used once before any repeats, then at random."""

    def __init__(self, rng: np.random.Generator, kinds: list[str], rate: float) -> None:
        self._rng = rng
        self._kinds = kinds
        self._unused = list(kinds)
        self._rate = rate

    def pick(self, exclude: frozenset[str] = frozenset()) -> str | None:
        if self._rate <= 0 or self._rng.random() >= self._rate:
            return None
        pool = [k for k in self._unused if k not in exclude] or [k for k in self._kinds if k not in exclude]
        if not pool:
            return None
        kind = pool[int(self._rng.integers(0, len(pool)))]
        if kind in self._unused:
            self._unused.remove(kind)
        return kind


def _periods(message: dict[str, Any]) -> list[dict[str, Any]]:
    periods: list[dict[str, Any]] = message["CustomBlock"]["periods"]
    return periods


def apply_business_fault(
    fault: str, message: dict[str, Any], rng: np.random.Generator, other_ds_dip: str
) -> dict[str, Any]:
    """Return a copy of an IF-021 ``message`` carrying the business ``fault``."""
    msg = copy.deepcopy(message)
    periods = _periods(msg)
    common = msg["CommonBlock"]
    if fault == "missing_periods":
        for i in sorted(rng.choice(len(periods), size=3, replace=False), reverse=True):
            del periods[int(i)]
    elif fault == "estimate_without_reason":
        p = periods[int(rng.integers(0, len(periods)))]
        p["settlementPeriodQualityIndicator"] = "E2"
        p.pop("estimationReasonCode", None)
    elif fault == "unappointed_data_service":
        msg["CustomBlock"]["dataServiceDIPID"] = other_ds_dip
        common["S1"]["senderDIPID"] = other_ds_dip
    elif fault == "bad_check_digit":
        mpan = common["M0"]["MPANCore"]
        common["M0"]["MPANCore"] = mpan[:12] + str((int(mpan[12]) + 1) % 10)
    elif fault == "outlier":
        p = periods[int(rng.integers(0, len(periods)))]
        p["consumption"] = round(max(float(p["consumption"]), 0.05) * 25.0, 3)
    elif fault == "zero_run":
        start = int(rng.integers(0, 20))
        for p in periods[start : start + 24]:
            p["consumption"] = 0.0
            p["settlementPeriodQualityIndicator"] = "A"
            p.pop("estimationReasonCode", None)
    elif fault == "negative_value":
        periods[int(rng.integers(0, len(periods)))]["consumption"] = -0.25
    elif fault == "excess_precision":
        periods[int(rng.integers(0, len(periods)))]["consumption"] = 0.1234
    elif fault == "gsp_mismatch":
        gsp = common["M0"]["GSPGroupID"]
        common["M0"]["GSPGroupID"] = "_A" if gsp != "_A" else "_B"
    # duplicate_transaction and consumption_while_deenergised change no field
    return msg


def apply_malformed_fault(
    fault: str,
    record: SimRecord,
    message: dict[str, Any],
    other_topic: str,
    max_message_bytes: int,
) -> SimRecord:
    """Return a technically malformed version of ``record`` (the original stays untouched)."""
    headers = record.headers
    if fault == "invalid_json":
        value: bytes | None = (record.value or b"")[: max(10, len(record.value or b"") // 2)]
    elif fault == "invalid_utf8":
        value = b'{"CommonBlock": "\xff\xfe\xfa"}' + (record.value or b"")[:20]
    elif fault == "not_an_object":
        value = b'["CommonBlock", "CustomBlock"]'
    elif fault == "tombstone":
        value = None
    elif fault == "oversized":
        raw = record.value or b"{}"
        value = raw[:-1] + b" " * (max_message_bytes + 1024) + raw[-1:]
    elif fault == "topic_mismatch":
        return SimRecord(other_topic, record.key, record.value, headers, record.transaction_id, record.interface)
    else:
        msg = copy.deepcopy(message)
        custom = msg["CustomBlock"]
        s0 = msg["CommonBlock"]["S0"]
        if fault == "schema_violation":
            custom.pop("measurementQuantityID", None)
        elif fault == "wrong_type":
            custom["periods"][0]["consumption"] = "lots"
        elif fault == "unknown_interface":
            s0["interfaceID"] = "IF-999"
        elif fault == "unknown_schema_version":
            s0["schemaVersion"] = "999"
        elif fault == "missing_settlement_date":
            custom.pop("utcSettlementDate", None)
        elif fault == "invalid_settlement_date":
            custom["utcSettlementDate"] = custom["utcSettlementDate"][:8] + "32"
        rebuilt = encode(record.topic, record.key.decode() if record.key else None, msg)
        return rebuilt
    return SimRecord(record.topic, record.key, value, headers, record.transaction_id, record.interface)


def manifest_document(params: dict[str, Any], faults: list[FaultEntry], counts: dict[str, int]) -> bytes:
    """The ground-truth manifest as pretty JSON bytes."""
    return orjson.dumps(
        {
            "params": params,
            "records_by_topic": dict(sorted(counts.items())),
            "faults": [f.to_json() for f in faults],
        },
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
    )
