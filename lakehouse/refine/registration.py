"""The typed ``registration`` table: appointment history as intervals per MPAN, role and participant.

Derived from IF-036 confirmations (supplier and appointed services, from their effective date to the
day before the MPAN's next confirmation), IF-037 de-appointments (which end a service's interval),
IF-018 energisation changes and IF-026 consent and domestic-indicator changes: an appointment is split
wherever the MPAN's energisation, consent or domestic indicator changes, so each row carries the state
in force over its whole interval. A de-appointment ends the appointment of that participant in that role.

Incremental and exactly once: the table's snapshot summaries hold, under the group ``refine``, how
far into each registration topic-partition it has read. A run reads only the events beyond that,
recomputes the intervals of just the MPANs they touch (from all of those MPANs' events) and swaps
the data files holding those MPANs' old rows for new ones in one commit with the new watermark. A
rebuild (every MPAN touched) therefore gives exactly the rows the incremental runs gave.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import In
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.table import Table

from contract.topics import topic_for_interface
from lakehouse.duck import memory_connection
from lakehouse.offsets import OFFSETS_KEY, TP, encode_offsets, merge_offsets, snapshot_offsets
from lakehouse.query import EventQuery, read_events
from lakehouse.read import read_data_files
from lakehouse.refine.watermark import REFINE_GROUP, next_offsets_of
from lakehouse.retry import retry_commit
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import EVENTS, REGISTRATION, TABLES, ensure_table, identifier
from lakehouse.writer import drop_landed

OPEN_END = date(9999, 12, 31)
APPOINTMENT_INTERFACES = ("IF-036", "IF-037")
INTERFACES = (*APPOINTMENT_INTERFACES, "IF-018", "IF-026")
SOURCE_COLUMNS = ("mpan", "settlement_date", "interface_id", "transaction_id", "sender_timestamp", "value")
# above this many MPANs touched, read and rewrite the whole table instead of planning by MPAN
_WHOLE_TABLE_MPANS = 20_000

# Appointment intervals per MPAN and participant, cut wherever energisation or consent changes.
INTERVALS_SQL = """
WITH src AS (
    SELECT mpan, settlement_date AS day, interface_id, transaction_id,
           coalesce(sender_timestamp, '') AS sent, CAST(decode("value") AS JSON) AS doc
    FROM registration WHERE mpan IS NOT NULL
), conf AS (
    SELECT mpan, day AS eff_from, sent, transaction_id,
           json_extract_string(doc, '$.CustomBlock.supplierMPID') AS supplier,
           json_extract_string(doc, '$.CustomBlock.supplierDIPID') AS supplier_dip,
           json_extract(doc, '$.CustomBlock.appointments') AS appts,
           json_extract_string(doc, '$.CustomBlock.segment') AS segment
    FROM src WHERE interface_id = 'IF-036'
), ordered AS (
    SELECT *, lead(eff_from) OVER (PARTITION BY mpan ORDER BY eff_from, sent) - INTERVAL 1 DAY AS next_minus_1
    FROM conf
), parties AS (
    SELECT mpan, eff_from, next_minus_1, supplier AS participant, supplier_dip AS participant_dip_id,
           'SUP' AS role, segment, transaction_id
    FROM ordered
    UNION ALL
    SELECT mpan, eff_from, next_minus_1,
           json_extract_string(a, '$.serviceMPID') AS participant,
           json_extract_string(a, '$.serviceDIPID') AS participant_dip_id,
           json_extract_string(a, '$.serviceRole') AS role,
           segment, transaction_id
    FROM ordered, unnest(CAST(appts AS JSON[])) AS t(a)
), deappointed AS (
    SELECT mpan, json_extract_string(doc, '$.CustomBlock.appointment.serviceMPID') AS participant,
           json_extract_string(doc, '$.CustomBlock.appointment.serviceRole') AS role, day AS eff_to
    FROM src WHERE interface_id = 'IF-037'
), appointed AS (
    SELECT p.mpan, p.participant, p.role, p.eff_from AS appt_from,
           least(coalesce(CAST(p.next_minus_1 AS DATE), DATE '9999-12-31'),
                 coalesce((SELECT min(d.eff_to) FROM deappointed d
                           WHERE d.mpan = p.mpan AND d.participant = p.participant AND d.role = p.role
                             AND d.eff_to >= p.eff_from),
                          DATE '9999-12-31')) AS appt_to,
           p.segment, p.transaction_id, p.participant_dip_id
    FROM parties p
), states AS (
    SELECT mpan, day, sent,
           json_extract_string(doc, '$.CustomBlock.energisationStatus') AS energisation,
           json_extract_string(doc, '$.CustomBlock.consentGranularity') AS consent,
           CAST(json_extract(doc, '$.CustomBlock.domesticPremisesIndicator') AS BOOLEAN) AS domestic
    FROM src WHERE interface_id IN ('IF-036', 'IF-018', 'IF-026')
), energisation AS (
    SELECT mpan, day, arg_max(energisation, sent) AS energisation
    FROM states WHERE energisation IS NOT NULL GROUP BY mpan, day
), consent AS (
    SELECT mpan, day, arg_max(consent, sent) AS consent
    FROM states WHERE consent IS NOT NULL GROUP BY mpan, day
), domestic AS (
    SELECT mpan, day, arg_max(domestic, sent) AS domestic
    FROM states WHERE domestic IS NOT NULL GROUP BY mpan, day
), cuts AS (
    SELECT a.*, a.appt_from AS cut FROM appointed a
    UNION
    SELECT a.*, c.day AS cut
    FROM appointed a JOIN (SELECT DISTINCT mpan, day FROM states) c
      ON c.mpan = a.mpan AND c.day > a.appt_from AND c.day <= a.appt_to
), pieces AS (
    SELECT mpan, participant, participant_dip_id, role, segment, transaction_id, cut AS eff_from,
           coalesce(CAST(lead(cut) OVER (PARTITION BY mpan, participant, role, appt_from ORDER BY cut)
                         - INTERVAL 1 DAY AS DATE), appt_to) AS eff_to
    FROM cuts
)
SELECT p.mpan, p.participant, p.role, p.eff_from, p.eff_to, p.segment, e.energisation, d.domestic,
       c.consent, p.transaction_id, p.participant_dip_id
