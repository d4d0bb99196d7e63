"""The simulator's commands: `mhhs simulate` (to Kafka or a file) and `mhhs publish FILE`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.cli import fail, locate_broker
from ingest.errors import IngestError
from ingest.kafka_client import publish
from ingest.settings import IngestSettings
from ingest.topics import create_topics
from market.errors import MarketError
from market.faults import manifest_document
from market.jsonl import read_records, write_records
from market.simulation import Simulation, SimulationParams

err = Console(stderr=True)


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
    ctx: typer.Context,
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
    try:
        bootstrap = None if out_file is not None else locate_broker(ctx, settings)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    run_simulation(settings, params, bootstrap, out_file, manifest)


def run_simulation(
    settings: IngestSettings,
    params: SimulationParams,
    bootstrap: str | None,
    out_file: Path | None = None,
    manifest: Path | None = None,
) -> Simulation:
    """Run ``params`` to ``out_file`` (JSON Lines) or, when it is None, to Kafka at ``bootstrap``."""
    sim = Simulation(params)
    try:
        if out_file is not None:
            with out_file.open("wb") as fh:
                total = write_records(sim.records(), fh)
        else:
            assert bootstrap is not None, "publishing needs a bootstrap address"
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
    return sim


def publish_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a JSON Lines file written by `mhhs simulate --out`")],
) -> None:
    """Publish a simulator JSON Lines file to Kafka, byte for byte."""
    settings = IngestSettings()
    try:
        records = list(read_records(file))  # validate the whole file before sending anything
        bootstrap = locate_broker(ctx, settings)
        create_topics(settings, bootstrap)
        counts = publish(bootstrap, settings.api_version_tuple(), records)
    except (IngestError, MarketError) as exc:
        raise fail(str(exc)) from exc
    err.print(f"published {sum(counts.values())} records to {len(counts)} topics")
