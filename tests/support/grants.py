"""Grants for tests: a third party's token names a grant, the grant lists what it covers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from access.grants import Grant
from access.policy import load_policy
from deliveries.registry import GrantRegistry
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store


def grant_mpans(lake: LakehouseSettings, grant_id: str, recipient: str, mpans: Sequence[str]) -> str:
    """Record (once) a consumption grant over ``mpans`` for ``recipient``; return its ID for the token."""
    registry = GrantRegistry(Store(lake), load_policy())
    if grant_id not in registry.all():
        registry.add(
            Grant(
                grant_id=grant_id,
                recipient=recipient,
                dataset="consumption",
                schedule="0 6 * * *",
                destination="/tmp/mhhs-test-deliveries",
                approved_by="tests",
                mpans=tuple(mpans),
                valid_from=datetime.now(UTC) - timedelta(days=1),
            )
        )
    return grant_id
