"""Masking by role, from the policy file, applied to Arrow batches before serialisation.

MPAN tokens keep the distributor digits, take ten digits from an HMAC of the MPAN and recompute
the check digit: stable, joinable and still valid under quality rule 1. Columns and payload
fields the policy does not know are personal: removed for every role that is not all-keep.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from contract.identifiers import mpan_check_digit


@dataclass(frozen=True, slots=True)
class Policy:
    """What each role may see of each kind of field."""

    roles: dict[str, dict[str, str]]
    columns: dict[str, str]
    payload: dict[str, str]
    payload_parents: frozenset[str] = frozenset()  # every proper prefix of a known payload path

    def action(self, role: str, kind: str) -> str:
        return self.roles.get(role, {}).get(kind, "remove")

    def is_raw(self, role: str) -> bool:
        """True when the role sees everything as published (payloads stay byte-identical)."""
        actions = self.roles.get(role)
        return bool(actions) and all(a == "keep" for a in actions.values())  # type: ignore[union-attr]


def load_policy(path: Path | None = None) -> Policy:
    """The policy at ``path`` (default: the one shipped with the API)."""
    raw = path.read_bytes() if path else _shipped()
    doc = orjson.loads(raw)
    payload: dict[str, str] = doc["payload"]
    parents = frozenset(path[:i] for path in payload for i, ch in enumerate(path) if ch == ".")
    return Policy(doc["roles"], doc["columns"], payload, parents)


@cache
def _shipped() -> bytes:
    return resources.files("api").joinpath("policy.json").read_bytes()


def mpan_token(mpan: str, secret: bytes) -> str:
    """Format-preserving MPAN token: distributor digits + 10 keyed-hash digits + check digit."""
    digest = hmac.new(secret, mpan.encode(), hashlib.sha256).digest()
    middle = f"{int.from_bytes(digest[:8], 'big') % 10**10:010d}"
    body = mpan[:2] + middle
    return body + str(mpan_check_digit(body))


def _token_array(values: pa.Array | pa.ChunkedArray, secret: bytes) -> pa.Array:
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    is_binary = pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)
    text = arr.cast(pa.large_string()) if is_binary else arr
    encoded = pc.dictionary_encode(text)
    uniques = [
        mpan_token(v, secret) if v is not None and len(v) == 13 else None for v in encoded.dictionary.to_pylist()
    ]  # once per distinct MPAN, not per row
    out = pc.take(pa.array(uniques, pa.large_string()), encoded.indices)
    return out.cast(arr.type)


def _outward(postcode: str) -> str:
    return postcode.strip().split(" ")[0] if postcode else postcode


def mask_payload(value: bytes, role: str, policy: Policy, secret: bytes) -> bytes:
    """Rewrite one JSON payload for ``role``: known personal fields masked, unknown ones dropped."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return b"null"
    known = policy.payload

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                sub = f"{path}.{k}" if path else k
                kind = known.get(sub)
                if kind is not None:
                    action = policy.action(role, kind)
                    if action == "keep":
                        out[k] = v
                    elif action == "token" and isinstance(v, str):
                        out[k] = (
                            mpan_token(v, secret)
                            if kind == "mpan"
                            else hmac.new(secret, v.encode(), hashlib.sha256).hexdigest()[:16]
                        )
                    elif action == "token" and isinstance(v, list):
                        out[k] = [hmac.new(secret, str(x).encode(), hashlib.sha256).hexdigest()[:16] for x in v]
                    elif action == "outward" and isinstance(v, str):
                        out[k] = _outward(v)
                    # remove / aggregate: the field is left out
                    continue
                if sub in policy.payload_parents or _is_envelope(sub):
                    out[k] = walk(v, sub)
                # a field the policy does not know is personal: dropped
            return out
        if isinstance(node, list):
            return [walk(x, path) for x in node]
        return node

    return orjson.dumps(walk(doc, ""))


_ENVELOPE_PREFIXES = ("CommonBlock", "CustomBlock")
_SAFE_CUSTOM = {
    "CustomBlock.effectiveFromDate",
    "CustomBlock.effectiveToDate",
    "CustomBlock.utcSettlementDate",
    "CustomBlock.measurementQuantityID",
    "CustomBlock.settlementPeriodDuration",
    "CustomBlock.dataServiceDIPID",
    "CustomBlock.connectionType",
    "CustomBlock.periods",
    "CustomBlock.periods.settlementPeriodEffectiveToDateTime",
    "CustomBlock.periods.settlementPeriodQualityIndicator",
    "CustomBlock.periods.estimationReasonCode",
    "CustomBlock.supplierMPID",
    "CustomBlock.supplierDIPID",
    "CustomBlock.segment",
    "CustomBlock.energisationStatus",
    "CustomBlock.appointments",
    "CustomBlock.appointments.serviceRole",
    "CustomBlock.appointments.serviceMPID",
    "CustomBlock.appointments.serviceDIPID",
    "CustomBlock.appointment",
    "CustomBlock.appointment.serviceRole",
    "CustomBlock.appointment.serviceMPID",
    "CustomBlock.appointment.serviceDIPID",
    "CustomBlock.gspGroupID",
    "CustomBlock.loadShapeCategory",
    "CustomBlock.periods.loadShapeValue",
    "CustomBlock.totals",
    "CustomBlock.totals.loadShapeCategory",
    "CustomBlock.totals.meteringPointCount",
    "CustomBlock.totals.totalConsumption",
    "CustomBlock.dataset",
    "CustomBlock.records",
    "CustomBlock.requestID",
    "CustomBlock.responseCode",
    "CustomBlock.appointmentStatus",
    "CustomBlock.deAppointmentReason",
    "CustomBlock.newSupplierMPID",
    "CustomBlock.newSupplierDIPID",
    "CustomBlock.oldSupplierMPID",
    "CustomBlock.oldSupplierDIPID",
    "CustomBlock.meteringPointAddress",
    "CustomBlock.defaultReason",
    "CustomBlock.originalTransactionID",
    "CustomBlock.warningCode",
    "CustomBlock.description",
    "CustomBlock.rejectionReason",
}


def _is_envelope(path: str) -> bool:
    if path in _ENVELOPE_PREFIXES or path.startswith("CommonBlock"):
        return True
    return path in _SAFE_CUSTOM or path.startswith("CustomBlock.records")


def mask_batch(batch: pa.Table, role: str, policy: Policy, secret: bytes) -> pa.Table:
    """Mask an events-shaped Arrow table for ``role`` (vectorised per column; payloads per row)."""
    if policy.is_raw(role):
        return batch
    columns = {}
    for name in batch.column_names:
        kind = policy.columns.get(name)
        col = batch.column(name)
        if kind is None:
            continue  # unknown column: personal, removed
        if kind == "payload":
            columns[name] = pa.array(
                [None if v is None else mask_payload(v, role, policy, secret) for v in col.to_pylist()], col.type
            )
            continue
        action = policy.action(role, kind)
        if action == "keep":
            columns[name] = col
        elif action == "token":
            columns[name] = _token_array(col, secret)
        # remove / aggregate / outward on a whole column: left out
    return pa.table(columns)
