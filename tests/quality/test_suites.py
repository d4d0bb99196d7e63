"""The suites against the simulator's ground truth: every injected fault found by its rule, a clean market clean."""

from __future__ import annotations

import html
import shutil
import subprocess
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from lakehouse.findings import latest_findings
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import QUALITY_FINDINGS, QUALITY_RUNS
from market.faults import BUSINESS_FAULTS
from market.simulation import Simulation
from quality.datadocs import external_references
from quality.errors import QualityError
from quality.rules import RULES
from quality.runner import QualityRunner
from quality.settings import QualitySettings
from tests.support.markets import land_records, simulated

START = date(2026, 3, 24)
Faulty = tuple[Simulation, LakehouseSettings, QualitySettings]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, LakehouseSettings, QualitySettings]:
    """Ten days of 400 meter points with 3% business faults (every kind), validated once."""
    root = tmp_path_factory.mktemp("faulty")
    lake = LakehouseSettings(warehouse=str(root / "warehouse"))
    sim, records = simulated(400, 10, START, 202, 0.03)
    land_records(lake, records)
    settings = QualitySettings(docs_dir=root / "docs")
    QualityRunner(Store(lake), settings).run()
    return sim, lake, settings


def test_every_injected_business_fault_is_found_by_the_rule_the_manifest_names(
    faulty: Faulty,
) -> None:
    sim, lake, _ = faulty
    findings = latest_findings(Store(lake))
    found = set(zip(findings["rule"].to_pylist(), findings["transaction_id"].to_pylist(), strict=True))
    faults = [f for f in sim.faults if f.kind == "business"]
    assert {f.fault for f in faults} == set(BUSINESS_FAULTS)  # every kind was injected
    recall = Counter(f.fault for f in faults if (f.rule, f.transaction_id) in found)
    assert recall == Counter(f.fault for f in faults), "recall per fault kind must be 100%"


def test_every_finding_names_its_entity_and_severity(
    faulty: Faulty,
) -> None:
    _, lake, _ = faulty
    rows = latest_findings(Store(lake)).to_pylist()
    assert rows
    for r in rows:
        assert r["severity"] in ("error", "warning", "info", "kpi") and r["check"] and r["expected"]
        assert r["utc_settlement_date"] and r["participant"]
        if r["rule"] != 5:  # KPIs are per data service and supplier, not per MPAN
            assert r["mpan"] and r["transaction_id"], r


def test_a_second_run_with_nothing_new_writes_nothing(
    faulty: Faulty,
) -> None:
    _, lake, settings = faulty
    before = (read_table(lake, QUALITY_RUNS).num_rows, read_table(lake, QUALITY_FINDINGS).num_rows)
    again = QualityRunner(Store(lake), settings, docs=False).run(since_last=True)
    assert not again.validated and again.skipped
    assert (read_table(lake, QUALITY_RUNS).num_rows, read_table(lake, QUALITY_FINDINGS).num_rows) == before


def test_a_date_without_data_says_so(faulty: Faulty) -> None:
    _, lake, settings = faulty
    result = QualityRunner(Store(lake), settings, docs=False).run(dates=[date(2030, 1, 1)])
    assert result.empty == [date(2030, 1, 1)] and not result.validated


def test_the_data_docs_work_offline(faulty: Faulty) -> None:
    _, _, settings = faulty
    index = settings.docs_dir / "index.html"
    assert index.is_file()
    assert external_references(settings.docs_dir) == []
    assert (
        settings.docs_dir / "static" / "vendor" / "bootstrap@4.3.1" / "dist" / "css" / "bootstrap.min.css"
    ).is_file()


def test_a_clean_market_has_no_error_or_warning_finding(tmp_path: Path) -> None:
    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    _, records = simulated(300, 9, START, 303, 0.0)
    land_records(lake, records)
    run = QualityRunner(Store(lake), QualitySettings(docs_dir=tmp_path / "docs"), docs=False).run()
    assert run.validated
    assert run.findings("error") == 0 and run.findings("warning") == 0
    assert run.findings("kpi") > 0  # estimates exist: the KPI has something to say


def test_without_typed_tables_it_says_to_refine(tmp_path: Path) -> None:
    from lakehouse.writer import LandingWriter
    from tests.support.landing import GROUP, decoded_batches

    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    _, records = simulated(20, 1, START, 404, 0.0)
    writer = LandingWriter(lake)
    for events, quarantine, offsets in decoded_batches(records, 1, len(records)):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)
    with pytest.raises(QualityError, match="mhhs lake refine"):
        QualityRunner(Store(lake), QualitySettings(docs_dir=tmp_path / "docs")).run()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_data_docs_index_renders_in_a_real_browser_with_every_rule(faulty: Faulty, tmp_path: Path) -> None:
    _, _, settings = faulty
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}"]  # fmt: skip
    index = (settings.docs_dir / "index.html").resolve().as_uri()
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", index], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "Expectation Suites" in dom  # GX's own page, rendered by its (vendored) scripts
    for rule in RULES.values():
        assert html.escape(rule.title, quote=False) in dom, rule
    png = tmp_path / "index.png"
    subprocess.run(["chromium", *flags, "--window-size=1400,1000", f"--screenshot={png}", index],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert png.stat().st_size > 20_000  # a page was painted, not a blank


def test_a_run_keeps_its_snapshots_while_ingest_and_expiry_go_on(tmp_path: Path) -> None:
    """Ingest, compaction, a one-snapshot ceiling and orphan deletion during a run: it still reads
    the files of the snapshots it pinned."""
    from datetime import timedelta

    from lakehouse.maintenance import compact_table, delete_orphans, expire_old_snapshots
    from lakehouse.tables import CONSUMPTION, EVENTS, REGISTRATION

    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    _, records = simulated(60, 3, START, 505, 0.0)
    consumption = [i for i, r in enumerate(records) if r.interface == "IF-021"]
    half = consumption[len(consumption) // 2]
    land_records(lake, records[:half])
    store = Store(lake)
    pinned = store.resolve(EVENTS)
    ceiling = lake.model_copy(update={"max_snapshots": 1, "keep_last_snapshots": 1})
    expired: list[int] = []

    def meanwhile(day: date) -> None:
        if expired:
            return
        assert any(r.startswith("quality-") for r in store.table(EVENTS).metadata.refs)
        land_records(lake, records[half:], 2, earlier=records[:half])
        for name in (EVENTS, CONSUMPTION, REGISTRATION):
            compact_table(store.table(name))
            expired.append(expire_old_snapshots(store.table(name), ceiling))
            delete_orphans(store.table(name), ceiling, timedelta(0))

    runner = QualityRunner(store, QualitySettings(docs_dir=tmp_path / "docs"), docs=False)
    undisturbed = runner.run()
    run = runner.run(on_date=meanwhile)
    assert sum(expired) > 0 and len(run.validated) >= 2

    def evaluated(r: object) -> dict[tuple[date, str], int]:
        return {(d.day, o.suite): o.evaluated for d in r.validated for o in d.outcomes}  # type: ignore[attr-defined]

    assert evaluated(run) == evaluated(undisturbed)  # the same rows, not an expired snapshot's nothing
    runs = read_table(lake, QUALITY_RUNS).to_pylist()
    assert {r["events_snapshot_id"] for r in runs} == {pinned}
    for name in (EVENTS, CONSUMPTION, REGISTRATION):  # the run's tags are gone, and the snapshots they held
        table = store.table(name)
        table.refresh()
        assert not [r for r in table.metadata.refs if r.startswith("quality-")]
    assert expire_old_snapshots(store.table(EVENTS), ceiling) > 0
