"""pyiceberg's ``Transaction``, with the metadata it would commit computed once per state of its updates.

pyiceberg 0.12 recomputes ``Transaction.table_metadata`` on every read: it applies the
transaction's updates to a deep copy of the table's whole metadata, every snapshot and its summary
included, and a fast append reads it ~20 times. A commit therefore cost ~1 ms more for every
snapshot the table retains, and the product retains a week of them (one or two per ingest batch):
measured, the p50 of a 200-row commit was 80, 175 and 255 ms at 100, 200 and 300 snapshots, and
26, 39 and 46 ms with the metadata computed once per state (``/tmp`` script over
``LandingWriter.commit``; ``python bench/commit_latency.py`` measures it too).
"""

from __future__ import annotations

from pyiceberg.table import Table, TableMetadata, Transaction
from pyiceberg.table.update import TableUpdate, update_table_metadata


class CommitTransaction(Transaction):
    """A ``Transaction`` whose ``table_metadata`` is recomputed only when its base or its updates change.

    Both are replaced, never changed in place (a refresh gives the table new metadata; an update
    makes a new tuple of updates), so the cache is keyed by their identity. What pyiceberg reads
    from the result is read only, as when it got a fresh copy on every read. Both facts are
    pyiceberg 0.12's internals (reviewed on its append and commit-retry paths; pyproject pins
    <0.13): check them again before moving to a newer pyiceberg.
    """

    def __init__(self, table: Table, autocommit: bool = False) -> None:
        super().__init__(table, autocommit)
        self._computed: tuple[TableMetadata, tuple[TableUpdate, ...], TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates = self._table.metadata, self._updates
        computed = self._computed
        if computed is None or computed[0] is not base or computed[1] is not updates:
            computed = (base, updates, update_table_metadata(base, updates))
            self._computed = computed
        return computed[2]
