"""Every analyst notebook runs, top to bottom, against a small simulated store, and draws its charts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import jupytext
import nbformat
import orjson
import pytest
import uvicorn
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from api.app import create_app
from api.settings import ApiSettings
from devstack.kafka import start_local_broker, stop_local_broker
from devstack.settings import DevstackSettings
from ingest.kafka_client import publish
from ingest.service import IngestWorker
from ingest.settings import IngestSettings
from ingest.topics import create_topics
from lakehouse.catalog import open_catalog
from lakehouse.refine import refine_consumption, refine_registration
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from market.messages import SimRecord
from market.simulation import Simulation, SimulationParams
from quality.completeness import certify
from quality.runner import QualityRunner
from quality.settings import QualitySettings
from tests.support.kafka import free_port

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["getting_started", "settlement_kpis", "time_travel", "consumer_recovery", "data_quality"]


def _serve(api: ApiSettings, lake: LakehouseSettings) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(api, lake), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def store_env(tmp_path_factory: pytest.TempPathFactory, broker_settings: IngestSettings) -> Iterator[dict[str, str]]:
    """A store built the way production builds it: simulate -> Kafka -> ingest -> refine -> quality.

    Two rounds of ingest (so time travel has a before and after), then more records that only
    Kafka has (so the consumer recovery resumes on the live broker), and the API over HTTP.
    """
    root = tmp_path_factory.mktemp("notebooks")
    own = None if broker_settings.kafka_bootstrap else DevstackSettings(kafka_data_dir=root / "kafka").broker()
    bootstrap = broker_settings.kafka_bootstrap or start_local_broker(own).bootstrap  # type: ignore[arg-type]
    lake = LakehouseSettings(warehouse=str(root / "warehouse"))
    ingest = IngestSettings(kafka_bootstrap=bootstrap, group_id="notebooks", session_timeout_ms=6000)
    quality = QualitySettings(docs_dir=root / "data_docs")
    create_topics(ingest, bootstrap)
    params = SimulationParams(mpans=200, days=4, start=date(2026, 3, 27), seed=23, business_fault_rate=0.01,
                              malformed_rate=0.003)  # fmt: skip
    rounds = _two_rounds(list(Simulation(params).records()), params.start + timedelta(days=1))
    try:
        for part in rounds:
            publish(bootstrap, ingest.api_version_tuple(), (r.as_out() for r in part))
            IngestWorker(ingest, lake, bootstrap).run(until_idle=3)
            catalog = open_catalog(lake)
            refine_consumption(catalog, lake)
            refine_registration(catalog, lake)
        store = Store(lake)
        QualityRunner(store, quality).run()
        certify(store, quality)
        later = Simulation(SimulationParams(mpans=15, days=1, start=date(2026, 3, 31), seed=24, malformed_rate=0.0))
        publish(bootstrap, ingest.api_version_tuple(), (r.as_out() for r in later.records()))
        server, url = _serve(ApiSettings(dev_mode=True), lake)
        yield {
            "MHHS_WAREHOUSE": lake.warehouse,
            "MHHS_KAFKA_BOOTSTRAP": bootstrap,
            "MHHS_NOTEBOOK_API_URL": url,
            "MHHS_API_DEV_MODE": "true",
            "MHHS_QUALITY_DOCS_DIR": str(quality.docs_dir),
        }
        server.should_exit = True
    finally:
        if own is not None:
            stop_local_broker(own)


def _two_rounds(records: list[SimRecord], last_early: date) -> tuple[list[SimRecord], list[SimRecord]]:
    """First everything but IF-021s after ``last_early`` and revisions; then those (late data, revisions)."""
    early: list[SimRecord] = []
    late: list[SimRecord] = []
    seen: set[tuple[object, ...]] = set()
    for rec in records:
        if rec.topic != "mhhs.consumption.if-021":
            early.append(rec)
            continue
        try:
            block = orjson.loads(rec.value or b"")["CustomBlock"]
            key = (rec.key, block["measurementQuantityID"], block["periods"][0]["settlementPeriodEffectiveToDateTime"])
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            early.append(rec)  # malformed: quarantined in the first round
            continue
        first_seen = key not in seen
        seen.add(key)
        (early if first_seen and str(key[2])[:10] <= last_early.isoformat() else late).append(rec)
    return early, late


def _execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    notebook = jupytext.read(path)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return notebook


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_draws_its_charts(
    name: str, store_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in store_env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits the environment: the same MHHS_* settings
    notebook = _execute(NOTEBOOKS / f"{name}.py", tmp_path)
    nbformat.write(notebook, tmp_path / f"{name}.ipynb")  # with its outputs, to look at
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    charts = [o for o in outputs if "image/png" in o.get("data", {})]
    assert charts, f"{name} drew no chart"
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr" and "Traceback" in o.text]


def test_every_notebook_is_tested_and_linked_from_the_readme() -> None:
    on_disk = {p.stem for p in NOTEBOOKS.glob("*.py") if p.read_text().startswith("# ---\n# jupyter:")}
    assert on_disk == set(NAMES)
    readme = (NOTEBOOKS.parent / "README.md").read_text()
    assert all(f"notebooks/{n}.py" in readme for n in NAMES)


def test_a_notebook_calling_a_function_that_is_gone_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text(
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
        "#     name: python3\n# ---\n\n# %%\nfrom lakehouse.frames import scan_renamed_away\n"
    )
    with pytest.raises(CellExecutionError, match="scan_renamed_away"):
        _execute(broken, tmp_path)
