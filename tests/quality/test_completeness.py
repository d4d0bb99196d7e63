"""Completeness certificates: deleted rows are exactly the gaps; missing consumption is listed, but not when
nobody is appointed to send it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import orjson
from pyiceberg.expressions import And, EqualTo, In

from lakehouse.catalog import open_catalog
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import COMPLETENESS, EVENTS, ensure_table
from market.messages import SimRecord, encode
from quality.completeness import CONSUMPTION_TOPIC, certify
from quality.settings import QualitySettings
from tests.support.markets import land_records, simulated

START = date(2026, 5, 4)


def _mpan_day(rec: SimRecord) -> tuple[str, str] | None:
    if rec.interface != "IF-021":
        return None
    doc = orjson.loads(rec.value or b"")
    return doc["CommonBlock"]["M0"]["MPANCore"], doc["CustomBlock"]["utcSettlementDate"]


def _deappointment(template: SimRecord, ds_role: str, ds_mpid: str, ds_dip: str, effective_to: date) -> SimRecord:
    """An IF-037 ending the data service of the template's MPAN on ``effective_to`` (nobody follows it)."""
    doc = orjson.loads(template.value or b"")
    doc["CommonBlock"]["S0"] = {"interfaceID": "IF-037", "schemaVersion": "001", "eventCode": "[DeAppointment]"}
    doc["CommonBlock"]["D0"]["transactionID"] = "T-DEAPP-000001"
    doc["CustomBlock"] = {
        "effectiveToDate": effective_to.isoformat(),
        "deAppointmentReason": "CSERV",
        "appointment": {"serviceRole": ds_role, "serviceMPID": ds_mpid, "serviceDIPID": ds_dip},
    }
    return encode("mhhs.registration.if-037", template.key.decode() if template.key else None, doc)


def test_missing_consumption_is_listed_except_where_nobody_is_appointed(tmp_path: Path) -> None:
    sim, records = simulated(60, 3, START, 505, 0.0)
    energised = [mp for mp in sim.market.meter_points if mp.energised and not mp.solar]
    gone, late = energised[0], energised[1]  # gone: its data service is de-appointed; late: its IF-021 never came
    day1 = (START + timedelta(days=1)).isoformat()
    confirm = next(r for r in records if r.interface == "IF-036" and r.key == gone.mpan.encode())
    ds = gone.data_service
    kept = [
        r
        for r in records
        if _mpan_day(r)
        not in {(gone.mpan, day1), (gone.mpan, (START + timedelta(days=2)).isoformat()), (late.mpan, day1)}
    ]
    kept.append(_deappointment(confirm, ds.role, ds.mpid, ds.dip_id, START))
    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    land_records(lake, kept)
    certificates = certify(Store(lake), QualitySettings(), [START + timedelta(days=1)])
    [c] = [c for c in certificates if c.topic == CONSUMPTION_TOPIC]
    assert (late.mpan, "AI") in c.missing
    assert all(m != gone.mpan for m, _ in c.missing)  # de-appointed: due nothing
    assert c.expected is not None and c.expected >= 40 and not c.complete
    stored = read_table(lake, COMPLETENESS).to_pylist()
    assert any(r["topic"] == CONSUMPTION_TOPIC and late.mpan in (r["missing"] or "") for r in stored)


def test_rows_deleted_from_events_are_exactly_the_gaps(tmp_path: Path) -> None:
    _, records = simulated(60, 2, START, 606, 0.0)
    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    land_records(lake, records)
    store = Store(lake)
    before = [c for c in certify(store, QualitySettings(), [START]) if c.topic == CONSUMPTION_TOPIC]
    assert before and not before[0].gaps
    events = ensure_table(open_catalog(lake), lake, EVENTS)
    offsets = sorted(
        r["offset"] for r in read_table(lake, EVENTS, ["topic", "partition", "offset"]).to_pylist()
        if r["topic"] == CONSUMPTION_TOPIC and r["partition"] == 1
    )  # fmt: skip
    doomed = [offsets[5], offsets[6], offsets[9]]  # not the first: the first offset held starts the count
    events.delete(And(EqualTo("topic", CONSUMPTION_TOPIC), And(EqualTo("partition", 1), In("offset", doomed))))
    after = [c for c in certify(Store(lake), QualitySettings(), [START]) if c.topic == CONSUMPTION_TOPIC]
    assert after[0].gaps == [(1, doomed[0], doomed[1] + 1), (1, doomed[2], doomed[2] + 1)]
    assert after[0].gap_offsets == 3 and not after[0].complete
