"""Row-level entitlements from the registration history in the store, as of the snapshot served.

A supplier sees the MPANs it is registered to on each settlement date, a data or metering
service those it is appointed to, an LDSO / registration service its own distributor's MPANs,
a third party what its grant lists; MDS, LSS, analysts, auditors and admins see every row.
Rows without an MPAN (ISD, load shapes) are public.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from api.auth import Principal
from lakehouse.contract.identifiers import DNO_BY_DISTRIBUTOR

_DIST_BY_MPID = {mpid: dist for dist, (mpid, _) in DNO_BY_DISTRIBUTOR.items()}


def distributor_of(subject: str) -> str:
    """The distributor ID an LDSO / registration service subject stands for ('--' if none)."""
    if len(subject) == 2 and subject.isdigit():
        return subject
    return _DIST_BY_MPID.get(subject, "--")


ALL_ROWS = frozenset({"MDS", "LSS", "analyst", "auditor", "admin"})
SERVICE_ROLES = frozenset({"SDS", "ADS", "UMSDS", "MSS", "MSA", "UMSO"})


def filter_entitled(rows: pa.Table, principal: Principal, intervals: pa.Table | None) -> pa.Table:
    """The rows ``principal`` may see: (mpan, settlement_date) inside one of its intervals."""
    role = principal.role
    if role in ALL_ROWS or rows.num_rows == 0:
        return rows
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("rows_in", rows)
    date_col = next(
        c for c in ("settlement_date", "utc_settlement_date", "effective_from", "mpan") if c in rows.column_names
    )
    if role == "third_party":
        con.register("granted", pa.table({"mpan": pa.array(list(principal.grants), pa.large_string())}))
        sql = "SELECT * FROM rows_in WHERE mpan IS NULL OR mpan IN (SELECT mpan FROM granted)"
    elif role in ("LDSO", "REGS"):
        sql = "SELECT * FROM rows_in WHERE mpan IS NULL OR substr(mpan, 1, 2) = $dist"
        return con.execute(sql, {"dist": distributor_of(principal.subject)}).to_arrow_table().cast(rows.schema)
    elif role == "SUP" or role in SERVICE_ROLES:
        assert intervals is not None
        con.register("intervals", intervals)
        sql = f"""
            SELECT r.* FROM rows_in r WHERE r.mpan IS NULL OR EXISTS (
                SELECT 1 FROM intervals i
                WHERE i.mpan = r.mpan AND i.participant = $subject AND i.role = $role
                  AND r.{date_col} BETWEEN i.eff_from AND i.eff_to)
        """
        return con.execute(sql, {"subject": principal.subject, "role": role}).to_arrow_table().cast(rows.schema)
    else:
        sql = "SELECT * FROM rows_in WHERE mpan IS NULL"
    return con.execute(sql).to_arrow_table().cast(rows.schema)
