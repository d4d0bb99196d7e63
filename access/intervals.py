"""Rows matched against dated intervals of the appointment history (mpan, eff_from, eff_to), in Arrow.

A row's date is its local settlement date when it has one (typed consumption: registration dates
mean local midnight, DOMAIN.md), else its settlement or effective date.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

DATE_COLUMNS = ("local_settlement_date", "settlement_date", "utc_settlement_date", "effective_from")


def row_date_column(rows: pa.Table) -> str | None:
    """The column that dates ``rows`` for the appointment history (None: undated rows)."""
    return next((c for c in DATE_COLUMNS if c in rows.column_names), None)


def matches(rows: pa.Table, intervals: pa.Table) -> pa.Table:
    """(row, interval columns) for every row whose (mpan, date) lies inside an interval of ``intervals``.

    ``intervals`` has ``mpan``, ``eff_from``, ``eff_to`` (inclusive) and any other columns, which come along.
    """
    index = pa.array(range(rows.num_rows), pa.int64())
    mpan = pc.cast(rows["mpan"], pa.string())
    date_col = row_date_column(rows)
    if date_col is None:
        probe = pa.table({"row": index, "mpan": mpan})
        return probe.join(intervals, keys="mpan", join_type="inner")
    probe = pa.table({"row": index, "mpan": mpan, "day": pc.cast(rows[date_col], pa.date32())})
    joined = probe.join(intervals, keys="mpan", join_type="inner")
    day = joined["day"]
    return joined.filter(pc.and_(pc.greater_equal(day, joined["eff_from"]), pc.less_equal(day, joined["eff_to"])))


def within(rows: pa.Table, intervals: pa.Table) -> pa.Array:
    """True where the row's (mpan, date) lies inside one of ``intervals``."""
    found = matches(rows, intervals)
    return pc.is_in(pa.array(range(rows.num_rows), pa.int64()), pc.unique(found["row"]))


def domestic_rows(rows: pa.Table, premises: pa.Table) -> pa.Array:
    """True where the row's MPAN is domestic on its date, or its status is not known (the stricter reading).

    ``premises`` is (mpan, eff_from, eff_to, domestic): the supplier rows of the appointment history.
    """
    found = matches(rows, premises)
    non_domestic = found.filter(pc.equal(pc.fill_null(found["domestic"], True), False))
    return pc.invert(pc.is_in(pa.array(range(rows.num_rows), pa.int64()), pc.unique(non_domestic["row"])))


def interval_table(history: pa.Table, keep: pa.Array | None = None, extra: tuple[str, ...] = ()) -> pa.Table:
    """(mpan, eff_from, eff_to, *extra) of the history rows where ``keep`` (all when None), typed for joins."""
    rows = history.filter(keep) if keep is not None else history
    out = {
        "mpan": pc.cast(rows["mpan"], pa.string()),
        "eff_from": pc.cast(rows["eff_from"], pa.date32()),
        "eff_to": pc.cast(rows["eff_to"], pa.date32()),
    }
    for name in extra:
        out[name] = rows[name]
    return pa.table(out)
