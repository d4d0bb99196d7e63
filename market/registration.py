"""Registration life cycles: appointment flows (IF-031 to IF-036) and daily changes (IF-001/037/018/026)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from market.messages import SimRecord
from market.participants import DS_FOR_SEGMENT, MS_FOR_SEGMENT, MeterPoint, Participant
from market.state import SimulationState, sent_timestamp


class RegistrationFlows(SimulationState):
    """The registration part of a run."""

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
        sent_at = sent_timestamp(day, 50_000)
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
