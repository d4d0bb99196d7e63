"""Completeness certificates per topic x UTC settlement date: nothing dropped, nothing missing, what came late.

(a) offset coverage: events and quarantine together hold every offset of every partition of the topic
from the first one the store holds to the committed position, or the gaps are listed; (b) expected vs
received (IF-021, on dates with any): every MPAN x quantity energised with a data service appointed on the date
has its IF-021, or it is listed missing (a de-appointed MPAN is due nothing); (c) late arrivals: events landed
more than N days after their settlement date; (d) the counts and the snapshots the certificate describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb
import orjson
import pyarrow as pa

from contract.topics import load_topic_catalogue
from lakehouse.query import EventQuery
from lakehouse.store import Store
from lakehouse.tables import COMPLETENESS, CONSUMPTION, EVENTS, QUARANTINE, REGISTRATION, TABLES
from quality.settings import QualitySettings

CONSUMPTION_TOPIC = "mhhs.consumption.if-021"

GAPS_SQL = """
WITH o AS (SELECT DISTINCT "partition", "offset" FROM held_rows),
steps AS (SELECT "partition", "offset", lead("offset") OVER (PARTITION BY "partition" ORDER BY "offset") AS nxt FROM o)
SELECT "partition", "offset" + 1 AS gap_from, nxt AS gap_to FROM steps WHERE nxt > "offset" + 1
UNION ALL
SELECT m."partition", m.last + 1, c.committed FROM (SELECT "partition", max("offset") AS last FROM o GROUP BY 1) m
JOIN committed c ON c."partition" = m."partition" WHERE c.committed > m.last + 1
UNION ALL
SELECT c."partition", 0, c.committed FROM committed c
WHERE c.committed > 0 AND c."partition" NOT IN (SELECT "partition" FROM o) AND $strict
ORDER BY 1, 2
"""

EXPECTED_SQL = """
WITH day_regs AS (
    SELECT * FROM reg WHERE effective_from <= $day AND coalesce(effective_to, DATE '9999-12-31') >= $day
), due AS (
    SELECT DISTINCT s.mpan FROM day_regs s JOIN day_regs d ON d.mpan = s.mpan
    WHERE s.role = 'SUP' AND s.energisation = 'E' AND d.role IN ('SDS', 'ADS', 'UMSDS')
), channels AS (
    SELECT mpan, 'AI' AS measurement_quantity FROM due
    UNION
    SELECT DISTINCT h.mpan, h.measurement_quantity FROM recent h JOIN due USING (mpan)
), received AS (
    SELECT DISTINCT mpan, measurement_quantity FROM cons
)
SELECT c.mpan, c.measurement_quantity, r.mpan IS NOT NULL AS received
FROM channels c LEFT JOIN received r USING (mpan, measurement_quantity)
ORDER BY c.mpan, c.measurement_quantity
"""


@dataclass(frozen=True, slots=True)
class Certificate:
    """One topic x date certificate, as stored in the ``completeness`` table."""

    topic: str
    day: date
    events: int
    quarantined: int
    gaps: list[tuple[int, int, int]]
    expected: int | None
    missing: list[tuple[str, str]]
    late: int

    @property
    def complete(self) -> bool:
        return not self.gaps and not self.missing

    @property
    def gap_offsets(self) -> int:
        return sum(hi - lo for _, lo, hi in self.gaps)


def offset_gaps(
    store: Store, topic: str, events_snap: int | None, quarantine_snap: int | None
) -> list[tuple[int, int, int]]:
    """(partition, from, to) ranges of offsets below the committed position that neither table holds.

    Counting starts at the first offset the store holds per partition (below it, Kafka had dropped the
    records before ingest read them: ``Store.first_offsets``).
    """
    if events_snap is None:
        return []
    query = EventQuery(topics=(topic,))
    parts = [store.read_events(query, ("partition", "offset"), events_snap)]
    if quarantine_snap is not None:
        parts.append(store.read_quarantine(query, ("partition", "offset"), quarantine_snap))
    rows = pa.concat_tables([p.cast(pa.schema([("partition", pa.int32()), ("offset", pa.int64())])) for p in parts])
    held = {p: n for (t, p), n in store.held_offsets(events_snap).items() if t == topic}
    committed = pa.table(
        {"partition": pa.array(list(held), pa.int32()), "committed": pa.array(list(held.values()), pa.int64())}
    )
    con = duckdb.connect()
    con.register("held_rows", rows)
    con.register("committed", committed)
    found = con.execute(GAPS_SQL, {"strict": False}).fetchall()
    return [(int(p), int(lo), int(hi)) for p, lo, hi in found]


def certify(
    store: Store, settings: QualitySettings, dates: Sequence[date] | None = None, run_id: str | None = None
) -> list[Certificate]:
    """Certificates for every topic and date (default: every date with events); written to ``completeness``."""
    events_snap = store.resolve(EVENTS)
    quarantine_snap = store.resolve(QUARANTINE)
    consumption_snap = store.resolve(CONSUMPTION)
    run_id = run_id or f"c-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    pins = {EVENTS: events_snap, QUARANTINE: quarantine_snap, CONSUMPTION: consumption_snap}
    with store.holding(pins, f"certify-{run_id}", timedelta(days=2)):  # read date by date, for minutes
        return _certify(store, settings, dates, run_id, events_snap, quarantine_snap, consumption_snap)


def _certify(
    store: Store,
    settings: QualitySettings,
    dates: Sequence[date] | None,
    run_id: str,
    events_snap: int | None,
    quarantine_snap: int | None,
    consumption_snap: int | None,
) -> list[Certificate]:
    days = sorted(dates) if dates is not None else store.settlement_dates(EVENTS, events_snap)
    catalogue = load_topic_catalogue()
    gaps = {t.name: offset_gaps(store, t.name, events_snap, quarantine_snap) for t in catalogue.topics}
    quarantined = _quarantined_per_topic(store, quarantine_snap)
    registration = store.read(REGISTRATION)
    out: list[Certificate] = []
    for day in days:
        counts, late = _day_counts(store, day, events_snap, settings.late_after_days)
        for spec in catalogue.topics:
            expected: int | None = None
            missing: list[tuple[str, str]] = []
            if spec.name == CONSUMPTION_TOPIC and counts.get(spec.name):  # a day the market sent consumption for
                expected, missing = _expected(store, day, consumption_snap, registration)
            out.append(
                Certificate(
                    spec.name,
                    day,
                    counts.get(spec.name, 0),
                    quarantined.get(spec.name, 0),
                    gaps[spec.name],
                    expected,
                    missing[: settings.missing_listed] if expected is not None else [],
                    late.get(spec.name, 0),
                )
            )
    if out:
        _write(store, run_id, out, events_snap, quarantine_snap, settings.late_after_days)
    return out


def _quarantined_per_topic(store: Store, snapshot: int | None) -> dict[str, int]:
    if snapshot is None:
        return {}
    rows = store.read_quarantine(EventQuery(), ("topic",), snapshot)
    counted = rows.group_by("topic").aggregate([("topic", "count")])
    return dict(zip(counted["topic"].to_pylist(), counted["topic_count"].to_pylist(), strict=True))


def _day_counts(
    store: Store, day: date, snapshot: int | None, late_after_days: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Events per topic on ``day``, and how many of them landed late."""
    source, _ = store.date_dataset(EVENTS, day, day, snapshot)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("ev", source)
    deadline = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=late_after_days + 1)
    rows = con.execute(
        "SELECT topic, count(*), count(*) FILTER (WHERE landed_at > $deadline) FROM ev GROUP BY topic",
        {"deadline": deadline},
    ).fetchall()
    return {t: int(n) for t, n, _ in rows}, {t: int(late) for t, _, late in rows}


