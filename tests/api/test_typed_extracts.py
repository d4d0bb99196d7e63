"""Typed extracts (/v1/consumption, /v1/registration): formats, masking, entitlements."""

from __future__ import annotations

import io
from datetime import date

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from tests.support.claims import bearer
from tests.support.grants import grant_mpans


def _arrow(client: TestClient, path: str, headers: dict[str, str], **params: object) -> pa.Table:
    resp = client.get(path, params={"format": "arrow", **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    return ipc.open_stream(io.BytesIO(resp.content)).read_all()


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "parquet", "arrow"])
@pytest.mark.parametrize("path", ["/v1/consumption", "/v1/registration"])
def test_analyst_gets_tokens_only(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings, path: str, fmt: str
) -> None:
    raw = {m for m in read_table(api_lake, path.rsplit("/", 1)[1], ["mpan"])["mpan"].to_pylist()}
    resp = client.get(path, params={"format": fmt}, headers=bearer(api_settings, "ANLY", "analyst"))
    assert resp.status_code == 200, resp.text
    body = resp.content
    assert len(body) > 200
    assert not any(m.encode() in body for m in raw)


def test_third_party_sees_granted_mpans_without_half_hourly_values(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    raw = sorted({m for m in read_table(api_lake, "consumption", ["mpan"])["mpan"].to_pylist()})
    headers = bearer(api_settings, "TPXX", "third_party", grants=[grant_mpans(api_lake, "two", "TPXX", raw[:2])])
    rows = _arrow(client, "/v1/consumption", headers)
    assert "consumption_kwh" not in rows.column_names  # aggregate-only: no per-period values
    assert 0 < rows.num_rows <= 48 * 2 * 4  # 2 MPANs, 2 days, AI (+AE)
    assert len(set(rows["mpan"].to_pylist())) <= 2


def test_supplier_registration_rows_are_its_own(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    reg = read_table(api_lake, "registration").to_pylist()
    supplier = next(r["participant"] for r in reg if r["role"] == "SUP")
    own = {r["mpan"] for r in reg if r["role"] == "SUP" and r["participant"] == supplier}
    rows = _arrow(client, "/v1/registration", bearer(api_settings, supplier, "SUP"))
    assert rows.num_rows > 0 and set(rows["mpan"].to_pylist()) <= own
    cons = _arrow(client, "/v1/consumption", bearer(api_settings, supplier, "SUP"))
    assert cons.num_rows > 0 and set(cons["mpan"].to_pylist()) <= own
    assert "consumption_kwh" in cons.column_names


def _oracle(api_lake: LakehouseSettings, keep: object, min_mpans: int) -> dict[tuple, tuple[int, object]]:  # type: ignore[type-arg]
    """Expected (day, quantity, distributor) -> (MPAN count, kWh), from the raw IF-021 events, independently.

    Each half hour counts once: the version of the newest transaction (sender timestamp, then offset).
    """
    from collections import defaultdict
    from decimal import ROUND_HALF_UP, Decimal

    import orjson

    newest: dict[tuple, tuple] = {}  # type: ignore[type-arg]
    events = read_table(api_lake, "events", ["interface_id", "offset", "value"]).to_pylist()
    for e in events:
        if e["interface_id"] != "IF-021":
            continue
        doc = orjson.loads(e["value"])
        mpan, body = doc["CommonBlock"]["M0"]["MPANCore"], doc["CustomBlock"]
        version = (doc["CommonBlock"]["S1"]["senderTimestamp"], e["offset"])
        for p in body["periods"]:
            key = (mpan, body["measurementQuantityID"], p["settlementPeriodEffectiveToDateTime"])
            if key not in newest or newest[key][0] < version:
                newest[key] = (version, body["utcSettlementDate"], p["consumption"])
    mpans: dict[tuple, set[str]] = defaultdict(set)  # type: ignore[type-arg]
    kwh: dict[tuple, Decimal] = defaultdict(Decimal)  # type: ignore[type-arg]
    for (mpan, quantity, _), (_, day, value) in newest.items():
        if not keep(mpan):  # type: ignore[operator]
            continue
        key = (date.fromisoformat(day), quantity, mpan[:2])
        mpans[key].add(mpan)
        kwh[key] += Decimal(str(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return {k: (len(v), kwh[k]) for k, v in mpans.items() if len(v) >= min_mpans}


@pytest.mark.parametrize("role", ["MDS", "LDSO"])
def test_consumption_aggregates_match_the_table_and_name_no_mpan(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings, role: str
) -> None:
    raw = sorted({m for m in read_table(api_lake, "consumption", ["mpan"])["mpan"].to_pylist()})
    subject = raw[0][:2] if role == "LDSO" else "MDSV"
    rows = _arrow(client, "/v1/consumption/aggregate", bearer(api_settings, subject, role))
    assert "mpan" not in rows.column_names
    got = {
        (r["utc_settlement_date"], r["measurement_quantity"], r["distributor"]): (r["mpans"], r["consumption_kwh"])
        for r in rows.to_pylist()
    }
    keep = (lambda m: m.startswith(subject)) if role == "LDSO" else (lambda m: True)
    expected = _oracle(api_lake, keep, api_settings.aggregate_min_mpans)
    assert got == expected and got
    headers = bearer(api_settings, subject, role)
    resp = client.get("/v1/consumption/aggregate", params={"format": "csv"}, headers=headers)
    assert resp.status_code == 200 and not any(m.encode() in resp.content for m in raw)


def test_small_groups_are_suppressed_and_periods_add_up(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    raw = sorted({m for m in read_table(api_lake, "consumption", ["mpan"])["mpan"].to_pylist()})
    few = bearer(api_settings, "TPXX", "third_party", grants=[grant_mpans(api_lake, "two", "TPXX", raw[:2])])
    assert _arrow(client, "/v1/consumption/aggregate", few).num_rows == 0  # 2 MPANs < the minimum group
    headers = bearer(api_settings, "MDSV", "MDS")
    by_day = _arrow(client, "/v1/consumption/aggregate", headers)
    by_period = _arrow(client, "/v1/consumption/aggregate", headers, by="period")
    assert by_period.num_rows > by_day.num_rows
    kept_days = {(r["utc_settlement_date"], r["measurement_quantity"], r["distributor"]) for r in by_day.to_pylist()}
    assert sum(r["periods"] for r in by_day.to_pylist()) >= sum(
        r["periods"]
        for r in by_period.to_pylist()
        if (r["utc_settlement_date"], r["measurement_quantity"], r["distributor"]) in kept_days
    )
    bad = client.get("/v1/consumption/aggregate", params={"by": "week"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
    picked = client.get("/v1/consumption/aggregate", params={"columns": "mpan"}, headers=headers)
    assert picked.status_code == 400 and picked.json()["code"] == "unknown_column"


def test_typed_extract_starts_with_a_small_batch_then_sends_large_ones(
    client: TestClient, api_settings: ApiSettings
) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    resp = client.get("/v1/consumption", params={"format": "arrow", "versions": "all"}, headers=headers)
    assert resp.status_code == 200, resp.text
    sizes = [b.num_rows for b in ipc.open_stream(io.BytesIO(resp.content))][:-1]  # the trailer is empty
    assert sum(sizes) > 2 * api_settings.batch_rows
    assert sizes[0] == api_settings.batch_rows < max(sizes)  # a quick first byte, then few large batches
