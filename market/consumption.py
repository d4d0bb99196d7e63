"""Daily consumption: IF-021 per energised channel, estimates, revisions, MDS defaults (IF-013/014), faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np

from contract.identifiers import DNO_BY_DISTRIBUTOR
from contract.topics import topic_for_interface
from market.faults import apply_business_fault, apply_malformed_fault
from market.messages import SimRecord, encode
from market.participants import MeterPoint, Participant
from market.profiles import daily_values, period_ends
from market.state import SimulationState, sent_timestamp

ESTIMATE_CODES = ("E0", "E1", "E2", "E3", "EA1", "EA4")
OUTLIER_HISTORY_DAYS = 7  # days of a channel's consumption before an outlier can be told from its median

Revision = tuple[MeterPoint, str, np.ndarray, str, Participant]
"""A channel estimated on a day, to be revised with actuals the next: (meter point, quantity, values, date, DS)."""


class ConsumptionFlows(SimulationState):
    """The consumption part of a run."""

    _days_sent: dict[tuple[str, str], int]

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
        data_service: Participant | None = None,
    ) -> tuple[dict[str, Any], SimRecord]:
        """One IF-021 from ``data_service`` (default: the one appointed now)."""
        ds = data_service or mp.data_service
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
            "dataServiceDIPID": ds.dip_id,
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
            ds,
            recipients,
            sent_at,
            custom,
            mp=mp,
            distributor_dip=m.ldso[mp.distributor].dip_id,
        )

    def _consumption(self, day: date, revisions: list[Revision]) -> Iterator[SimRecord]:
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
        kinds = np.array(["solar" if q == "AE" else mp.profile for mp, q in channels])
        base = np.array([mp.base_kwh * (0.6 if q == "AE" else 1.0) for mp, q in channels])
        values = daily_values(rng, kinds, base, day)
        estimated = rng.random(len(channels)) < 0.03
        defaulted = rng.random(len(channels)) < 0.001
        ends = period_ends(day)
        next_day = day + timedelta(days=1)
        deenergised = [mp for mp in m.meter_points if not mp.energised]
        for i, (mp, quantity) in enumerate(channels):
            sent_at = sent_timestamp(next_day, 3600 + i % 36_000)
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
                    revisions.append((mp, quantity, values[i], day.isoformat(), mp.data_service))
            message, record = self._consumption_message(mp, quantity, day, ends, vals, qis, reasons, sent_at)
            yield from self._with_faults(mp, quantity, message, record, deenergised, day, ends, sent_at)
            self._days_sent[(mp.mpan, quantity)] = self._days_sent.get((mp.mpan, quantity), 0) + 1

    def _eligible_faults(self, mp: MeterPoint, quantity: str, deenergised: list[MeterPoint]) -> frozenset[str]:
        """The business faults this message cannot carry so that its rule can still find it (excluded)."""
        out = set()
        if not deenergised:
            out.add("consumption_while_deenergised")
        if quantity != "AI":  # rules 9 and 10 are about import: export has natural zero runs at night
            out.update(("outlier", "zero_run"))
        if self._days_sent.get((mp.mpan, quantity), 0) < OUTLIER_HISTORY_DAYS:
            out.add("outlier")  # rule 9 needs the MPAN's history of that period
        if mp.distributor not in DNO_BY_DISTRIBUTOR:
            out.add("gsp_mismatch")  # rule 12 knows home GSP groups of DNOs only
        return frozenset(out)

    def _with_faults(
        self,
        mp: MeterPoint,
        quantity: str,
        message: dict[str, Any],
        record: SimRecord,
        deenergised: list[MeterPoint],
        day: date,
        ends: list[str],
        sent_at: str,
    ) -> Iterator[SimRecord]:
        fault = self._business.pick(self._eligible_faults(mp, quantity, deenergised))
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

    def _revisions(self, pending: list[Revision], day: date) -> Iterator[SimRecord]:
        """Revised IF-021 (all actuals, new transaction) for yesterday's estimated channels, from their data service."""
        for i, (mp, quantity, values, settlement, ds) in enumerate(pending):
            sd = date.fromisoformat(settlement)
            sent_at = sent_timestamp(day, 70_000 + i % 10_000)
            vals = values.tolist()
            _, rec = self._consumption_message(mp, quantity, sd, period_ends(sd), vals, None, None, sent_at, ds)
            yield self._emit(rec)
