"""Consumption aggregates: the aggregate-only view of half-hourly data (LDSOs, third parties)."""

from __future__ import annotations

from access.aggregates import AggregateLevel, aggregate_schema, summarise_consumption
from access.guard import AccessGuard
from access.principal import Principal
from access.protect import coalesce
from api.services.extracts import Extract, ExtractFilters, pin_snapshot
from lakehouse.store import Store
from lakehouse.tables import CONSUMPTION


class AggregateService:
    """Sums of entitled consumption per group, small groups suppressed."""

    def __init__(self, store: Store, guard: AccessGuard, batch_rows: int, min_mpans: int) -> None:
        self._store = store
        self._guard = guard
        self._batch_rows = batch_rows
        self._min_mpans = min_mpans

    def consumption(self, principal: Principal, f: ExtractFilters, by: AggregateLevel) -> Extract:
        """Consumption summed over the MPANs the caller is entitled to, per day or half hour.

        Groups are (UTC settlement date[, period end], measurement quantity, distributor); a group
        of fewer than the configured minimum of MPANs is left out, so no household can be singled
        out. No MPAN, and so nothing personal, is in the output: every role may ask.
        """
        snap = pin_snapshot(self._store, CONSUMPTION, f)
        schema = aggregate_schema(by)
        if snap is None:
            return snap, iter(()), schema
        entitled = self._guard.entitlement(principal, self._guard.current_snapshot())
        columns = ["mpan", "measurement_quantity", "utc_settlement_date", "period_end_utc", "consumption_kwh"]
        # the current version of each half hour only: a revised day counts once
        source = self._store.iter_typed(CONSUMPTION, f.date_from, f.date_to, f.mpans, snap, self._batch_rows, "latest")
        stream = (entitled(t).select(columns) for t in coalesce(source, self._batch_rows))
        rows = summarise_consumption(stream, by, self._min_mpans)
        return snap, iter(rows.cast(schema).to_batches(max_chunksize=self._batch_rows)), schema
