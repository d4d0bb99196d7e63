"""API fixtures: a lake with a simulated market landed through the real writer, and a TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from lakehouse.catalog import open_catalog
from lakehouse.refine import refine_consumption, refine_registration
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from quality.completeness import certify
from quality.runner import QualityRunner
from quality.settings import QualitySettings
from tests.support.landing import land


@pytest.fixture(scope="module")
def api_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api")


@pytest.fixture(scope="module")
def api_lake(api_root: Path) -> LakehouseSettings:
    """A simulated market landed, refined, validated by the quality suites and certified."""
    lake = LakehouseSettings(warehouse=str(api_root / "warehouse"))
    land(lake, 12, 150)
    catalog = open_catalog(lake)
    refine_consumption(catalog, lake)
    refine_registration(catalog, lake)
    quality = QualitySettings(docs_dir=api_root / "docs")
    QualityRunner(Store(lake), quality).run()
    certify(Store(lake), quality)
    return lake


@pytest.fixture(scope="module")
def api_settings(api_root: Path) -> ApiSettings:
    return ApiSettings(
        dev_mode=True, batch_rows=100, quality_docs_dir=api_root / "docs", audit_journal_dir=api_root / "journal"
    )


@pytest.fixture(scope="module")
def client(api_lake: LakehouseSettings, api_settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, api_lake)) as c:
        yield c
