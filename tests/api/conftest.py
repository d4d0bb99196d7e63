"""API fixtures: a lake with a simulated market landed through the real writer, and a TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from lakehouse.catalog import open_catalog
from lakehouse.refine import refine_consumption, refine_registration
from lakehouse.settings import LakehouseSettings
from tests.support.landing import land


@pytest.fixture(scope="module")
def api_lake(tmp_path_factory: pytest.TempPathFactory) -> LakehouseSettings:
    lake = LakehouseSettings(warehouse=str(tmp_path_factory.mktemp("api") / "warehouse"))
    land(lake, 12, 150)
    catalog = open_catalog(lake)
    refine_consumption(catalog, lake)
    refine_registration(catalog, lake)
    return lake


@pytest.fixture(scope="module")
def api_settings() -> ApiSettings:
    return ApiSettings(dev_mode=True, batch_rows=100)


@pytest.fixture(scope="module")
def client(api_lake: LakehouseSettings, api_settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, api_lake)) as c:
        yield c
