"""Errors raised by the lakehouse; each says what to do next."""

from __future__ import annotations


class LakehouseError(Exception):
    """Root of every lakehouse error."""


class CatalogUnavailableError(LakehouseError):
    """The Iceberg catalog cannot be opened: check MHHS_CATALOG_* and MHHS_WAREHOUSE."""


class CommitConflictError(LakehouseError):
    """A commit kept losing races with other writers; back off and retry later."""

    def __init__(self, table: str, attempts: int) -> None:
        super().__init__(f"commit to {table} still conflicting after {attempts} attempts; retry later")
        self.table = table
        self.attempts = attempts


class SnapshotNotFoundError(LakehouseError):
    """The requested snapshot, tag or time is not in the table's retained history."""

    def __init__(self, table: str, ref: str) -> None:
        super().__init__(f"{table}: no snapshot for {ref!r} in the retained history")
        self.table = table
        self.ref = ref
