"""docker-compose.yml stays consistent with the settings the code reads (no Docker needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from api.settings import ApiSettings
from ingest.settings import IngestSettings
from lakehouse.settings import LakehouseSettings

ROOT = Path(__file__).resolve().parent.parent


def _known() -> set[str]:
    names = {f"MHHS_{n.upper()}" for cls in (IngestSettings, LakehouseSettings) for n in cls.model_fields}
    names |= {f"MHHS_API_{n.upper()}" for n in ApiSettings.model_fields}
    return names


def test_every_mhhs_variable_in_compose_is_a_setting() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    used: set[str] = set()
    for service in doc["services"].values():
        env = service.get("environment") or {}
        used |= {k for k in env if k.startswith("MHHS_")}
    used |= {k for k in doc.get("x-mhhs-env", {}) if k.startswith("MHHS_")}
    assert used, "compose wires no MHHS_ settings"
    unknown = used - _known()
    assert not unknown, f"compose sets variables no settings class reads: {sorted(unknown)}"


def test_compose_runs_ingest_and_api_from_the_repository_image() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert doc["services"]["ingest"]["build"] == "." and doc["services"]["api"]["build"] == "."
    assert doc["services"]["ingest"]["command"] == ["ingest"]
    assert doc["services"]["api"]["command"][0] == "serve"
    for needed in ("kafka", "minio", "iceberg-rest"):
        assert needed in doc["services"]
