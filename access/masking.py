"""Masking by role, from the policy, applied to Arrow tables before anything leaves the store.

Columns and payload fields the policy does not know are personal: removed for every role that
is not all-keep. Payloads of all-keep roles stay byte-identical.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

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


def mask_payload(value: bytes, role: str, policy: Policy, secret: bytes, domestic: bool = True) -> bytes:
    """Rewrite one JSON payload for ``role``: known personal fields masked, unknown ones dropped.

    ``domestic`` says whether the payload is about domestic premises (the stricter reading by default).
    """
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
                    kind = policy.kind_for(kind, domestic)
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


def _masked_column(col: pa.ChunkedArray | pa.Array, action: str, secret: bytes) -> pa.ChunkedArray | pa.Array | None:
    """A whole column under one action (None: left out)."""
    if action == "keep":
        return col
    if action == "token":
        return token_array(col, secret)
    return None  # remove / aggregate / outward on a whole column


def mask_batch(batch: pa.Table, role: str, policy: Policy, secret: bytes, domestic: pa.Array | None = None) -> pa.Table:
    """Mask an Arrow table for ``role`` (vectorised per column; payloads per row).

    ``domestic`` (per row, True for domestic premises or unknown) matters for roles that see domestic
    and non-domestic consumption differently; without it every row is read as domestic. Such a role
    always gets the column (null where its row may not be seen), so every batch has one schema.
    """
    if policy.is_raw(role):
        return batch
    split = policy.splits_domestic(role)
    if split and domestic is None:
        domestic = pa.repeat(True, batch.num_rows)
    columns = {}
    for name in batch.column_names:
        kind = policy.columns.get(name)
        col = batch.column(name)
        if kind is None:
            continue  # unknown column: personal, removed
        if kind == "payload":
            flags = domestic.to_pylist() if split and domestic is not None else [True] * batch.num_rows
            columns[name] = pa.array(
                [
                    None if v is None else mask_payload(v, role, policy, secret, d)
                    for v, d in zip(col.to_pylist(), flags, strict=True)
                ],
                col.type,
            )
            continue
        masked = _masked_column(col, policy.action(role, kind), secret)
        other = policy.kind_for(kind, domestic=False)
        if split and other != kind and domestic is not None:
            non_domestic = _masked_column(col, policy.action(role, other), secret)
            if masked is None and non_domestic is None:
                continue
            nulls = pa.nulls(batch.num_rows, col.type)
            masked = pc.if_else(
                domestic, nulls if masked is None else masked, nulls if non_domestic is None else non_domestic
            )
        if masked is not None:
            columns[name] = masked
    return pa.table(columns)
