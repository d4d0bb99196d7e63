"""`mhhs scheduler`: deliveries, refine, quality and maintenance on time, one active scheduler at a time."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console

from deliveries.cli import runner
from deliveries.scheduler import FailureBackoff, Job, Lease, run_forever, run_jobs_once
from deliveries.settings import DeliveriesSettings
from lakehouse.catalog import open_catalog
from lakehouse.maintenance import compact_table, expire_table
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import CONSUMPTION, EVENTS, TABLES
from quality.settings import QualitySettings

out = Console()
err = Console(stderr=True)


def standard_jobs(
    lake: LakehouseSettings, refine_every: float, quality_every: float, maintenance_cron: str
) -> list[Job]:
    """The product's recurring commands, each idempotent."""

    backoff = FailureBackoff()

    def deliver() -> str:
        now = datetime.now(UTC)
        outcomes = runner().run(due=True, held_back=backoff.held_back(now))
        backoff.record(outcomes, datetime.now(UTC))  # the next try counts from the run's end
        made = [o for o in outcomes if o.status == "made"]
        failed = [o.grant_id for o in outcomes if o.status.startswith("failed")]
        held = [o.grant_id for o in outcomes if o.status.startswith("held back")]
        return (
            f"{len(made)} deliveries made"
            + (f", failed: {', '.join(failed)}" if failed else "")
            + (f", held back after failing: {', '.join(held)}" if held else "")
        )

    def refine() -> str:
        from lakehouse.refine import refine_consumption, refine_registration  # DuckDB: only if refining

        catalog = open_catalog(lake)
        consumption = refine_consumption(catalog, lake)
        registration = refine_registration(catalog, lake)
        return f"+{consumption.rows} consumption rows, {registration.mpans_recomputed} MPANs recomputed"

    def quality() -> str:
        from quality.runner import QualityRunner  # Great Expectations (~170 MB): not in every `mhhs` process

        run = QualityRunner(Store(lake), QualitySettings()).run(since_last=True)
        return f"{len(run.validated)} dates validated, {len(run.skipped)} unchanged"

    def maintain() -> str:
        store = Store(lake)
        expired = sum(expire_table(store.table(n), lake, timedelta(hours=1)).snapshots_expired for n in TABLES)
        report = compact_table(store.table(EVENTS))
        typed = compact_table(store.table(CONSUMPTION))  # refine writes in arrival order: this sorts
        return (
            f"{expired} snapshots expired; events files {report.files_before} -> {report.files_after}; "
            f"consumption files {typed.files_before} -> {typed.files_after}"
        )

    return [
        Job("deliveries", deliver, cron="* * * * *"),
        Job("refine", refine, every_seconds=refine_every),
        Job("quality", quality, every_seconds=quality_every),
        Job("maintenance", maintain, cron=maintenance_cron),
    ]


def scheduler(
    once: Annotated[bool, typer.Option("--once", help="run every job now (if holding the lease) and exit")] = False,
    refine_minutes: Annotated[float, typer.Option(min=0.1, help="refine every this many minutes")] = 5.0,
    quality_minutes: Annotated[float, typer.Option(min=0.1, help="run the quality suites (since last)")] = 15.0,
    maintenance_cron: Annotated[str, typer.Option(help="when to expire and compact (cron, UTC)")] = "30 2 * * *",
) -> None:
    """Run deliveries (each grant's schedule), refine, quality and maintenance; one active scheduler at a time."""
    lake = LakehouseSettings()
    lease = Lease(Store(lake), DeliveriesSettings().lease_seconds)
    jobs = standard_jobs(lake, refine_minutes * 60, quality_minutes * 60, maintenance_cron)
    if once:
        for name, result in run_jobs_once(jobs, lease).items():
            out.print(f"{name}: {result}")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    err.print(f"scheduler {lease.holder}: {len(jobs)} jobs; SIGTERM stops it")
    run_forever(jobs, lease, stop)
