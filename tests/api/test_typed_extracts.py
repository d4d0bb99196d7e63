"""Typed extracts (/v1/consumption, /v1/registration): formats, masking, entitlements."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from tests.api.conftest import bearer


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
    headers = bearer(api_settings, "TPXX", "third_party", grants=raw[:2])
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
