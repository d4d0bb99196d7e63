"""Per-entity frames for one UTC settlement date, computed set-wise in DuckDB, for the suites to validate.

The rules that need more than one row (48 periods, duplicates and revisions, the appointed data service,
energisation, 28-day medians, zero runs, registration order) are evaluated here into one row per
entity: an IF-021 message, an MPAN-level event, a de-appointment, a data service x supplier. Great
Expectations then decides pass or fail on those rows. Every frame carries the entity's identity in the
same five columns (``ENTITY``), which name each unexpected row in the findings.

The SQL reads Arrow datasets of the partitions of that date only (and, for rule 9, the 28 days before),
so memory follows a day's data, never the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.dataset as ds

from contract.identifiers import DNO_BY_DISTRIBUTOR, IDNO_DISTRIBUTORS
from lakehouse.duck import memory_connection

ENTITY = ("mpan", "measurement_quantity", "utc_settlement_date", "participant", "transaction_id")
"""The columns that name an entity in every frame (null where they do not apply)."""

_WEIGHTS = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)
_CHECK_DIGIT = " + ".join(f"{w} * CAST(substr(mpan, {i + 1}, 1) AS INTEGER)" for i, w in enumerate(_WEIGHTS))
_KNOWN = ", ".join(f"'{d}'" for d in (*DNO_BY_DISTRIBUTOR, *IDNO_DISTRIBUTORS))
_HOME = " ".join(f"WHEN '{d}' THEN '{gsp}'" for d, (_, gsp) in DNO_BY_DISTRIBUTOR.items())

EVENTS_SQL = f"""
SELECT mpan, CAST(NULL AS VARCHAR) AS measurement_quantity,
       strftime(settlement_date, '%Y-%m-%d') AS utc_settlement_date, sender_dip_id AS participant,
       transaction_id, interface_id, gsp_group,
       CASE substr(mpan, 1, 2) {_HOME} END AS home_gsp_group,
       coalesce(regexp_full_match(mpan, '[0-9]{{13}}') AND substr(mpan, 1, 2) IN ({_KNOWN})
                AND (({_CHECK_DIGIT}) % 11) % 10 = CAST(substr(mpan, 13, 1) AS INTEGER), false) AS mpan_valid,
       count(*) OVER (PARTITION BY transaction_id) AS occurrences
