"""docker-compose.yml stays consistent with the settings the code reads (no Docker needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from api.settings import ApiSettings
from deliveries.settings import DeliveriesSettings
from devstack.iceberg_rest import ICEBERG_REST_VERSION
from devstack.settings import DevstackSettings
from ingest.settings import IngestSettings
from lakehouse.settings import LakehouseSettings

ROOT = Path(__file__).resolve().parent.parent


def _known() -> set[str]:
    classes = (IngestSettings, LakehouseSettings, DevstackSettings)
    names = {f"MHHS_{n.upper()}" for cls in classes for n in cls.model_fields}
    names |= {f"MHHS_API_{n.upper()}" for n in ApiSettings.model_fields}
    names |= {f"MHHS_DELIVERIES_{n.upper()}" for n in DeliveriesSettings.model_fields}
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


def test_compose_scheduler_signs_with_the_keys_the_api_publishes() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    scheduler, api = doc["services"]["scheduler"], doc["services"]["api"]
    assert scheduler["build"] == "." and scheduler["command"] == ["scheduler"]
    assert scheduler["environment"]["MHHS_DELIVERIES_JWKS_FILE"] == api["environment"]["MHHS_API_DELIVERIES_JWKS_FILE"]
    assert scheduler["environment"]["MHHS_API_MASK_SECRET"] == api["environment"]["MHHS_API_MASK_SECRET"]
    keys = {v.split(":")[0] for v in scheduler["volumes"]} & {v.split(":")[0] for v in api["volumes"]}
    assert keys and all(k in doc["volumes"] for k in keys)


def test_every_image_is_pinned_and_kafka_is_the_local_broker_release() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    images = {name: s["image"] for name, s in doc["services"].items() if "image" in s}
    assert images, "compose runs no images"
    for name, image in images.items():
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} is not pinned"
    assert images["kafka"] == f"apache/kafka:{DevstackSettings().kafka_version}"
    assert images["iceberg-rest"] == f"apache/iceberg-rest-fixture:{ICEBERG_REST_VERSION}"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_accepts_the_file_without_an_engine() -> None:
    proc = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
