"""Entitle and mask a stream of Arrow batches for one caller, batch by batch (bounded memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from access.entitlements import Entitlement
from access.intervals import DATE_COLUMNS
from access.masking import mask_batch
from access.policy import Policy


def coalesce(batches: Iterator[pa.RecordBatch], rows: int, first_rows: int | None = None) -> Iterator[pa.Table]:
    """Small batches (one per small file) gathered into tables of about ``rows`` rows.

    With ``first_rows``, the first table is cut at that many rows (a quick first byte for a stream
    of large tables); the rest of the batch it was cut from starts the next.
    """
    pending: list[pa.RecordBatch] = []
    count = 0
    target = min(first_rows or rows, rows)
    for batch in batches:
        if target < rows and count + batch.num_rows > target:  # the first table, cut at first_rows
            cut = target - count
            pending.append(batch.slice(0, cut))
            yield pa.Table.from_batches(pending)
            pending, count, batch, target = [], 0, batch.slice(cut), rows
        if batch.num_rows:
            pending.append(batch)
            count += batch.num_rows
        if count >= target:
            yield pa.Table.from_batches(pending)
            pending, count, target = [], 0, rows
    if pending:
        yield pa.Table.from_batches(pending)


def masked_schema(
    schema: pa.Schema, role: str, policy: Policy, secret: bytes, columns: tuple[str, ...] = ()
) -> pa.Schema:
    """The schema ``role`` receives for rows of ``schema`` (optionally only ``columns``)."""
    out = mask_batch(schema.empty_table(), role, policy, secret).schema
    if columns:
        out = pa.schema([out.field(c) for c in columns if c in out.names])
    return out


def source_columns(
    schema: pa.Schema, role: str, policy: Policy, secret: bytes, columns: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The columns of ``schema`` to read for what ``role`` receives: its output columns and those the
    entitlement and domestic split decide on (the MPAN, the dates, the GSP group). Reading only these
    keeps payloads and evidence columns a role never sees out of memory altogether."""
    need = set(masked_schema(schema, role, policy, secret, columns).names) | {"mpan", "gsp_group", *DATE_COLUMNS}
    return tuple(n for n in schema.names if n in need)


def protect(
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    entitlement: Entitlement,
    policy: Policy,
    secret: bytes,
    columns: tuple[str, ...] = (),
    batch_rows: int = 2_000,
    first_rows: int | None = None,
) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
    """The rows the caller may see, masked for its role, as a stream; and the stream's schema.

    Batches hold up to ``batch_rows`` rows; the first at most ``first_rows`` (when given).
    """
    out_schema = masked_schema(schema, entitlement.role, policy, secret, columns)

    def run() -> Iterator[pa.RecordBatch]:
        split = policy.splits_domestic(entitlement.role)
        for rows in coalesce(batches, batch_rows, first_rows):
            visible = entitlement(rows)
            domestic = entitlement.domestic(visible) if split else None
            masked = mask_batch(visible, entitlement.role, policy, secret, domestic)
            yield from masked.select(out_schema.names).cast(out_schema).to_batches(max_chunksize=batch_rows)

    return run(), out_schema