FROM ev
WHERE mpan IS NOT NULL
"""

CONSUMPTION_SQL = """
WITH msgs AS (
    SELECT mpan, measurement_quantity, utc_settlement_date, transaction_id,
           any_value(data_service_dip_id) AS participant,
           max(TRY_CAST(sender_timestamp AS TIMESTAMPTZ)) AS sent_at,
           max(source_offset) AS source_offset,
           count(*) AS periods,
           count(DISTINCT period_end_utc) AS distinct_periods,
           (min(period_end_utc) = CAST(utc_settlement_date AS TIMESTAMPTZ) + INTERVAL 30 MINUTE
            AND max(period_end_utc) = CAST(utc_settlement_date AS TIMESTAMPTZ) + INTERVAL 1 DAY) AS ends_ok,
           count(*) FILTER (WHERE coalesce(quality_indicator, '') <> 'A' AND estimation_reason IS NULL)
               AS estimates_without_reason,
           count(*) FILTER (WHERE consumption_kwh < 0) AS negative_periods,
           count(*) FILTER (WHERE refine_flag IS NOT NULL) AS imprecise_periods,
           count(*) FILTER (WHERE coalesce(quality_indicator, '') <> 'A') AS estimated_periods
    FROM cons GROUP BY mpan, measurement_quantity, utc_settlement_date, transaction_id
), ranked AS (
    SELECT *, count(*) OVER day AS versions,
           row_number() OVER (day ORDER BY sent_at DESC NULLS LAST, source_offset DESC) = 1 AS is_current
    FROM msgs WINDOW day AS (PARTITION BY mpan, measurement_quantity, utc_settlement_date)
), current_rows AS (
    SELECT c.mpan, c.utc_settlement_date, c.transaction_id, c.period_end_utc, c.consumption_kwh
    FROM cons c JOIN ranked k USING (mpan, measurement_quantity, utc_settlement_date, transaction_id)
    WHERE k.is_current AND c.measurement_quantity = 'AI'
), islands AS (
    SELECT mpan, utc_settlement_date, transaction_id, consumption_kwh = 0 AS zero,
           row_number() OVER (PARTITION BY mpan, utc_settlement_date, transaction_id ORDER BY period_end_utc)
         - row_number() OVER (PARTITION BY mpan, utc_settlement_date, transaction_id, consumption_kwh = 0
                              ORDER BY period_end_utc) AS island
    FROM current_rows
), zero_runs AS (
    SELECT mpan, utc_settlement_date, transaction_id, max(n) AS longest_zero_run
    FROM (SELECT mpan, utc_settlement_date, transaction_id, island, count(*) AS n FROM islands WHERE zero
          GROUP BY ALL)
    GROUP BY ALL
), history AS (
    SELECT mpan, strftime(timezone('Europe/London', period_end_utc - INTERVAL 30 MINUTE), '%H:%M') AS half_hour,
           consumption_kwh AS v
    FROM hist
    WHERE measurement_quantity = 'AI'
    QUALIFY row_number() OVER (
        PARTITION BY mpan, measurement_quantity, period_end_utc
        ORDER BY TRY_CAST(sender_timestamp AS TIMESTAMPTZ) DESC NULLS LAST, source_offset DESC
    ) = 1
), medians AS (
    SELECT mpan, half_hour, median(v) AS med, count(v) AS n FROM history GROUP BY ALL
), outliers AS (
    SELECT c.mpan, c.utc_settlement_date, c.transaction_id, max(c.consumption_kwh / m.med) AS max_outlier_ratio
    FROM current_rows c JOIN medians m
      ON m.mpan = c.mpan
     AND m.half_hour = strftime(timezone('Europe/London', c.period_end_utc - INTERVAL 30 MINUTE), '%H:%M')
    WHERE m.n >= $min_history AND m.med > 0
    GROUP BY ALL
), supplier AS (
    SELECT mpan, effective_from, coalesce(effective_to, DATE '9999-12-31') AS effective_to, participant,
           energisation
    FROM reg WHERE role = 'SUP'
), data_service AS (
    SELECT mpan, effective_from, coalesce(effective_to, DATE '9999-12-31') AS effective_to, participant_dip_id
    FROM reg WHERE role IN ('SDS', 'ADS', 'UMSDS')
), firsts AS (
    SELECT mpan, min(effective_from) AS first_confirmed FROM reg GROUP BY mpan
), registered AS (
    SELECT k.mpan, k.measurement_quantity, k.utc_settlement_date, k.transaction_id,
           bool_or(s.energisation = 'E') AS energised, min(s.participant) AS supplier,
           min(d.participant_dip_id) AS appointed_data_service
    FROM ranked k
    LEFT JOIN supplier s ON s.mpan = k.mpan AND k.utc_settlement_date BETWEEN s.effective_from AND s.effective_to
    LEFT JOIN data_service d ON d.mpan = k.mpan AND k.utc_settlement_date BETWEEN d.effective_from AND d.effective_to
    GROUP BY ALL
)
SELECT k.mpan, k.measurement_quantity, strftime(k.utc_settlement_date, '%Y-%m-%d') AS utc_settlement_date,
       k.participant, k.transaction_id, k.periods, k.distinct_periods, k.ends_ok, k.estimates_without_reason,
       k.negative_periods, k.imprecise_periods, k.estimated_periods, k.versions, k.is_current,
       CASE WHEN k.is_current AND k.measurement_quantity = 'AI' AND coalesce(r.energised, false)
            THEN coalesce(z.longest_zero_run, 0) END AS longest_zero_run,
       o.max_outlier_ratio,
       r.energised, r.supplier, r.appointed_data_service,
       coalesce(f.first_confirmed <= k.utc_settlement_date, false) AS confirmed_before