def _expected(
    store: Store, day: date, snapshot: int | None, registration: pa.Table
) -> tuple[int, list[tuple[str, str]]]:
    """Channels due an IF-021 on ``day`` (energised, with a data service appointed) and those missing."""
    cons, _ = store.date_dataset(CONSUMPTION, day, day, snapshot)
    recent, _ = store.date_dataset(CONSUMPTION, day - timedelta(days=7), day - timedelta(days=1), snapshot)
    con = duckdb.connect()
    con.register("reg", registration)
    con.register("cons", cons)
    con.register("recent", recent)
    rows = con.execute(EXPECTED_SQL, {"day": day}).fetchall()
    return len(rows), [(m, q) for m, q, received in rows if not received]


def _write(
    store: Store,
    run_id: str,
    certificates: list[Certificate],
    events_snap: int | None,
    quarantine_snap: int | None,
    late_after_days: int,
) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "run_id": run_id,
            "topic": c.topic,
            "utc_settlement_date": c.day,
            "certified_at": now,
            "events_snapshot_id": events_snap,
            "quarantine_snapshot_id": quarantine_snap,
            "events": c.events,
            "quarantined": c.quarantined,
            "offset_gaps": orjson.dumps([list(g) for g in c.gaps]).decode(),
            "gap_offsets": c.gap_offsets,
            "expected_channels": c.expected,
            "missing_channels": len(c.missing) if c.expected is not None else None,
            "missing": orjson.dumps([list(m) for m in c.missing]).decode() if c.expected is not None else None,
            "late_arrivals": c.late,
            "late_after_days": late_after_days,
            "complete": c.complete,
        }
        for c in certificates
    ]
    store.append(COMPLETENESS, pa.Table.from_pylist(rows, schema=TABLES[COMPLETENESS].arrow_schema))
