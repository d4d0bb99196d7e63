"""Ingest's commands: the local broker, the simulator, publishing files and topic summaries."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.broker import end_offsets, publish
from ingest.errors import IngestError
from ingest.localbroker import read_local_broker, start_local_broker, stop_local_broker
from ingest.settings import IngestSettings
from ingest.simulate.faults import manifest_document
from ingest.simulate.generate import Simulation, SimulationParams
from ingest.simulate.jsonl import read_records, write_records
from ingest.topics import create_topics, resolve_bootstrap
from lakehouse.contract.topics import load_topic_catalogue

err = Console(stderr=True)
out = Console()

broker_app = typer.Typer(help="Run the local single-node Apache Kafka broker (KRaft).", no_args_is_help=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` to stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@broker_app.command("up")
def broker_up() -> None:
    """Fetch (once), format and start the local broker; print its bootstrap address."""
    settings = IngestSettings()
    if settings.kafka_bootstrap:
        out.print(settings.kafka_bootstrap)
        err.print("MHHS_KAFKA_BOOTSTRAP is set: using that broker, starting none")
        return
    try:
        broker = start_local_broker(settings)
        create_topics(settings, broker.bootstrap)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    out.print(broker.bootstrap)
    err.print(f"broker pid {broker.pid}, log {broker.log_file}")


@broker_app.command("down")
def broker_down() -> None:
    """Stop the local broker (its data stays, so `up` resumes it)."""
    stopped = stop_local_broker(IngestSettings())
    err.print("broker stopped" if stopped else "no local broker was running")


@broker_app.command("status")
def broker_status() -> None:
    """Print the local broker's address, or exit 1 when none is running."""
    running = read_local_broker(IngestSettings())
    if running is None:
        raise fail("no local broker is running")
    out.print(running.bootstrap)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not sys.stderr.isatty(),
    )


def simulate(
    mpans: Annotated[int, typer.Option(min=1, help="number of meter points")] = 1000,
    days: Annotated[int, typer.Option(min=1, help="UTC settlement days to simulate")] = 2,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="first UTC settlement date")] = datetime(
        2026, 1, 1
    ),
    seed: Annotated[int, typer.Option(min=0, help="random seed: same seed, same records")] = 7,
    out_file: Annotated[Path | None, typer.Option("--out", help="write JSON Lines here, not Kafka")] = None,
    manifest: Annotated[Path | None, typer.Option(help="write the ground-truth fault manifest")] = None,
    business_fault_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.005,
    malformed_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.002,
) -> None:
    """Simulate a deterministic MHHS market and publish it to Kafka (or write it to --out)."""
    settings = IngestSettings()
    params = SimulationParams(
        mpans=mpans,
        days=days,
        start=start.date(),
        seed=seed,
        business_fault_rate=business_fault_rate,
        malformed_rate=malformed_rate,
        max_message_bytes=settings.max_message_bytes,
    )
    sim = Simulation(params)
    try:
        if out_file is not None:
            with out_file.open("wb") as fh:
                total = write_records(sim.records(), fh)
        else:
            bootstrap = resolve_bootstrap(settings)
            create_topics(settings, bootstrap)
            with _progress() as bar:
                task = bar.add_task("publishing", total=None)
                counts = publish(
                    bootstrap,
                    settings.api_version_tuple(),
                    (r.as_out() for r in sim.records()),
                    on_progress=lambda n: bar.update(task, completed=n),
                )
            total = sum(counts.values())
    except OSError as exc:
        raise fail(f"cannot write: {exc}") from exc
    except IngestError as exc:
        raise fail(str(exc)) from exc
    if manifest is not None:
        try:
            manifest.write_bytes(manifest_document(params.to_json(), sim.faults, sim.counts))
        except OSError as exc:
            raise fail(f"cannot write the manifest: {exc}") from exc
    err.print(f"{total} records, {len(sim.faults)} injected faults" + (f" -> {out_file}" if out_file else ""))


