"""Quality over HTTP: runs and certificates for everyone, findings through access, the Data Docs for operators."""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.ipc as ipc
from fastapi.testclient import TestClient

from access.principal import ROLES
from api.settings import ApiSettings
from lakehouse.findings import latest_findings
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from tests.support.claims import bearer


def _findings(client: TestClient, headers: dict[str, str], **params: object) -> pa.Table:
    resp = client.get("/v1/quality/findings", params={"format": "arrow", **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    return ipc.open_stream(io.BytesIO(resp.content)).read_all()


def test_runs_and_certificates_are_listed(client: TestClient, api_settings: ApiSettings) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    runs = client.get("/v1/quality/runs", headers=headers).json()
    assert runs and {r["suite"] for r in runs} == {"events", "consumption", "cross_table", "registration", "kpi"}
    assert all(r["fingerprint"] and "unexpected_by_rule" in r for r in runs)
    certs = client.get("/v1/completeness", params={"topic": "mhhs.consumption.if-021"}, headers=headers).json()
    assert certs and all(c["topic"] == "mhhs.consumption.if-021" for c in certs)
    bad = client.get("/v1/quality/runs", params={"date_from": "2026-03-30", "date_to": "2026-03-01"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_dates"


def test_findings_go_through_access(client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings) -> None:
    everything = latest_findings(Store(api_lake))
    assert everything.num_rows
    admin = _findings(client, bearer(api_settings, "ADMN", "admin"))
    assert admin.num_rows == everything.num_rows
    analyst = _findings(client, bearer(api_settings, "ANLY", "analyst"))
    raw = {m for m in everything["mpan"].to_pylist() if m}
    assert analyst.num_rows == everything.num_rows and not raw & set(analyst["mpan"].to_pylist())  # tokens only
    with_mpan = [r for r in everything.to_pylist() if r["mpan"]]
    if with_mpan:  # a supplier of none of these MPANs sees only the market-wide KPI rows
        nobody = _findings(client, bearer(api_settings, "ZZZZ", "SUP"))
        assert not {m for m in nobody["mpan"].to_pylist() if m}
    only_errors = _findings(client, bearer(api_settings, "ADMN", "admin"), severity="error")
    assert all(s == "error" for s in only_errors["severity"].to_pylist())
    rule5 = _findings(client, bearer(api_settings, "ADMN", "admin"), rule=5)
    assert rule5.num_rows and set(rule5["rule"].to_pylist()) == {5}
    assert (
        client.get("/v1/quality/findings", params={"rule": 13}, headers=bearer(api_settings, "A", "admin")).status_code
        == 422
    )


def test_the_data_docs_are_for_operators_and_audited(client: TestClient, api_settings: ApiSettings) -> None:
    for role in ROLES:
        headers = bearer(api_settings, "X", role, ["audit", "replay", "extract"])
        resp = client.get("/v1/quality/docs/index.html", headers=headers)
        assert resp.status_code == (200 if role in ("auditor", "admin") else 403), (role, resp.text[:200])
    ok = client.get("/v1/quality/docs/index.html", headers=bearer(api_settings, "AUDT", "auditor", ["audit"]))
    assert b"MHHS business rules" in ok.content and ok.headers["content-type"].startswith("text/html")
    missing = client.get(
        "/v1/quality/docs/../../etc/passwd", headers=bearer(api_settings, "AUDT", "auditor", ["audit"])
    )
    assert missing.status_code == 404
    log = client.get("/v1/audit", headers=bearer(api_settings, "AUDT", "auditor", ["audit"])).json()
    page = [r for r in log if r["endpoint"] == "/v1/quality/docs" and r["subject"] == "AUDT"]
    assert page and page[0]["checksum"] == hashlib.sha256(ok.content).hexdigest()  # of the page sent
    assert page[0]["bytes"] == len(ok.content)
