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

# Registration intervals per MPAN and participant: from an IF-036 confirmation's effective date
# to the day before the MPAN's next confirmation (or an IF-037 de-appointment's effective-to).
_INTERVALS = """
WITH conf AS (
    SELECT mpan, settlement_date AS eff_from,
           json_extract_string(decode("value"), '$.CustomBlock.supplierMPID') AS supplier,
           json_extract(decode("value"), '$.CustomBlock.appointments') AS appts
    FROM registration WHERE interface_id = 'IF-036'
), ordered AS (
    SELECT *, lead(eff_from) OVER (PARTITION BY mpan ORDER BY eff_from) - INTERVAL 1 DAY AS next_minus_1 FROM conf
), parties AS (
    SELECT mpan, eff_from, next_minus_1, supplier AS participant, 'SUP' AS role FROM ordered
    UNION ALL
    SELECT mpan, eff_from, next_minus_1,
           json_extract_string(a, '$.serviceMPID') AS participant,
           json_extract_string(a, '$.serviceRole') AS role
    FROM ordered, unnest(CAST(appts AS JSON[])) AS t(a)
), deappointed AS (
    SELECT mpan, json_extract_string(decode("value"), '$.CustomBlock.appointment.serviceMPID') AS participant,
           settlement_date AS eff_to
    FROM registration WHERE interface_id = 'IF-037'
)
SELECT p.mpan, p.participant, p.role, p.eff_from,
       least(coalesce(CAST(p.next_minus_1 AS DATE), DATE '9999-12-31'),
             coalesce((SELECT min(d.eff_to) FROM deappointed d
                       WHERE d.mpan = p.mpan AND d.participant = p.participant AND d.eff_to >= p.eff_from),
                      DATE '9999-12-31')) AS eff_to
FROM parties p
"""


def registration_intervals(registration_events: pa.Table) -> pa.Table:
    """(mpan, participant, role, eff_from, eff_to) from IF-036/IF-037 event rows."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("registration", registration_events)
    return con.execute(_INTERVALS).fetch_arrow_table()


def filter_entitled(rows: pa.Table, principal: Principal, intervals: pa.Table | None) -> pa.Table:
    """The rows ``principal`` may see: (mpan, settlement_date) inside one of its intervals."""
    role = principal.role
    if role in ALL_ROWS or rows.num_rows == 0:
        return rows
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("rows_in", rows)
    date_col = "settlement_date" if "settlement_date" in rows.column_names else "utc_settlement_date"
    if role == "third_party":
        con.register("granted", pa.table({"mpan": pa.array(list(principal.grants), pa.large_string())}))
        sql = "SELECT * FROM rows_in WHERE mpan IS NULL OR mpan IN (SELECT mpan FROM granted)"
    elif role in ("LDSO", "REGS"):
        sql = "SELECT * FROM rows_in WHERE mpan IS NULL OR substr(mpan, 1, 2) = $dist"
        return con.execute(sql, {"dist": distributor_of(principal.subject)}).fetch_arrow_table().cast(rows.schema)
    elif role == "SUP" or role in SERVICE_ROLES:
        assert intervals is not None
        con.register("intervals", intervals)
        sql = f"""
            SELECT r.* FROM rows_in r WHERE r.mpan IS NULL OR EXISTS (
                SELECT 1 FROM intervals i
                WHERE i.mpan = r.mpan AND i.participant = $subject AND i.role = $role
                  AND r.{date_col} BETWEEN i.eff_from AND i.eff_to)
        """
        return con.execute(sql, {"subject": principal.subject, "role": role}).fetch_arrow_table().cast(rows.schema)
    else:
        sql = "SELECT * FROM rows_in WHERE mpan IS NULL"
    return con.execute(sql).fetch_arrow_table().cast(rows.schema)
