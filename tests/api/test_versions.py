"""Revisions are kept but counted once: the current version of each half hour, by default and in aggregates."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from lakehouse.catalog import open_catalog
from lakehouse.refine import refine_consumption, refine_registration
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from market.messages import SimRecord, encode
from market.simulation import Simulation, SimulationParams
from tests.support.claims import bearer
from tests.support.landing import GROUP, decoded_batches

DAY = date(2026, 5, 12)


def _revised(rec: SimRecord, n: int) -> SimRecord:
    """A revision of an IF-021: a new transaction sent later, every period doubled plus 1 kWh."""
    doc = orjson.loads(rec.value or b"")
    doc["CommonBlock"]["D0"]["transactionID"] = f"T-REV-{n:06d}"
    doc["CommonBlock"]["S1"]["senderTimestamp"] = f"{DAY.replace(day=DAY.day + 2).isoformat()}T09:00:00Z"
    for p in doc["CustomBlock"]["periods"]:
        p["consumption"] = round(p["consumption"] * 2 + 1, 3)
        p["settlementPeriodQualityIndicator"] = "A"
        p.pop("estimationReasonCode", None)
    return encode(rec.topic, rec.key.decode() if rec.key else None, doc)


@pytest.fixture(scope="module")
def revised_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[LakehouseSettings, set[str]]:
    """One clean day of 60 meter points, then a revision of every AI channel of 10 of them."""
    lake = LakehouseSettings(warehouse=str(tmp_path_factory.mktemp("versions") / "warehouse"))
    sim = Simulation(SimulationParams(mpans=60, days=1, start=DAY, seed=4242, business_fault_rate=0, malformed_rate=0))
    records = list(sim.records())
    if21 = [r for r in records if r.interface == "IF-021" and b'"AI"' in (r.value or b"")]
    revised = [_revised(r, i) for i, r in enumerate(if21[:10])]
    offsets: dict[tuple[str, int], int] = {}
    writer = LandingWriter(lake)
    for events, quarantine, next_offsets in decoded_batches(records, 1, len(records), offsets) + decoded_batches(
        revised, 1, len(revised), offsets
    ):
        writer.commit(events, quarantine, GROUP, next_offsets, {}, max_attempts=5)
    catalog = open_catalog(lake)
    refine_consumption(catalog, lake)
    refine_registration(catalog, lake)
    return lake, {r.key.decode() for r in revised if r.key}


@pytest.fixture(scope="module")
def vclient(revised_lake: tuple[LakehouseSettings, set[str]]) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings(dev_mode=True, aggregate_min_mpans=1), revised_lake[0])) as c:
        yield c


def _arrow(client: TestClient, path: str, **params: object) -> pa.Table:
    headers = bearer(ApiSettings(dev_mode=True), "MDSV", "MDS")
    resp = client.get(path, params={"format": "arrow", **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    return ipc.open_stream(io.BytesIO(resp.content)).read_all()


def test_every_version_is_kept_and_the_latest_is_the_default(
    vclient: TestClient, revised_lake: tuple[LakehouseSettings, set[str]]
) -> None:
    _, revised = revised_lake
    every = _arrow(vclient, "/v1/consumption", versions="all")
    latest = _arrow(vclient, "/v1/consumption")
    assert every.num_rows == latest.num_rows + 10 * 48  # the ten revised days are kept twice
    keys = list(zip(latest["mpan"].to_pylist(), latest["measurement_quantity"].to_pylist(),
                    latest["period_end_utc"].to_pylist(), strict=True))  # fmt: skip
    assert len(keys) == len(set(keys))  # one row per MPAN x quantity x half hour
    rev = [r for r in latest.to_pylist() if r["mpan"] in revised and r["measurement_quantity"] == "AI"]
    assert len(rev) == 10 * 48 and all(r["transaction_id"].startswith("T-REV-") for r in rev)


def test_the_aggregate_counts_a_revised_day_once_with_its_newest_values(
    vclient: TestClient, revised_lake: tuple[LakehouseSettings, set[str]]
) -> None:
    latest = _arrow(vclient, "/v1/consumption").to_pylist()
    expected: dict[tuple[str, str], object] = {}
    for r in latest:  # the oracle: the current rows, summed here
        key = (r["measurement_quantity"], r["mpan"][:2])
        expected[key] = expected.get(key, 0) + r["consumption_kwh"]
    got = {(r["measurement_quantity"], r["distributor"]): r["consumption_kwh"]
           for r in _arrow(vclient, "/v1/consumption/aggregate").to_pylist()}  # fmt: skip
    assert got == expected
    periods = sum(r["periods"] for r in _arrow(vclient, "/v1/consumption/aggregate").to_pylist())
    assert periods == len(latest)
