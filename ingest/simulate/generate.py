"""The simulation run: registration life cycles, daily consumption, load shapes, ISD and faults."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from ingest.simulate.faults import (
    BUSINESS_FAULTS,
    MALFORMED_FAULTS,
    FaultEntry,
    FaultPicker,
    apply_business_fault,
    apply_malformed_fault,
)
from ingest.simulate.market import (
    DS_FOR_SEGMENT,
    MS_FOR_SEGMENT,
    Market,
    MeterPoint,
    Participant,
    build_meter_points,
    build_participants,
)
from ingest.simulate.messages import MessageFactory, SimRecord, encode
from ingest.simulate.profiles import SHAPES, daily_values, period_ends
from lakehouse.contract.identifiers import GSP_GROUPS
from lakehouse.contract.topics import topic_for_interface

ESTIMATE_CODES = ("E0", "E1", "E2", "E3", "EA1", "EA4")


@dataclass(frozen=True, slots=True)
class SimulationParams:
    """What to simulate; the same params and seed always give the same records."""

    mpans: int
    days: int
    start: date
    seed: int = 7
    business_fault_rate: float = 0.005
    malformed_rate: float = 0.002
    max_message_bytes: int = 1_048_576

    def __post_init__(self) -> None:
        if self.mpans < 1:
            raise ValueError("mpans must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        for name in ("business_fault_rate", "malformed_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        return d


def _ts(day: date, seconds: int) -> str:
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Simulation:
    """Generates the records of one simulated market; ``faults`` fills in as records are made."""

    params: SimulationParams
    faults: list[FaultEntry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.params.seed)
        self._fault_rng = np.random.default_rng(self.params.seed + 1_000_003)
        self._factory = MessageFactory(self.params.seed)
        self.market: Market = build_participants(self._rng)
        self.market.meter_points = build_meter_points(
            self._rng, self.market, self.params.mpans, self.params.start.toordinal()
        )
        self._business = FaultPicker(self._fault_rng, list(BUSINESS_FAULTS), self.params.business_fault_rate)
        self._malformed = FaultPicker(self._fault_rng, list(MALFORMED_FAULTS), self.params.malformed_rate)
        self._seq = 0

    # -- output bookkeeping -------------------------------------------------------------
    def _emit(self, record: SimRecord) -> SimRecord:
        self.counts[record.topic] = self.counts.get(record.topic, 0) + 1
        self._seq += 1
        return record

    def _note(self, record: SimRecord, kind: str, fault: str) -> None:
        self.faults.append(
            FaultEntry(
                seq=self._seq,
                topic=record.topic,
                key=record.key.decode() if record.key else None,
                transaction_id=record.transaction_id,
                kind=kind,
                fault=fault,
                expected_code=MALFORMED_FAULTS.get(fault) if kind == "malformed" else None,
                rule=BUSINESS_FAULTS.get(fault) if kind == "business" else None,
            )
        )

    # -- the whole run ------------------------------------------------------------------
    def records(self) -> Iterator[SimRecord]:
        """Every record of the run, in publication order.

        The cyclic garbage collector is paused while generating: messages are acyclic dicts freed
        by reference counting, and collector passes over them roughly doubled the run time.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield from self._records()
        finally:
            if was_enabled:
                gc.enable()

    def _records(self) -> Iterator[SimRecord]:
        start = self.params.start
        yield from self._isd(start - timedelta(days=1))
        for mp in self.market.meter_points:
            eff = date.fromisoformat(mp.registered_from)
            yield from self._appointment_flow(mp, eff, _ts(eff - timedelta(days=5), 36_000))
        pending_revisions: list[tuple[MeterPoint, str, np.ndarray, str]] = []
        for d in range(self.params.days):
            day = start + timedelta(days=d)
            yield from self._registration_changes(day)
            yield from self._revisions(pending_revisions, day)
            pending_revisions = []
            yield from self._consumption(day, pending_revisions)
            yield from self._load_shapes(day)

    def _isd(self, eff: date) -> Iterator[SimRecord]:
        datasets: dict[str, list[dict[str, Any]]] = {
            "market_participants": [
                {"mpid": p.mpid, "role": p.role, "dipID": p.dip_id} for p in self.market.all_participants()
            ],
            "gsp_groups": [{"gspGroupID": g} for g in GSP_GROUPS],
            "distributors": [
                {"distributorID": dist, "ldsoMPID": p.mpid, "ldsoDIPID": p.dip_id}
                for dist, p in sorted(self.market.ldso.items())
            ],
        }
        for name, records in datasets.items():
            _, rec = self._factory.build(
                "IF-047",
                "[ISDPublication]",
                self.market.isd,
                ["ALL"],
                _ts(eff, 3600),
                {"dataset": name, "effectiveFromDate": eff.isoformat(), "records": records},
                key=name,
            )
            yield self._emit(rec)

    def _appointment_flow(
        self, mp: MeterPoint, eff: date, sent_at: str, correlation: str | None = None
    ) -> Iterator[SimRecord]:
        m = self.market
        regs = m.regs[mp.distributor]
        eff_s = eff.isoformat()
        dist_dip = m.ldso[mp.distributor].dip_id
        for svc in (mp.data_service, mp.metering_service):
            req = f"REQ-{self._factory.next_transaction_id()[2:]}"
            appt = {"serviceRole": svc.role, "serviceMPID": svc.mpid, "serviceDIPID": svc.dip_id}
            steps: list[tuple[str, str, Participant, list[str], dict[str, Any]]] = [
                (
                    "IF-031",
                    "[AppointmentRequest]",
                    mp.supplier,
                    [regs.dip_id],
                    {
                        "requestID": req,
                        "effectiveFromDate": eff_s,
                        "supplierMPID": mp.supplier.mpid,
                        "appointment": appt,
                    },
                ),
                (
                    "IF-033",
                    "[RequestToConsiderAppointment]",
                    regs,
                    [svc.dip_id],
                    {
                        "requestID": req,
                        "effectiveFromDate": eff_s,
                        "supplierMPID": mp.supplier.mpid,
                        "supplierDIPID": mp.supplier.dip_id,
                        "appointment": appt,
                        "connectionType": mp.connection_type,
                    },
                ),
                (
                    "IF-034",
                    "[ConsiderAppointmentResponse]",
                    svc,
                    [regs.dip_id],
                    {"requestID": req, "effectiveFromDate": eff_s, "responseCode": "A", "appointment": appt},
                ),
                (
                    "IF-032",
                    "[AppointmentResponse]",
                    regs,
                    [mp.supplier.dip_id],
                    {"requestID": req, "effectiveFromDate": eff_s, "responseCode": "A"},
                ),
                (
                    "IF-035",
                    "[AppointmentAccepted]",
                    regs,
                    [mp.supplier.dip_id, svc.dip_id],
                    {
                        "requestID": req,
                        "effectiveFromDate": eff_s,
                        "appointmentStatus": "accepted",
                        "appointment": appt,
                    },
                ),
            ]
            for interface, code, sender, to, custom in steps:
                _, rec = self._factory.build(
                    interface,
                    code,
                    sender,
                    to,
                    sent_at,
                    custom,
                    mp=mp,
                    distributor_dip=dist_dip,
                    correlation_id=correlation,
                )
                yield self._emit(rec)
        confirm = {
            "registrationID": f"REG-{mp.mpan}-{eff_s}",
            "effectiveFromDate": eff_s,
            "supplierMPID": mp.supplier.mpid,
            "supplierDIPID": mp.supplier.dip_id,
            "segment": mp.segment,
            "connectionType": mp.connection_type,
            "energisationStatus": "E" if mp.energised else "D",
            "domesticPremisesIndicator": mp.domestic,
            "consentGranularity": mp.consent,
            "meterIDs": list(mp.meter_ids),
            "meteringPointAddress": {"addressLines": list(mp.address_lines), "postcode": mp.postcode},
            "appointments": [
                {"serviceRole": s.role, "serviceMPID": s.mpid, "serviceDIPID": s.dip_id}
                for s in (mp.data_service, mp.metering_service)
            ],
        }
        recipients = [
            mp.supplier.dip_id,
            mp.data_service.dip_id,
            mp.metering_service.dip_id,
            dist_dip,
            m.mds.dip_id,
        ]
        _, rec = self._factory.build(
            "IF-036",
            "[AppointmentConfirmed]",
            regs,
            recipients,
            sent_at,
            confirm,
            mp=mp,
            distributor_dip=dist_dip,
            correlation_id=correlation,
        )
        yield self._emit(rec)

    def _registration_changes(self, day: date) -> Iterator[SimRecord]:
        """Changes of supplier, energisation and consent, sent on ``day`` effective the next day."""
        rng = self._rng
        m = self.market
        eff = day + timedelta(days=1)
        sent_at = _ts(day, 50_000)
        for mp in m.meter_points:
            r = rng.random()
            regs = m.regs[mp.distributor]
            dist_dip = m.ldso[mp.distributor].dip_id
            if r < 0.003:  # change of supplier: new supplier and services, old ones de-appointed
                old = (mp.supplier, mp.data_service, mp.metering_service)
                choices = [s for s in m.suppliers if s != mp.supplier]
                new_sup = choices[int(rng.integers(0, len(choices)))]
                _, rec = self._factory.build(
                    "IF-001",
                    "[ChangeOfSupplier]",
                    regs,
                    [new_sup.dip_id, old[0].dip_id, m.mds.dip_id, dist_dip],
                    sent_at,
                    {
                        "registrationID": f"REG-{mp.mpan}-{eff.isoformat()}",
                        "effectiveFromDate": eff.isoformat(),
                        "newSupplierMPID": new_sup.mpid,
                        "newSupplierDIPID": new_sup.dip_id,
                        "oldSupplierMPID": old[0].mpid,
                        "oldSupplierDIPID": old[0].dip_id,
                        "segment": mp.segment,
                    },
                    mp=mp,
                    distributor_dip=dist_dip,
                )
                yield self._emit(rec)
                ds_pool = m.services[DS_FOR_SEGMENT[mp.segment]]
                ms_pool = m.services[MS_FOR_SEGMENT[mp.segment]]
                mp.supplier = new_sup
                mp.data_service = ds_pool[int(rng.integers(0, len(ds_pool)))]
                mp.metering_service = ms_pool[int(rng.integers(0, len(ms_pool)))]
                mp.registered_from = eff.isoformat()
                yield from self._appointment_flow(mp, eff, sent_at)
                for svc in old[1:]:
                    _, rec = self._factory.build(
                        "IF-037",
                        "[DeAppointment]",
                        regs,
                        [svc.dip_id, old[0].dip_id, m.mds.dip_id, dist_dip],
                        sent_at,
                        {
                            "effectiveToDate": day.isoformat(),
                            "deAppointmentReason": "CSUPP",
                            "appointment": {
                                "serviceRole": svc.role,
                                "serviceMPID": svc.mpid,
                                "serviceDIPID": svc.dip_id,
                            },
                        },
                        mp=mp,
                        distributor_dip=dist_dip,
                    )
                    yield self._emit(rec)
            elif r < 0.0035:  # energisation status change
                mp.energised = not mp.energised
                _, rec = self._factory.build(
                    "IF-018",
                    "[EnergisationStatusChange]",
                    regs,
                    [mp.supplier.dip_id, mp.data_service.dip_id, dist_dip],
                    sent_at,
                    {
                        "effectiveFromDate": eff.isoformat(),
                        "energisationStatus": "E" if mp.energised else "D",
                    },
                    mp=mp,
                    distributor_dip=dist_dip,
                )
                yield self._emit(rec)
            elif r < 0.0045 and mp.domestic:  # consent change
                mp.consent = "M" if mp.consent == "H" else "H"
                _, rec = self._factory.build(
                    "IF-026",
                    "[ConsentChange]",
                    regs,
                    [mp.supplier.dip_id, mp.data_service.dip_id],
                    sent_at,
                    {"effectiveFromDate": eff.isoformat(), "consentGranularity": mp.consent},
                    mp=mp,
                    distributor_dip=dist_dip,
                )
                yield self._emit(rec)

    def _consumption_message(
        self,
        mp: MeterPoint,
        quantity: str,
        day: date,
        ends: list[str],
        values: list[float],
        qis: list[str] | None,
        reasons: list[int | None] | None,
        sent_at: str,
    ) -> tuple[dict[str, Any], SimRecord]:
        if qis is None:
            periods = [
                {
                    "settlementPeriodEffectiveToDateTime": e,
                    "consumption": v,
                    "settlementPeriodQualityIndicator": "A",
                }
                for e, v in zip(ends, values, strict=True)
            ]
        else:
            assert reasons is not None
            periods = []
            for e, v, q, rc in zip(ends, values, qis, reasons, strict=True):
                p: dict[str, Any] = {
                    "settlementPeriodEffectiveToDateTime": e,
                    "consumption": v,
                    "settlementPeriodQualityIndicator": q,
                }
                if rc is not None:
                    p["estimationReasonCode"] = rc
                periods.append(p)
        m = self.market
        custom = {
            "dataServiceDIPID": mp.data_service.dip_id,
            "connectionType": mp.connection_type,
            "measurementQuantityID": quantity,
            "utcSettlementDate": day.isoformat(),
            "settlementPeriodDuration": 30,
            "periods": periods,
        }
        recipients = [m.lss.dip_id, m.mds.dip_id, m.ldso[mp.distributor].dip_id, mp.supplier.dip_id]
        return self._factory.build(
            "IF-021",
            "[ActivePower]",
            mp.data_service,
            recipients,
            sent_at,
            custom,
            mp=mp,
            distributor_dip=m.ldso[mp.distributor].dip_id,
        )

    def _consumption(self, day: date, revisions: list[tuple[MeterPoint, str, np.ndarray, str]]) -> Iterator[SimRecord]:
        """IF-021 for every energised channel on ``day``, with estimates, faults, IF-013/014."""
        rng = self._rng
        m = self.market
        channels: list[tuple[MeterPoint, str]] = []
        for mp in m.meter_points:
            if mp.energised:
                channels.append((mp, "AI"))
                if mp.solar:
                    channels.append((mp, "AE"))
        if not channels:
            return
        kinds = np.array(
            [
                "solar"
                if q == "AE"
                else ("domestic" if mp.domestic else {"S": "business", "A": "advanced", "U": "unmetered"}[mp.segment])
                for mp, q in channels
            ]
        )
        base = np.array([mp.base_kwh * (0.6 if q == "AE" else 1.0) for mp, q in channels])
        values = daily_values(rng, kinds, base, day)
        estimated = rng.random(len(channels)) < 0.03
        defaulted = rng.random(len(channels)) < 0.001
        ends = period_ends(day)
        next_day = day + timedelta(days=1)
        deenergised = [mp for mp in m.meter_points if not mp.energised]
        for i, (mp, quantity) in enumerate(channels):
            sent_at = _ts(next_day, 3600 + i % 36_000)
            vals = values[i].tolist()
            if defaulted[i]:  # the data service sent nothing: MDS defaults it (IF-013)
                yield from self._defaulted(mp, quantity, day, ends, vals, sent_at)
                continue
            qis: list[str] | None = None
            reasons: list[int | None] | None = None
            if mp.consent != "H" and quantity == "AI":
                qis, reasons = ["E1"] * 48, [1] * 48
            elif estimated[i]:
                run_start = int(rng.integers(0, 40))
                run_len = int(rng.integers(1, 9))
                code = ESTIMATE_CODES[int(rng.integers(0, len(ESTIMATE_CODES)))]
                reason = int(rng.choice([2, 3, 4]))
                qis = ["A"] * 48
                reasons = [None] * 48
                for j in range(run_start, min(48, run_start + run_len)):
                    qis[j], reasons[j] = code, reason
                if rng.random() < 0.3:
                    revisions.append((mp, quantity, values[i], day.isoformat()))
            message, record = self._consumption_message(mp, quantity, day, ends, vals, qis, reasons, sent_at)
            yield from self._with_faults(mp, message, record, deenergised, day, ends, sent_at)

    def _with_faults(
        self,
        mp: MeterPoint,
        message: dict[str, Any],
        record: SimRecord,
        deenergised: list[MeterPoint],
        day: date,
        ends: list[str],
        sent_at: str,
    ) -> Iterator[SimRecord]:
        exclude = frozenset() if deenergised else frozenset({"consumption_while_deenergised"})
        fault = self._business.pick(exclude)
        if fault is None:
            bad = self._malformed.pick()
            if bad is None:
                yield self._emit(record)
                return
            other = topic_for_interface("IF-013")
            broken = apply_malformed_fault(bad, record, message, other, self.params.max_message_bytes)
            self._note(broken, "malformed", bad)
            yield self._emit(broken)
            return
        if fault == "duplicate_transaction":
            yield self._emit(record)
            self._note(record, "business", fault)
            yield self._emit(record)
            return
        if fault == "consumption_while_deenergised":
            yield self._emit(record)
            target = deenergised[int(self._fault_rng.integers(0, len(deenergised)))]
            vals = daily_values(self._fault_rng, np.array(["domestic"]), np.array([0.3]), day)[0]
            _, extra = self._consumption_message(target, "AI", day, ends, vals.tolist(), None, None, sent_at)
            self._note(extra, "business", fault)
            yield self._emit(extra)
            return
        pool = [s for s in self.market.services[mp.data_service.role] if s != mp.data_service]
        other_ds = pool[int(self._fault_rng.integers(0, len(pool)))].dip_id
        faulty = apply_business_fault(fault, message, self._fault_rng, other_ds)
        key = faulty["CommonBlock"]["M0"]["MPANCore"]
        rec = encode(record.topic, key, faulty)
        self._note(rec, "business", fault)
        yield self._emit(rec)

    def _defaulted(
        self,
        mp: MeterPoint,
        quantity: str,
        day: date,
        ends: list[str],
        vals: list[float],
        sent_at: str,
    ) -> Iterator[SimRecord]:
        m = self.market
        periods = [
            {
                "settlementPeriodEffectiveToDateTime": e,
                "consumption": v,
                "settlementPeriodQualityIndicator": "ZE",
                "estimationReasonCode": 2,
            }
            for e, v in zip(ends, vals, strict=True)
        ]
        dist_dip = m.ldso[mp.distributor].dip_id
        _, rec = self._factory.build(
            "IF-013",
            "[DefaultedConsumption]",
            m.mds,
            [mp.data_service.dip_id, mp.supplier.dip_id],
            sent_at,
            {
                "measurementQuantityID": quantity,
                "utcSettlementDate": day.isoformat(),
                "defaultReason": "no consumption received",
                "periods": periods,
            },
            mp=mp,
            distributor_dip=dist_dip,
        )
        yield self._emit(rec)
        _, warn = self._factory.build(
            "IF-014",
            "[ConsumptionWarning]",
            m.mds,
            [mp.data_service.dip_id],
            sent_at,
            {
                "utcSettlementDate": day.isoformat(),
                "originalTransactionID": rec.transaction_id,
                "warningCode": "W001",
                "description": "consumption defaulted: none received from DS",
            },
            mp=mp,
            distributor_dip=dist_dip,
        )
        yield self._emit(warn)

    def _revisions(self, pending: list[tuple[MeterPoint, str, np.ndarray, str]], day: date) -> Iterator[SimRecord]:
        """Revised IF-021 (all actuals, new transaction) for yesterday's estimated channels."""
        for i, (mp, quantity, values, settlement) in enumerate(pending):
            sd = date.fromisoformat(settlement)
            _, rec = self._consumption_message(
                mp, quantity, sd, period_ends(sd), values.tolist(), None, None, _ts(day, 70_000 + i % 10_000)
            )
            yield self._emit(rec)

    def _load_shapes(self, day: date) -> Iterator[SimRecord]:
        """IF-022 load shapes and IF-023 totals per GSP group from the LSS."""
        m = self.market
        ends = period_ends(day)
        sent_at = _ts(day + timedelta(days=2), 7200)
        by_gsp: dict[str, list[MeterPoint]] = {}
        for mp in m.meter_points:
            by_gsp.setdefault(mp.gsp_group, []).append(mp)
        for gsp in GSP_GROUPS:
            points = by_gsp.get(gsp, [])
            for category, shape in (("DOM", SHAPES["domestic"]), ("NDOM", SHAPES["business"])):
                values = np.round(shape / 48.0, 6).tolist()
                _, rec = self._factory.build(
                    "IF-022",
                    "[LoadShapePeriods]",
                    m.lss,
                    ["PUBLIC"],
                    sent_at,
                    {
                        "gspGroupID": gsp,
                        "utcSettlementDate": day.isoformat(),
                        "loadShapeCategory": category,
                        "periods": [
                            {"settlementPeriodEffectiveToDateTime": e, "loadShapeValue": v}
                            for e, v in zip(ends, values, strict=True)
                        ],
                    },
                    key=gsp,
                )
                yield self._emit(rec)
            dom = sum(1 for p in points if p.domestic)
            _, rec = self._factory.build(
                "IF-023",
                "[LoadShapeTotals]",
                m.lss,
                ["PUBLIC"],
                sent_at,
                {
                    "gspGroupID": gsp,
                    "utcSettlementDate": day.isoformat(),
                    "totals": [
                        {
                            "loadShapeCategory": "DOM",
                            "meteringPointCount": dom,
                            "totalConsumption": round(sum(p.base_kwh for p in points if p.domestic) * 48, 3),
                        },
                        {
                            "loadShapeCategory": "NDOM",
                            "meteringPointCount": len(points) - dom,
                            "totalConsumption": round(sum(p.base_kwh for p in points if not p.domestic) * 48, 3),
                        },
                    ],
                },
                key=gsp,
            )
            yield self._emit(rec)
