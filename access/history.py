"""The appointment history entitlements are decided from, as of the events snapshot served.

Intervals (mpan, participant, role, eff_from, eff_to, domestic, ...) come from the registration events
in the store (IF-036 / IF-037 / IF-018 / IF-026), computed by the lakehouse's registration refine SQL,
and are cached for a few snapshots.
"""

from __future__ import annotations

import threading

import pyarrow as pa

from access.entitlements import Entitlement
from access.grants import GrantScope
from access.principal import Principal
from lakehouse.query import EventQuery
from lakehouse.refine.registration import INTERFACES, SOURCE_COLUMNS, registration_intervals
from lakehouse.store import Store
from lakehouse.tables import EVENTS


class AppointmentHistory:
    """Appointment intervals per events snapshot (the last ``keep`` snapshots cached)."""

    def __init__(self, store: Store, keep: int = 4) -> None:
        self._store = store
        self._keep = keep
        self._cache: dict[int | None, pa.Table] = {}
        self._lock = threading.Lock()

    def current_snapshot(self) -> int | None:
        """The events snapshot entitlements are decided from when a read does not pin one."""
        return self._store.resolve(EVENTS)

    def intervals(self, events_snapshot: int | None) -> pa.Table:
        """The appointment intervals as of ``events_snapshot``."""
        with self._lock:
            cached = self._cache.get(events_snapshot)
        if cached is not None:
            return cached
        source = self._store.read_events(EventQuery(interfaces=INTERFACES), SOURCE_COLUMNS, events_snapshot)
        computed = registration_intervals(source)
        with self._lock:
            while len(self._cache) >= self._keep:
                self._cache.pop(next(iter(self._cache)))
            self._cache[events_snapshot] = computed
        return computed

    def entitlement(
        self, principal: Principal, events_snapshot: int | None, premises: bool = False, scope: GrantScope | None = None
    ) -> Entitlement:
        """What ``principal`` may see, with the history as of ``events_snapshot`` when it (or ``premises``) needs it."""
        needed = principal.needs_history or premises
        return Entitlement(principal, self.intervals(events_snapshot) if needed else None, scope)
