"""The commit transaction: pyiceberg's metadata, computed once per state of its updates."""

from __future__ import annotations

import pytest
from pyiceberg.table import Transaction
from pyiceberg.table.update import update_table_metadata

from lakehouse import transaction as transaction_module
from lakehouse.transaction import CommitTransaction
from lakehouse.writer import LandingWriter


def test_the_metadata_is_computed_once_per_state_and_is_pyicebergs(
    landed: LandingWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = landed.events
    assert len(table.metadata.snapshots) > 1  # a table with history, as the writer commits to
    calls = 0
    compute = transaction_module._updated

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return compute(*args, **kwargs)

    monkeypatch.setattr(transaction_module, "_updated", counted)
    tx = CommitTransaction(table)
    first = tx.table_metadata
    assert all(tx.table_metadata is first for _ in range(5)) and calls == 1  # pyiceberg's: 6 deep copies
    assert first.model_dump() == Transaction(table).table_metadata.model_dump()
    tx.set_properties({"mhhs.note": "staged"})  # a new state of updates: computed anew, with it
    assert tx.table_metadata.properties["mhhs.note"] == "staged" and calls == 2
    assert "mhhs.note" not in table.metadata.properties  # nothing committed, the table's own untouched
    theirs = update_table_metadata(table.metadata, tx._updates).model_dump()  # with its deep copy
    ours = tx.table_metadata.model_dump()
    assert {k: v for k, v in ours.items() if k != "last_updated_ms"} == {
        k: v for k, v in theirs.items() if k != "last_updated_ms"
    }
    table.refresh()  # a new base (what a retry after a lost race does): computed anew
    assert tx.table_metadata.properties["mhhs.note"] == "staged" and calls == 3
