"""The rows of a grant's data set, new since a snapshot (or all of them), entitled and masked through access.

Masking is the third-party policy with the grant's overrides on top (only ever stricter: checked
when the grant was recorded). The recipient is a ``third_party`` principal naming the grant, so its
rows are exactly those the grant covers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa

from access.aggregates import aggregate_schema, summarise_consumption
from access.grants import BASE_PROFILE, Grant
from access.guard import AccessGuard
from access.policy import Policy
from access.principal import Principal
from access.protect import coalesce
from deliveries.registry import SOURCE_TABLE
from lakehouse.query import EventQuery
from lakehouse.store import Store
from lakehouse.tables import CONSUMPTION, EVENTS, TABLES

# rewritten rather than appended to: delivered whole every time, whatever was delivered before
DELIVERED_WHOLE = frozenset({"registration"})


def grant_policy(policy: Policy, grant: Grant) -> Policy:
    """The third-party policy with the grant's (stricter) overrides."""
    roles = dict(policy.roles)
    roles[BASE_PROFILE] = {**policy.roles.get(BASE_PROFILE, {}), **grant.masking}
    return replace(policy, roles=roles)


def recipient(grant: Grant) -> Principal:
    """Who a delivery is for: the grant's recipient, as a third party holding just this grant."""
    return Principal(grant.recipient, BASE_PROFILE, frozenset(), (grant.grant_id,))


def grant_rows(
    store: Store,
    guard: AccessGuard,
    grant: Grant,
    snapshot_from: int | None,
    snapshot_to: int | None,
    batch_rows: int,
) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
    """The grant's rows added after ``snapshot_from`` up to ``snapshot_to`` (all of them when it is None).

    Appended rows come from Iceberg's incremental append scan between the two snapshots; the
    registration table is rewritten rather than appended to, so it is always delivered whole.
    """
    name = SOURCE_TABLE[grant.dataset]
    principal = recipient(grant)
    events_snapshot = store.resolve(EVENTS)
    if snapshot_to is None:
        return guard.protect(principal, iter(()), TABLES[name].arrow_schema, events_snapshot, grant.columns)
    since = None if grant.dataset in DELIVERED_WHOLE else snapshot_from
    query = EventQuery(topics=grant.topics, date_from=grant.date_from, date_to=grant.date_to, mpans=grant.mpans)
    if grant.dataset == "consumption_aggregate":
        return _aggregate(store, guard, grant, principal, since, snapshot_to, batch_rows)
    schema = TABLES[name].arrow_schema
    read = guard.source_columns(principal, schema, grant.columns)
    batches = store.iter_rows(name, query, since, snapshot_to, batch_rows, read)
    return guard.protect(principal, batches, schema, events_snapshot, grant.columns, batch_rows)


def _aggregate(
    store: Store,
    guard: AccessGuard,
    grant: Grant,
    principal: Principal,
    since: int | None,
    snapshot_to: int,
    batch_rows: int,
) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
    """Daily sums over the grant's MPANs for every date with new rows, each date recomputed whole."""
    schema = aggregate_schema("day")
    query = EventQuery(date_from=grant.date_from, date_to=grant.date_to, mpans=grant.mpans)
    dates: set[object] = set()
    for batch in store.iter_rows(CONSUMPTION, query, since, snapshot_to, batch_rows, ("utc_settlement_date",)):
        dates.update(batch.column(0).to_pylist())
    if not dates:
        return iter(()), schema
    entitled = guard.entitlement(principal, store.resolve(EVENTS))
    columns = ["mpan", "measurement_quantity", "utc_settlement_date", "period_end_utc", "consumption_kwh"]
    rows: list[pa.Table] = []
    for day in sorted(dates, key=str):
        source = store.iter_typed(CONSUMPTION, day, day, grant.mpans, snapshot_to, batch_rows, "latest")  # type: ignore[arg-type]
        stream = (entitled(t).select(columns) for t in coalesce(source, batch_rows))
        rows.append(summarise_consumption(stream, "day", guard.policy.aggregate_min_mpans).cast(schema))
    table = pa.concat_tables(rows)
    if grant.columns:
        table = table.select([c for c in grant.columns if c in schema.names])
    return iter(table.to_batches(max_chunksize=batch_rows)), table.schema
