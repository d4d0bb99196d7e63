"""Registration life cycles: appointment flows (IF-031 to IF-036) and daily changes (IF-001/037/018/026)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from market.messages import SimRecord
from market.participants import DS_FOR_SEGMENT, MS_FOR_SEGMENT, MeterPoint, Participant
from market.state import SimulationState, sent_timestamp

Step = tuple[str, str, Participant, list[str], dict[str, Any]]
"""One message to send: interface, event code, sender, recipients and the CustomBlock."""


def _appointment(svc: Participant) -> dict[str, str]:
    return {"serviceRole": svc.role, "serviceMPID": svc.mpid, "serviceDIPID": svc.dip_id}


class RegistrationFlows(SimulationState):
    """The registration part of a run."""

    def _send(self, mp: MeterPoint, sent_at: str, step: Step, correlation: str | None = None) -> SimRecord:
        """Build one MPAN-level registration message (interface, event code, sender, recipients, body); emit it."""
        interface, event_code, sender, recipients, custom = step
        dist_dip = self.market.ldso[mp.distributor].dip_id
        _, rec = self._factory.build(
            interface, event_code, sender, recipients, sent_at, custom, mp=mp, distributor_dip=dist_dip,
            correlation_id=correlation,
        )  # fmt: skip
        return self._emit(rec)

    def _appointment_flow(
        self,
        mp: MeterPoint,
        eff: date,
        sent_at: str,
        parties: tuple[Participant, Participant, Participant] | None = None,
        correlation: str | None = None,
    ) -> Iterator[SimRecord]:
        """Request, consider, accept and confirm a supplier's data and metering services for ``mp`` from ``eff``.

        ``parties`` (supplier, data service, metering service) default to ``mp``'s current ones.
        """
        m = self.market
        regs = m.regs[mp.distributor]
        eff_s = eff.isoformat()
        dist_dip = m.ldso[mp.distributor].dip_id
        sup, ds, ms = parties or (mp.supplier, mp.data_service, mp.metering_service)
        for svc in (ds, ms):
            req = f"REQ-{self._factory.next_transaction_id()[2:]}"
            appt = _appointment(svc)
            request = {"requestID": req, "effectiveFromDate": eff_s}
            steps: list[Step] = [
                ("IF-031", "[AppointmentRequest]", sup, [regs.dip_id],
                 {**request, "supplierMPID": sup.mpid, "appointment": appt}),
                ("IF-033", "[RequestToConsiderAppointment]", regs, [svc.dip_id],
                 {**request, "supplierMPID": sup.mpid, "supplierDIPID": sup.dip_id, "appointment": appt,
                  "connectionType": mp.connection_type}),
                ("IF-034", "[ConsiderAppointmentResponse]", svc, [regs.dip_id],
                 {**request, "responseCode": "A", "appointment": appt}),
                ("IF-032", "[AppointmentResponse]", regs, [sup.dip_id], {**request, "responseCode": "A"}),
                ("IF-035", "[AppointmentAccepted]", regs, [sup.dip_id, svc.dip_id],
                 {**request, "appointmentStatus": "accepted", "appointment": appt}),
            ]  # fmt: skip
            for step in steps:
                yield self._send(mp, sent_at, step, correlation)
        confirm = {
            "registrationID": f"REG-{mp.mpan}-{eff_s}",
            "effectiveFromDate": eff_s,
            "supplierMPID": sup.mpid,
            "supplierDIPID": sup.dip_id,
            "segment": mp.segment,
            "connectionType": mp.connection_type,
            "energisationStatus": "E" if mp.energised else "D",
            "domesticPremisesIndicator": mp.domestic,
            "consentGranularity": mp.consent,
            "meterIDs": list(mp.meter_ids),
            "meteringPointAddress": {"addressLines": list(mp.address_lines), "postcode": mp.postcode},
            "appointments": [_appointment(s) for s in (ds, ms)],
        }
        recipients = [sup.dip_id, ds.dip_id, ms.dip_id, dist_dip, m.mds.dip_id]
        yield self._send(mp, sent_at, ("IF-036", "[AppointmentConfirmed]", regs, recipients, confirm), correlation)

    def _registration_changes(self, day: date) -> Iterator[SimRecord]:
        """Changes of supplier, energisation, consent and domestic indicator, sent on ``day`` effective the next.

        What was sent yesterday takes effect first: the state a day's consumption sees is the one in force on it.
        """
        self._apply_changes(day)
        rng = self._rng
        eff = day + timedelta(days=1)
        sent_at = sent_timestamp(day, 50_000)
        for mp in self.market.meter_points:
            r = rng.random()
            regs = self.market.regs[mp.distributor]
            notify = [mp.supplier.dip_id, mp.data_service.dip_id]
            if r < 0.003:
                yield from self._change_of_supplier(mp, day, eff, sent_at)
            elif r < 0.0035:
                energised = not mp.energised
                custom: dict[str, Any] = {"effectiveFromDate": eff.isoformat()}
                custom["energisationStatus"] = "E" if energised else "D"
                to = [*notify, self.market.ldso[mp.distributor].dip_id]
                yield self._send(mp, sent_at, ("IF-018", "[EnergisationStatusChange]", regs, to, custom))
                self._on(eff, lambda mp=mp, v=energised: setattr(mp, "energised", v))  # type: ignore[misc]
            elif r < 0.0045 and mp.domestic:
                consent = "M" if mp.consent == "H" else "H"
                custom = {"effectiveFromDate": eff.isoformat(), "consentGranularity": consent}
                yield self._send(mp, sent_at, ("IF-026", "[ConsentChange]", regs, notify, custom))
                self._on(eff, lambda mp=mp, v=consent: setattr(mp, "consent", v))  # type: ignore[misc]
            elif 0.0045 <= r < 0.0048 and mp.segment == "S":
                domestic = not mp.domestic
                custom = {"effectiveFromDate": eff.isoformat(), "domesticPremisesIndicator": domestic}
                yield self._send(mp, sent_at, ("IF-026", "[DomesticIndicatorChange]", regs, notify, custom))
                self._on(eff, lambda mp=mp, v=domestic: setattr(mp, "domestic", v))  # type: ignore[misc]

    def _change_of_supplier(self, mp: MeterPoint, day: date, eff: date, sent_at: str) -> Iterator[SimRecord]:
        """A new supplier and services from ``eff``; the old services de-appointed to ``day``."""
        m = self.market
        rng = self._rng
        regs = m.regs[mp.distributor]
        dist_dip = m.ldso[mp.distributor].dip_id
        old = (mp.supplier, mp.data_service, mp.metering_service)
        choices = [s for s in m.suppliers if s != mp.supplier]
        new_sup = choices[int(rng.integers(0, len(choices)))]
        notice = {
            "registrationID": f"REG-{mp.mpan}-{eff.isoformat()}",
            "effectiveFromDate": eff.isoformat(),
            "newSupplierMPID": new_sup.mpid,
            "newSupplierDIPID": new_sup.dip_id,
            "oldSupplierMPID": old[0].mpid,
            "oldSupplierDIPID": old[0].dip_id,
            "segment": mp.segment,
        }
        to = [new_sup.dip_id, old[0].dip_id, m.mds.dip_id, dist_dip]
        yield self._send(mp, sent_at, ("IF-001", "[ChangeOfSupplier]", regs, to, notice))
        ds_pool = m.services[DS_FOR_SEGMENT[mp.segment]]
        ms_pool = m.services[MS_FOR_SEGMENT[mp.segment]]
        new = (new_sup, ds_pool[int(rng.integers(0, len(ds_pool)))], ms_pool[int(rng.integers(0, len(ms_pool)))])
        yield from self._appointment_flow(mp, eff, sent_at, new)

        def switch(mp: MeterPoint = mp, new: tuple[Participant, Participant, Participant] = new) -> None:
            mp.supplier, mp.data_service, mp.metering_service = new
            mp.registered_from = eff.isoformat()

        self._on(eff, switch)
        for svc in old[1:]:
            appt = _appointment(svc)
            ended = {"effectiveToDate": day.isoformat(), "deAppointmentReason": "CSUPP", "appointment": appt}
            to = [svc.dip_id, old[0].dip_id, m.mds.dip_id, dist_dip]
            yield self._send(mp, sent_at, ("IF-037", "[DeAppointment]", regs, to, ended))
