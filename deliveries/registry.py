"""The grants registry: add, amend, revoke and read grants, every version kept in the ``grants`` table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from croniter import croniter

from access.aggregates import aggregate_schema
from access.grants import BASE_PROFILE, DATASETS, Grant, GrantError, check_grant, current_grants
from access.policy import Policy
from access.protect import masked_schema
from lakehouse.store import Store
from lakehouse.tables import CONSUMPTION, EVENTS, GRANTS, REGISTRATION, TABLES

FORMATS = ("parquet", "csv", "ndjson")
SOURCE_TABLE = {
    "events": EVENTS,
    "consumption": CONSUMPTION,
    "consumption_aggregate": CONSUMPTION,
    "registration": REGISTRATION,
}


def available_columns(policy: Policy) -> dict[str, tuple[str, ...]]:
    """Per data set, the columns a third party receives (after the third-party masking)."""
    out = {name: tuple(masked_schema(TABLES[SOURCE_TABLE[name]].arrow_schema, BASE_PROFILE, policy, b"-").names)
           for name in DATASETS if name != "consumption_aggregate"}  # fmt: skip
    out["consumption_aggregate"] = tuple(aggregate_schema("day").names)
    return out


def check_schedule(cron: str) -> None:
    """Refuse a schedule that is not a five-field cron expression (UTC).

    Raises:
        GrantError: with what is wrong.
    """
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise GrantError(f"schedule {cron!r} is not a five-field cron expression (minute hour day month weekday)")


class GrantRegistry:
    """Grants as the store keeps them; every change validated, appended as a new version."""

    def __init__(self, store: Store, policy: Policy) -> None:
        self._store = store
        self._policy = policy

    def _check(self, grant: Grant) -> None:
        check_grant(grant, self._policy, available_columns(self._policy))
        check_schedule(grant.schedule)
        if grant.format not in FORMATS:
            raise GrantError(f"format {grant.format!r}: one of {', '.join(FORMATS)}")
        if not grant.destination:
            raise GrantError("a grant needs a destination (a directory or an s3:// prefix)")

    def _append(self, grant: Grant) -> Grant:
        row = pa.Table.from_pylist([grant.to_row()], schema=TABLES[GRANTS].arrow_schema)
        self._store.append(GRANTS, row)
        return grant

    def add(self, grant: Grant) -> Grant:
        """Record a new grant (version 1).

        Raises:
            GrantError: if it is not valid, looser than the third-party policy, or its ID is taken.
        """
        self._check(grant)
        if grant.grant_id in self.all():
            raise GrantError(f"grant {grant.grant_id} exists: amend or revoke it")
        return self._append(replace(grant, version=1, status="active", recorded_at=datetime.now(UTC)))

    def amend(self, grant_id: str, approved_by: str, **changes: Any) -> Grant:
        """Record a new version of a grant with ``changes``.

        Raises:
            GrantError: if there is no such active grant, or the new version is not valid.
        """
        current = self.get(grant_id)
        if current.status != "active":
            raise GrantError(f"grant {grant_id} is {current.status}: it cannot be amended")
        amended = replace(
            current, **changes, version=current.version + 1, approved_by=approved_by, recorded_at=datetime.now(UTC)
        )
        self._check(amended)
        return self._append(amended)

    def revoke(self, grant_id: str, by: str) -> Grant:
        """Revoke a grant (a new version, status revoked): nothing more is delivered under it.

        Raises:
            GrantError: if there is no such grant or it is already revoked.
        """
        current = self.get(grant_id)
        if current.status == "revoked":
            raise GrantError(f"grant {grant_id} is already revoked")
        return self._append(current.revoked(by))

    def get(self, grant_id: str) -> Grant:
        """The latest version of a grant.

        Raises:
            GrantError: if there is none.
        """
        grant = self.all().get(grant_id)
        if grant is None:
            raise GrantError(f"no grant {grant_id!r}")
        return grant

    def all(self) -> dict[str, Grant]:
        """The latest version of every grant."""
        return current_grants(self._store.read(GRANTS))

    def history(self, grant_id: str) -> list[Grant]:
        """Every version of a grant, oldest first."""
        rows = self._store.read(GRANTS).to_pylist()
        return sorted((Grant.from_row(r) for r in rows if r["grant_id"] == grant_id), key=lambda g: g.version)