def publish_file(
    file: Annotated[Path, typer.Argument(help="a JSON Lines file written by `mhhs simulate --out`")],
) -> None:
    """Publish a simulator JSON Lines file to Kafka, byte for byte."""
    settings = IngestSettings()
    try:
        records = list(read_records(file))  # validate the whole file before sending anything
        bootstrap = resolve_bootstrap(settings)
        create_topics(settings, bootstrap)
        counts = publish(bootstrap, settings.api_version_tuple(), records)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    err.print(f"published {sum(counts.values())} records to {len(counts)} topics")


def topics_summary(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Per-topic record counts on the broker (log-end offsets)."""
    settings = IngestSettings()
    catalogue = load_topic_catalogue()
    try:
        bootstrap = resolve_bootstrap(settings, start=False)
        ends = end_offsets(bootstrap, settings.api_version_tuple(), catalogue.names)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    rows: list[dict[str, str | int]] = []
    for spec in catalogue.topics:
        parts = {p: n for (t, p), n in ends.items() if t == spec.name}
        rows.append(
            {
                "topic": spec.name,
                "interface": spec.interface,
                "partitions": len(parts),
                "records": sum(parts.values()),
            }
        )
    if as_json:
        out.print_json(orjson.dumps(rows).decode())
        return
    table = Table(title=f"Topics on {bootstrap}")
    for col in ("topic", "interface", "partitions", "records"):
        table.add_column(col, justify="right" if col in ("partitions", "records") else "left")
    for r in rows:
        table.add_row(str(r["topic"]), str(r["interface"]), str(r["partitions"]), f"{r['records']:,}")
    out.print(table)


def ingest_command(
    until_idle: Annotated[
        float | None, typer.Option(min=0.1, help="exit once every topic has been quiet this many seconds")
    ] = None,
    group: Annotated[str | None, typer.Option(help="consumer group (default MHHS_GROUP_ID)")] = None,
    worker_id: Annotated[str | None, typer.Option(help="this worker's name (default host-pid)")] = None,
) -> None:
    """Land every MHHS broker event in Iceberg exactly once; quarantine the malformed."""
    from ingest.service import IngestWorker, install_signal_handlers
    from lakehouse.errors import LakehouseError
    from lakehouse.settings import LakehouseSettings

    updates: dict[str, object] = {}
    if group:
        updates["group_id"] = group
    if worker_id:
        updates["worker_id"] = worker_id
    settings = IngestSettings().model_copy(update=updates)
    try:
        lake = LakehouseSettings()
        bootstrap = resolve_bootstrap(settings)
        create_topics(settings, bootstrap)
        worker = IngestWorker(settings, lake, bootstrap)
    except (IngestError, LakehouseError) as exc:
        raise fail(str(exc)) from exc
    install_signal_handlers(worker)
    if settings.metrics_port:
        worker.metrics.serve(settings.metrics_port)
    if sys.stderr.isatty():
        from rich.live import Live

        with Live(console=err, refresh_per_second=4) as live:

            def tick(stats: object) -> None:
                live.update(_stats_table(worker))

            stats = worker.run(until_idle=until_idle, on_tick=tick)
    else:
        stats = worker.run(until_idle=until_idle)
    err.print(
        f"ingest {worker.worker_id}: consumed {stats.consumed}, landed {stats.landed}, "
        f"quarantined {stats.quarantined}, fenced {stats.fenced}, commits {stats.commits}"
    )


def _stats_table(worker: object) -> Table:
    from ingest.service import IngestWorker

    assert isinstance(worker, IngestWorker)
    st = worker.stats
    table = Table(title=f"mhhs ingest - {worker.worker_id}")
    for col in ("consumed", "landed", "quarantined", "fenced", "commits", "last commit s"):
        table.add_column(col, justify="right")
    last = f"{st.commit_seconds[-1]:.3f}" if st.commit_seconds else "-"
    table.add_row(*(f"{v:,}" for v in (st.consumed, st.landed, st.quarantined, st.fenced, st.commits)), last)
    return table
