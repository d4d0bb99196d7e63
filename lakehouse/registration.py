"""The typed ``registration`` table: appointment history as intervals per MPAN, role and participant.

Derived from IF-036 confirmations (supplier and appointed services, from their effective date to the
day before the MPAN's next confirmation) and IF-037 de-appointments (which end a service's interval).
Recomputed from the events table on every refine (registration volume is small), so a rebuild always
gives the same rows; the snapshot it was computed from is in the summary.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from lakehouse.query import EventQuery, read_events
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import EVENTS, REGISTRATION, TABLES, ensure_table

OPEN_END = date(9999, 12, 31)

# Registration intervals per MPAN and participant: from an IF-036 confirmation's effective date
# to the day before the MPAN's next confirmation (or an IF-037 de-appointment's effective-to).
INTERVALS_SQL = """
WITH conf AS (
    SELECT mpan, settlement_date AS eff_from,
           json_extract_string(decode("value"), '$.CustomBlock.supplierMPID') AS supplier,
           json_extract(decode("value"), '$.CustomBlock.appointments') AS appts,
           json_extract_string(decode("value"), '$.CustomBlock.segment') AS segment,
           json_extract_string(decode("value"), '$.CustomBlock.energisationStatus') AS energisation,
           CAST(json_extract(decode("value"), '$.CustomBlock.domesticPremisesIndicator') AS BOOLEAN) AS domestic,
           json_extract_string(decode("value"), '$.CustomBlock.consentGranularity') AS consent,
           transaction_id
    FROM registration WHERE interface_id = 'IF-036'
), ordered AS (
    SELECT *, lead(eff_from) OVER (PARTITION BY mpan ORDER BY eff_from) - INTERVAL 1 DAY AS next_minus_1 FROM conf
), parties AS (
    SELECT mpan, eff_from, next_minus_1, supplier AS participant, 'SUP' AS role,
           segment, energisation, domestic, consent, transaction_id FROM ordered
    UNION ALL
    SELECT mpan, eff_from, next_minus_1,
           json_extract_string(a, '$.serviceMPID') AS participant,
           json_extract_string(a, '$.serviceRole') AS role,
           segment, energisation, domestic, consent, transaction_id
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
                      DATE '9999-12-31')) AS eff_to,
       p.segment, p.energisation, p.domestic, p.consent, p.transaction_id
FROM parties p
"""


def registration_intervals(registration_events: pa.Table) -> pa.Table:
    """(mpan, participant, role, eff_from, eff_to, ...) from IF-036/IF-037 event rows (9999-12-31 = open)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("registration", registration_events)
    return con.execute(INTERVALS_SQL).to_arrow_table()


def refine_registration(catalog: Catalog, settings: LakehouseSettings) -> int:
    """Recompute the registration table from the current events snapshot; return its row count."""
    events = ensure_table(catalog, settings, EVENTS)
    target = ensure_table(catalog, settings, REGISTRATION)
    snap = events.current_snapshot()
    schema = TABLES[REGISTRATION].arrow_schema
    if snap is None:
        return 0
    source = read_events(
        events,
        EventQuery(interfaces=("IF-036", "IF-037")),
        ("mpan", "settlement_date", "interface_id", "transaction_id", "value"),
        snap.snapshot_id,
    )
    iv = registration_intervals(source)
    open_end = pc.equal(iv["eff_to"], pa.scalar(OPEN_END, pa.date32()))
    rows = pa.table(
        {
            "mpan": iv["mpan"],
            "role": iv["role"],
            "participant": iv["participant"],
            "effective_from": iv["eff_from"],
            "effective_to": pc.if_else(open_end, pa.scalar(None, pa.date32()), iv["eff_to"]),
            "status": pc.if_else(open_end, "active", "ended"),
            "segment": iv["segment"],
            "energisation": iv["energisation"],
            "domestic": iv["domestic"],
            "consent": iv["consent"],
            "transaction_id": iv["transaction_id"],
        }
    )
    rows = pa.table({f.name: pc.cast(rows[f.name], f.type) for f in schema}).cast(schema)
    rows = rows.sort_by([("mpan", "ascending"), ("role", "ascending"), ("effective_from", "ascending")])
    target.overwrite(rows, snapshot_properties={"mhhs.refined-from-snapshot": str(snap.snapshot_id)})
    return rows.num_rows
