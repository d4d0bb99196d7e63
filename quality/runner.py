"""Quality runs: per UTC settlement date, pin the snapshots, build the frames, validate, store the outcome.

A run is idempotent: each date's ``quality_runs`` rows carry a fingerprint of exactly what was
validated (the data files of the date and of its 28-day history, the registration snapshot, the
suites), and ``since_last`` skips a date whose fingerprint has not changed. Findings are written
before the run rows that vouch for them, so a reader taking the latest run per date never sees a
half-written run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import orjson
import pyarrow as pa

from lakehouse.store import Store
from lakehouse.tables import CONSUMPTION, EVENTS, QUALITY_FINDINGS, QUALITY_RUNS, REGISTRATION, TABLES
from quality.errors import QualityError
from quality.frames import DaySources, build_frames, history_window
from quality.rules import RULES
from quality.settings import QualitySettings
from quality.suites import SUITES
from quality.validate import SuiteOutcome, Validator

DEAPPOINTMENT_TOPIC = "mhhs.registration.if-037"
PIN_MAX_AGE = timedelta(days=2)  # a crashed run's tags lapse after this
_SUITES_VERSION = hashlib.sha256("|".join(c.key for checks in SUITES.values() for c in checks).encode()).hexdigest()


@dataclass
class DateOutcome:
    """What a run found on one date."""

    day: date
    outcomes: list[SuiteOutcome]

    def count(self, severity: str) -> int:
        return sum(1 for o in self.outcomes for f in o.findings if f["severity"] == severity)


@dataclass
class QualityRun:
    """One ``mhhs quality run``: the dates validated, skipped (unchanged) and empty (no data)."""

    run_id: str
    validated: list[DateOutcome] = field(default_factory=list)
    skipped: list[date] = field(default_factory=list)
    empty: list[date] = field(default_factory=list)
    docs_index: str | None = None

    def findings(self, severity: str) -> int:
        return sum(d.count(severity) for d in self.validated)


@dataclass(frozen=True, slots=True)
class Pins:
    """The snapshots a run validates."""

    events: int | None
    consumption: int | None
    registration: int | None


class QualityRunner:
    """Runs the suites over the store, date by date."""

    def __init__(self, store: Store, settings: QualitySettings, docs: bool = True) -> None:
        self._store = store
        self._settings = settings
        self._docs = docs

    def pins(self) -> Pins:
        """The current snapshots, checked: the typed tables must exist where there are events to type.

        Raises:
            QualityError: if the typed tables have not been refined yet.
        """
        pins = Pins(self._store.resolve(EVENTS), self._store.resolve(CONSUMPTION), self._store.resolve(REGISTRATION))
        if pins.events is not None and (pins.consumption is None or pins.registration is None):
            raise QualityError("the typed consumption and registration tables are empty: run `mhhs lake refine`")
        return pins

    def dates(self, pins: Pins) -> list[date]:
        """Every settlement date with events or consumption."""
        days = set(self._store.settlement_dates(EVENTS, pins.events)) if pins.events else set()
        if pins.consumption:
            days |= set(self._store.settlement_dates(CONSUMPTION, pins.consumption))
        return sorted(days)

    def run(
        self,
        dates: Sequence[date] | None = None,
        since_last: bool = False,
        on_date: Callable[[date], None] | None = None,
    ) -> QualityRun:
        """Validate ``dates`` (default: every date with data), skipping unchanged ones with ``since_last``.

        Raises:
            QualityError: if the typed tables have not been refined yet.
        """
        pins = self.pins()
        run = QualityRun(run_id=f"q-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}")
        # tagged while the run reads them: ingest, expiry and compaction go on meanwhile
        held = {EVENTS: pins.events, CONSUMPTION: pins.consumption, REGISTRATION: pins.registration}
        with self._store.holding(held, f"quality-{run.run_id}", PIN_MAX_AGE):
            return self._run(run, pins, dates, since_last, on_date)

    def _run(
        self,
        run: QualityRun,
        pins: Pins,
        dates: Sequence[date] | None,
        since_last: bool,
        on_date: Callable[[date], None] | None,
    ) -> QualityRun:
        known = set(self.dates(pins))
        wanted = sorted(dates) if dates is not None else sorted(known)
        previous = self._fingerprints() if since_last else {}
        validator: Validator | None = None
        for day in wanted:
            if on_date is not None:
                on_date(day)
            if day not in known:
                run.empty.append(day)
                continue
            sources, fingerprint = self._sources(day, pins)
            if since_last and previous.get(day) == fingerprint:
                run.skipped.append(day)
                continue
            validator = validator or Validator(self._settings.docs_dir if self._docs else None)
            started = datetime.now(UTC)
            frames = build_frames(sources, self._settings.min_history)
            outcomes = validator.validate(frames, run.run_id)
            self._write(run.run_id, day, outcomes, pins, fingerprint, started)
            run.validated.append(DateOutcome(day, outcomes))
        if validator is not None and run.validated:
            index = validator.build_docs()
            run.docs_index = str(index) if index else None
        return run

    def _sources(self, day: date, pins: Pins) -> tuple[DaySources, str]:
        store = self._store
        events, ev_print = store.date_dataset(EVENTS, day, day, pins.events)
        deapp, _ = store.date_dataset(EVENTS, day, day, pins.events, topics=(DEAPPOINTMENT_TOPIC,))
        consumption, cons_print = store.date_dataset(CONSUMPTION, day, day, pins.consumption)
        lo, hi = history_window(day, self._settings.history_days)
        history, hist_print = store.date_dataset(CONSUMPTION, lo, hi, pins.consumption)
        registration = store.read(REGISTRATION, pins.registration)
        deappointments = deapp if isinstance(deapp, pa.Table) else deapp.to_table()
        fingerprint = hashlib.sha256(
            "|".join([ev_print, cons_print, hist_print, str(pins.registration), _SUITES_VERSION]).encode()
        ).hexdigest()[:24]
        return DaySources(day, events, consumption, history, registration, deappointments), fingerprint

    def _fingerprints(self) -> dict[date, str]:
        """The fingerprint of the latest run of each date."""
        runs = self._store.read(QUALITY_RUNS)
        if runs.num_rows == 0:
            return {}
        latest = runs.sort_by([("ended_at", "descending")])
        out: dict[date, str] = {}
        for day, fingerprint in zip(
            latest["utc_settlement_date"].to_pylist(), latest["fingerprint"].to_pylist(), strict=True
        ):
            out.setdefault(day, fingerprint)
        return out

    def _write(
        self, run_id: str, day: date, outcomes: list[SuiteOutcome], pins: Pins, fingerprint: str, started: datetime
    ) -> None:
        findings_schema = TABLES[QUALITY_FINDINGS].arrow_schema
        rows = [f for o in outcomes for f in o.findings]
        if rows:
            findings = pa.Table.from_pylist(rows, schema=findings_schema)
            self._store.append(QUALITY_FINDINGS, findings)
        ended = datetime.now(UTC)
        runs = []
        for o in outcomes:
            severities = [RULES[r].severity for r in o.unexpected]
            runs.append(
                {
                    "run_id": run_id,
                    "suite": o.suite,
                    "utc_settlement_date": day,
                    "started_at": started,
                    "ended_at": ended,
                    "events_snapshot_id": pins.events,
                    "consumption_snapshot_id": pins.consumption,
                    "registration_snapshot_id": pins.registration,
                    "evaluated": o.evaluated,
                    "unexpected_by_rule": orjson.dumps({str(k): v for k, v in sorted(o.unexpected.items())}).decode(),
                    "errors": sum(1 for f in o.findings if f["severity"] == "error"),
                    "warnings": sum(1 for f in o.findings if f["severity"] == "warning"),
                    "success": o.success and not severities,
                    "fingerprint": fingerprint,
                }
            )
        self._store.append(QUALITY_RUNS, pa.Table.from_pylist(runs, schema=TABLES[QUALITY_RUNS].arrow_schema))