FROM pieces p
ASOF LEFT JOIN energisation e ON p.mpan = e.mpan AND p.eff_from >= e.day
ASOF LEFT JOIN consent c ON p.mpan = c.mpan AND p.eff_from >= c.day
ASOF LEFT JOIN domestic d ON p.mpan = d.mpan AND p.eff_from >= d.day
WHERE p.eff_from <= p.eff_to
"""


@dataclass(frozen=True, slots=True)
class RegistrationCommit:
    """What one ``refine_registration`` run did."""

    snapshot_id: int | None
    events_read: int
    mpans_recomputed: int
    rows_written: int
    rows_replaced: int
    attempts: int


def registration_intervals(registration_events: pa.Table) -> pa.Table:
    """(mpan, participant, role, eff_from, eff_to, ...) from IF-036/IF-037 event rows (9999-12-31 = open)."""
    con = memory_connection()
    con.register("registration", registration_events)
    return con.execute(INTERVALS_SQL).to_arrow_table()


def registration_source_topics() -> tuple[str, ...]:
    return tuple(topic_for_interface(i) for i in INTERFACES)


def _typed_rows(iv: pa.Table) -> pa.Table:
    schema = TABLES[REGISTRATION].arrow_schema
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
            "participant_dip_id": iv["participant_dip_id"],
        }
    )
    rows = pa.table({f.name: pc.cast(rows[f.name], f.type) for f in schema}).cast(schema)
    return rows.sort_by([("mpan", "ascending"), ("role", "ascending"), ("effective_from", "ascending")])


def _touched(events: Table, snapshot_id: int, watermark: dict[TP, int]) -> tuple[pa.Table, set[str]]:
    """The registration events beyond ``watermark`` (coordinates and MPAN) and the MPANs they name."""
    low = min(watermark.values()) if watermark else None
    new = read_events(
        events,
        EventQuery(topics=registration_source_topics(), interfaces=INTERFACES, min_offset=low),
        ("topic", "partition", "offset", "mpan"),
        snapshot_id,
    )
    new = drop_landed(new, watermark)
    mpans = {m for m in pc.unique(new.column("mpan")).to_pylist() if m is not None} if new.num_rows else set()
    return new, mpans


def refine_registration(catalog: Catalog, settings: LakehouseSettings, max_attempts: int = 20) -> RegistrationCommit:
    """Bring the registration table up to the current events snapshot, touching only changed MPANs.

    Raises:
        CommitConflictError: if the commit still conflicts after ``max_attempts``.
    """
    events = ensure_table(catalog, settings, EVENTS)
    target = ensure_table(catalog, settings, REGISTRATION)

    def attempt(n: int) -> RegistrationCommit:
        events.refresh()
        target.refresh()
        snap = events.current_snapshot()
        if snap is None:
            return RegistrationCommit(None, 0, 0, 0, 0, n)
        held_all = snapshot_offsets(target)
        new, mpans = _touched(events, snap.snapshot_id, held_all.get(REFINE_GROUP, {}))
        if new.num_rows == 0:
            return RegistrationCommit(None, 0, 0, 0, 0, n)
        whole = len(mpans) > _WHOLE_TABLE_MPANS
        query = EventQuery(topics=registration_source_topics(), interfaces=INTERFACES)
        source = read_events(events, query, SOURCE_COLUMNS, snap.snapshot_id)
        if not whole:
            source = source.filter(pc.is_in(source.column("mpan"), pa.array(sorted(mpans), pa.string())))
        fresh = _typed_rows(registration_intervals(source))
        summary = {
            OFFSETS_KEY: encode_offsets(merge_offsets(held_all, REFINE_GROUP, next_offsets_of(new))),
            "mhhs.refined-from-snapshot": str(snap.snapshot_id),
        }
        replaced = _swap_rows(target, mpans, fresh, whole, summary)
        current = target.current_snapshot()
        return RegistrationCommit(
            current.snapshot_id if current else None, new.num_rows, len(mpans), fresh.num_rows, replaced, n
        )

    return retry_commit(".".join(target.name()), attempt, max_attempts)


def _swap_rows(target: Table, mpans: set[str], fresh: pa.Table, whole: bool, summary: dict[str, str]) -> int:
    """Replace every row of ``mpans`` with ``fresh`` in one commit: rewrite just the files holding them."""
    plan = target.scan() if whole else target.scan(row_filter=In(term="mpan", values=tuple(sorted(mpans))))  # type: ignore[arg-type]
    old_files = [task.file for task in plan.plan_files()] if target.current_snapshot() else []
    kept = pa.table({})
    replaced = 0
    if old_files:
        old = read_data_files(target, [f.file_path for f in old_files])
        drop = pc.is_in(old.column("mpan"), pa.array(sorted(mpans), pa.string()))
        replaced = int(pc.sum(drop).as_py() or 0)
        kept = old.filter(pc.invert(drop))
    rows = pa.concat_tables([kept, fresh]) if kept.num_rows else fresh
    rows = rows.sort_by([("mpan", "ascending"), ("role", "ascending"), ("effective_from", "ascending")])
    with target.transaction() as tx:
        if not old_files:
            tx.append(rows, snapshot_properties=summary)
        else:
            with tx.update_snapshot(snapshot_properties=summary).overwrite() as swap:
                for f in old_files:
                    swap.delete_data_file(f)
                for f in _dataframe_to_data_files(
                    table_metadata=tx.table_metadata, df=rows, io=target.io, write_uuid=uuid.uuid4()
                ):
                    swap.append_data_file(f)
    return replaced


def rebuild_registration(catalog: Catalog, settings: LakehouseSettings) -> RegistrationCommit:
    """Drop and recreate the registration table from the events table (same rows as incremental)."""
    ident = identifier(settings, REGISTRATION)
    if catalog.table_exists(ident):
        catalog.drop_table(ident)
    return refine_registration(catalog, settings)
