"""The access policy in force for one process: who sees which rows, and what of them.

One ``AccessGuard`` holds the masking policy, its secret and the appointment history; the API,
scheduled deliveries and quality findings all pass their rows through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa

from access.entitlements import Entitlement
from access.grants import BASE_PROFILE, GrantScope, current_grants
from access.history import AppointmentHistory
from access.masking import mask_batch
from access.policy import Policy
from access.principal import Principal
from access.protect import protect, source_columns
from lakehouse.store import Store
from lakehouse.tables import GRANTS


class AccessGuard:
    """Entitlements from the store's appointment history, masking from the policy."""

    def __init__(self, store: Store, policy: Policy, mask_secret: bytes) -> None:
        self.policy = policy
        self.history = AppointmentHistory(store)
        self._store = store
        self._secret = mask_secret

    def current_snapshot(self) -> int | None:
        """The events snapshot entitlements are decided from when a read does not pin one."""
        return self.history.current_snapshot()

    def entitlement(self, principal: Principal, events_snapshot: int | None) -> Entitlement:
        """The rows ``principal`` may see, per the history as of ``events_snapshot`` (and a third party's grants)."""
        scope = self.grant_scope(principal) if principal.role == BASE_PROFILE else None
        premises = self.policy.splits_domestic(principal.role)
        return self.history.entitlement(principal, events_snapshot, premises, scope)

    def grant_scope(self, principal: Principal, at: datetime | None = None) -> GrantScope:
        """The grants a third party's token names that are its own and in force now."""
        grants = current_grants(self._store.read(GRANTS))
        now = at or datetime.now(UTC)
        named = (grants.get(gid) for gid in principal.grants)
        return GrantScope(tuple(g for g in named if g and g.recipient == principal.subject and g.active_at(now)))

    def mask(self, rows: pa.Table, principal: Principal, entitlement: Entitlement) -> pa.Table:
        """Entitled ``rows`` as ``principal``'s role may see them."""
        domestic = entitlement.domestic(rows) if self.policy.splits_domestic(principal.role) else None
        return mask_batch(rows, principal.role, self.policy, self._secret, domestic)

    def protect(
        self,
        principal: Principal,
        batches: Iterator[pa.RecordBatch],
        schema: pa.Schema,
        events_snapshot: int | None,
        columns: tuple[str, ...] = (),
        batch_rows: int = 2_000,
        first_rows: int | None = None,
    ) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
        """Entitled and masked batches (and their schema) of a stream of ``schema``-shaped rows.

        Batches hold up to ``batch_rows`` rows; the first at most ``first_rows`` (when given).
        """
        entitlement = self.entitlement(principal, events_snapshot)
        return protect(batches, schema, entitlement, self.policy, self._secret, columns, batch_rows, first_rows)

    def source_columns(self, principal: Principal, schema: pa.Schema, columns: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The columns of ``schema`` worth reading for ``principal`` (what it receives and what decides it)."""
        return source_columns(schema, principal.role, self.policy, self._secret, columns)

    def warm_up(self) -> None:
        """Compute the current appointment intervals ahead of the first request."""
        self.history.intervals(self.current_snapshot())