FROM ranked k
LEFT JOIN zero_runs z USING (mpan, utc_settlement_date, transaction_id)
LEFT JOIN outliers o USING (mpan, utc_settlement_date, transaction_id)
LEFT JOIN registered r USING (mpan, measurement_quantity, utc_settlement_date, transaction_id)
LEFT JOIN firsts f ON f.mpan = k.mpan
"""

KPI_SQL = """
SELECT CAST(NULL AS VARCHAR) AS mpan, CAST(NULL AS VARCHAR) AS measurement_quantity, utc_settlement_date,
       participant, CAST(NULL AS VARCHAR) AS transaction_id, coalesce(supplier, '(none)') AS supplier,
       sum(periods) AS periods, sum(estimated_periods) AS estimated_periods,
       round(1 - sum(estimated_periods) / sum(periods), 6) AS actual_share
FROM consumption_frame WHERE is_current
GROUP BY ALL
"""

DEAPPOINTMENTS_SQL = """
WITH ended AS (
    SELECT mpan, transaction_id, settlement_date AS effective_to,
           json_extract_string(decode("value"), '$.CustomBlock.appointment.serviceMPID') AS participant,
           json_extract_string(decode("value"), '$.CustomBlock.appointment.serviceRole') AS role
    FROM deapp
)
SELECT e.mpan, CAST(NULL AS VARCHAR) AS measurement_quantity,
       strftime(e.effective_to, '%Y-%m-%d') AS utc_settlement_date,
       e.participant, e.transaction_id, e.role, strftime(e.effective_to, '%Y-%m-%d') AS effective_to,
       strftime(coalesce(max(r.effective_from) FILTER (WHERE r.effective_from <= e.effective_to),
                         min(r.effective_from)), '%Y-%m-%d') AS appointed_from
FROM ended e LEFT JOIN reg r ON r.mpan = e.mpan AND r.participant = e.participant AND r.role = e.role
GROUP BY ALL
"""


@dataclass(frozen=True, slots=True)
class DaySources:
    """What the frames of one date are computed from (Arrow datasets or tables of the pinned snapshots)."""

    day: date
    events: ds.Dataset | pa.Table  # MPAN-level columns of every event of the date
    consumption: ds.Dataset | pa.Table  # every consumption row (all versions) of the date
    history: ds.Dataset | pa.Table  # AI consumption rows of the 28 days before
    registration: pa.Table  # the whole typed registration table
    deappointments: pa.Table  # IF-037 events of the date (effective-to on it), with their values


@dataclass(frozen=True, slots=True)
class DayFrames:
    """The entity frames of one UTC settlement date, as Arrow (one per suite family)."""

    day: date
    events: pa.Table
    consumption: pa.Table
    kpi: pa.Table
    registration: pa.Table

    def rows(self) -> int:
        return self.events.num_rows + self.consumption.num_rows + self.kpi.num_rows + self.registration.num_rows


def history_window(day: date, days: int = 28) -> tuple[date, date]:
    """The dates whose values a half hour of ``day`` is compared with (rule 9)."""
    return day - timedelta(days=days), day - timedelta(days=1)


def build_frames(src: DaySources, min_history: int = 5, threads: int | None = None) -> DayFrames:
    """Evaluate the set-wise parts of every rule for one date (DuckDB over the date's partitions)."""
    con = memory_connection()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name, source in (
        ("ev", src.events),
        ("cons", src.consumption),
        ("hist", src.history),
        ("reg", src.registration),
        ("deapp", src.deappointments),
    ):
        con.register(name, source)
    events = con.execute(EVENTS_SQL).to_arrow_table()
    consumption = con.execute(CONSUMPTION_SQL, {"min_history": min_history}).to_arrow_table()
    con.register("consumption_frame", consumption)
    kpi = con.execute(KPI_SQL).to_arrow_table()
    registration = con.execute(DEAPPOINTMENTS_SQL).to_arrow_table()
    return DayFrames(src.day, events, consumption, kpi, registration)
