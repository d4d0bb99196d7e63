"""Masking by role, from the policy, applied to Arrow tables before anything leaves the store.

Columns and payload fields the policy does not know are personal: removed for every role that
is not all-keep. Payloads of all-keep roles stay byte-identical.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from access.policy import Policy
from access.tokens import keyed_hash, mpan_token, token_array


def _outward(postcode: str) -> str:
    return postcode.strip().split(" ")[0] if postcode else postcode


def _masked_value(kind: str, action: str, value: Any, secret: bytes) -> tuple[bool, Any]:
    """(kept, value) for one known personal field; remove and aggregate drop it."""
    if action == "keep":
        return True, value
    if action == "token" and isinstance(value, str):
        return True, mpan_token(value, secret) if kind == "mpan" else keyed_hash(value, secret)
    if action == "token" and isinstance(value, list):
        return True, [keyed_hash(str(x), secret) for x in value]
    if action == "outward" and isinstance(value, str):
        return True, _outward(value)
    return False, None


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
                    kept, masked = _masked_value(kind, policy.action(role, kind), v, secret)
                    if kept:
                        out[k] = masked
                elif policy.is_safe_path(sub):
                    out[k] = walk(v, sub)
                # a field the policy does not know is personal: dropped
            return out
        if isinstance(node, list):
            return [walk(x, path) for x in node]
        return node

    return orjson.dumps(walk(doc, ""))


def mask_batch(batch: pa.Table, role: str, policy: Policy, secret: bytes) -> pa.Table:
    """Mask an Arrow table for ``role`` (vectorised per column; payloads per row)."""
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
            columns[name] = token_array(col, secret)
        # remove / aggregate / outward on a whole column: left out
    return pa.table(columns)
