"""Property-based requests generated from the OpenAPI document: the API never answers 5xx."""

from __future__ import annotations

import tempfile

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.settings import ApiSettings
from lakehouse.catalog import open_catalog
from lakehouse.refine import refine_consumption, refine_registration
from lakehouse.settings import LakehouseSettings
from tests.support.claims import bearer
from tests.support.landing import land


def _app():  # type: ignore[no-untyped-def]
    """The API over a landed market whose typed tables are refined (so extracts have rows to stream)."""
    lake = LakehouseSettings(warehouse=tempfile.mkdtemp(prefix="mhhs-schemathesis-") + "/warehouse")
    land(lake, 12, 150)
    catalog = open_catalog(lake)
    refine_consumption(catalog, lake)
    refine_registration(catalog, lake)
    return create_app(API, lake)


API = ApiSettings(dev_mode=True)
APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _check(case, subject: str, role: str) -> None:  # type: ignore[no-untyped-def]
    case.headers = {**(case.headers or {}), **bearer(API, subject, role, ["replay", "extract", "audit"])}
    response = case.call()
    assert response.status_code < 500, (case.path, case.query, response.text[:500])
    if response.status_code >= 400:
        ctype = response.headers.get("content-type") or response.headers.get("Content-Type") or [""]
        ctype = ctype[0] if isinstance(ctype, list) else ctype
        assert ctype.startswith("application/problem+json"), (case.path, response.status_code, ctype)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:  # type: ignore[no-untyped-def]
    _check(case, "ADMN", "admin")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_for_a_masked_entitled_role(case) -> None:  # type: ignore[no-untyped-def]
    _check(case, "12", "LDSO")  # entitled by distributor, half-hourly values per premises, consent removed


def test_openapi_declares_problem_json_on_every_route() -> None:
    doc = TestClient(APP).get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "422" in op["responses"] and "500" in op["responses"], (path, method)
            assert "application/problem+json" in op["responses"]["500"]["content"], (path, method)
