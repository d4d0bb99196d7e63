"""The typed registration table: intervals cut by energisation and consent, refined incrementally."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta

import orjson
import pyarrow as pa

from lakehouse.catalog import open_catalog
from lakehouse.refine.registration import (
    SOURCE_COLUMNS,
    rebuild_registration,
    refine_registration,
    registration_intervals,
)
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import REGISTRATION, ensure_table
from lakehouse.writer import LandingWriter
from tests.support.landing import GROUP, simulated_batches

D0 = date(2026, 4, 1)
OPEN = date(9999, 12, 31)


def _event(interface: str, day: int, block: dict, sent: str = "T") -> dict:  # type: ignore[type-arg]
    return {
        "mpan": "1200000000011",
        "settlement_date": D0 + timedelta(days=day),
        "interface_id": interface,
        "transaction_id": f"{interface}-{day}",
        "sender_timestamp": f"2026-03-01T00:00:{day:02d}Z{sent}",
        "value": orjson.dumps({"CommonBlock": {}, "CustomBlock": block}),
    }


def _confirmation(day: int, supplier: str, energisation: str, consent: str) -> dict:  # type: ignore[type-arg]
    return _event(
        "IF-036",
        day,
        {
            "supplierMPID": supplier,
            "appointments": [{"serviceMPID": "DSV1", "serviceRole": "SDS"}],
            "segment": "D",
            "energisationStatus": energisation,
            "domesticPremisesIndicator": True,
            "consentGranularity": consent,
        },
    )


def test_intervals_are_cut_where_energisation_or_consent_changes() -> None:
    rows = [
        _confirmation(0, "SUPA", "E", "H"),
        _event("IF-018", 4, {"effectiveFromDate": "x", "energisationStatus": "D"}),
        _event("IF-026", 6, {"effectiveFromDate": "x", "consentGranularity": "M"}),
        _event("IF-037", 7, {"appointment": {"serviceMPID": "DSV1", "serviceRole": "SDS"}}),
        _confirmation(9, "SUPB", "E", "M"),
    ]
    source = pa.Table.from_pylist(rows).select(list(SOURCE_COLUMNS))
    got = registration_intervals(source).to_pylist()
    by = {(r["participant"], r["eff_from"]): (r["eff_to"], r["energisation"], r["consent"]) for r in got}
    d = [D0 + timedelta(days=i) for i in range(10)]
    assert by == {
        ("SUPA", d[0]): (d[3], "E", "H"),
        ("SUPA", d[4]): (d[5], "D", "H"),  # de-energised from day 4
        ("SUPA", d[6]): (d[8], "D", "M"),  # consent to monthly from day 6; supplier ends the day before SUPB
        ("DSV1", d[0]): (d[3], "E", "H"),
        ("DSV1", d[4]): (d[5], "D", "H"),
        ("DSV1", d[6]): (d[7], "D", "M"),  # de-appointed effective day 7; re-appointed by SUPB's confirmation
        ("DSV1", d[9]): (OPEN, "E", "M"),
        ("SUPB", d[9]): (OPEN, "E", "M"),
    }


def _table(lake: LakehouseSettings) -> pa.Table:
    t = ensure_table(open_catalog(lake), lake, REGISTRATION)
    t.refresh()
    return t.scan().to_arrow()


def test_incremental_refine_touches_only_new_mpans_and_equals_a_rebuild(lake: LakehouseSettings) -> None:
    writer = LandingWriter(lake)
    catalog = open_catalog(lake)
    batches = simulated_batches(12, 150)
    runs = []
    for lo in (0, 4, 8):
        for events, quarantine, offsets in batches[lo : lo + 4]:
            writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
        runs.append(refine_registration(catalog, lake))
    assert runs[0].events_read > 0 and runs[0].rows_replaced == 0
    assert all(r.snapshot_id is not None for r in runs if r.events_read)
    again = refine_registration(catalog, lake)
    assert again.events_read == 0 and again.snapshot_id is None  # exactly once: nothing new, no commit
    incremental = _table(lake)
    assert incremental.num_rows > 0
    all_mpans = len(set(incremental.column("mpan").to_pylist()))
    assert 0 < runs[1].mpans_recomputed < all_mpans  # a later run recomputes only the MPANs it saw events for
    summary = ensure_table(catalog, lake, REGISTRATION).current_snapshot().summary  # type: ignore[union-attr]
    assert "mhhs.offsets" in summary.additional_properties  # type: ignore[union-attr]

    rebuilt = rebuild_registration(catalog, lake)
    assert rebuilt.rows_written == incremental.num_rows
    assert Counter(map(str, _table(lake).to_pylist())) == Counter(map(str, incremental.to_pylist()))

    by_mpan_role: dict[tuple[str, str], list[dict]] = {}  # type: ignore[type-arg]
    for r in incremental.to_pylist():
        by_mpan_role.setdefault((r["mpan"], r["role"]), []).append(r)
    for (mpan, role), intervals in by_mpan_role.items():
        if role != "SUP":
            continue
        intervals.sort(key=lambda r: r["effective_from"])
        assert sum(1 for r in intervals if r["status"] == "active") == 1, mpan  # one current supplier
        for before, after in itertools.pairwise(intervals):  # contiguous, no gap, no overlap
            assert before["effective_to"] is not None
            assert before["effective_to"] + timedelta(days=1) == after["effective_from"], mpan
