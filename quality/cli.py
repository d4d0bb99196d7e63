"""`mhhs quality`: run the suites, read the findings, certify completeness."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date, datetime
from typing import Annotated

import pyarrow as pa
import pyarrow.compute as pc
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lakehouse.errors import LakehouseError
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from quality.errors import QualityError
from quality.rules import RULES, SEVERITIES
from quality.settings import QualitySettings

quality_app = typer.Typer(
    help="Data-quality suites (Great Expectations), findings and completeness.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

DateOpt = Annotated[
    datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="one UTC settlement date (default: all)")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _store() -> Store:
    try:
        return Store(LakehouseSettings())
    except LakehouseError as exc:
        raise _fail(str(exc)) from exc


@quality_app.command("run")
def run(
    day: DateOpt = None,
    since_last: Annotated[
        bool, typer.Option("--since-last", help="only dates whose data changed since the last run")
    ] = False,
    fail_on: Annotated[
        str | None, typer.Option("--fail-on", help="exit 2 when findings of this severity (or worse) exist")
    ] = None,
) -> None:
    """Validate every rule over the store, date by date; write findings and runs; build the Data Docs."""
    if fail_on is not None and fail_on not in SEVERITIES:
        raise _fail(f"--fail-on takes one of {', '.join(SEVERITIES)}, not {fail_on!r}")
    if day is not None and since_last:
        raise _fail("give --date or --since-last, not both")
    summary = run_quality(_store(), QualitySettings(), [day.date()] if day else None, since_last)
    if fail_on is not None:
        worse = SEVERITIES[: SEVERITIES.index(fail_on) + 1]
        if any(summary.get(s, 0) for s in worse):
            raise _fail(f"findings of severity {' or '.join(worse)} exist", code=2)


def run_quality(
    store: Store, settings: QualitySettings, dates: list[date] | None = None, since_last: bool = False
) -> Counter[str]:
    """Run the suites and print what they found; return the findings per severity."""
    from quality.runner import QualityRunner

    runner = QualityRunner(store, settings)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, disable=not sys.stderr.isatty(),
    ) as bar:  # fmt: skip
        task = bar.add_task("validating", total=None)
        try:
            result = runner.run(dates, since_last, on_date=lambda d: bar.update(task, advance=1, description=str(d)))
        except (QualityError, LakehouseError) as exc:
            raise _fail(str(exc)) from exc
    for day in result.empty:
        err.print(f"{day}: no data for this date (nothing to validate)")
    if result.skipped:
        err.print(f"{len(result.skipped)} dates unchanged since the last run: skipped")
    counts: Counter[str] = Counter()
    for d in result.validated:
        for o in d.outcomes:
            counts.update(f["severity"] for f in o.findings)
    err.print(
        f"run {result.run_id}: {len(result.validated)} dates validated; "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITIES)
    )
    if result.validated:
        print_report(store, settings, [d.day for d in result.validated])
    return counts


@quality_app.command("report")
def report(day: DateOpt = None) -> None:
    """A summary per rule and severity of the latest run of each date, and where the Data Docs are."""
    print_report(_store(), QualitySettings(), [day.date()] if day else None)


def print_report(store: Store, settings: QualitySettings, dates: list[date] | None = None) -> None:
    """Print the findings of the latest runs (of ``dates``) per rule and severity."""
    from lakehouse.findings import latest_findings, latest_runs

    runs = latest_runs(store)
    if dates is not None and runs.num_rows:
        runs = runs.filter(pc.is_in(runs["utc_settlement_date"], pa.array(dates, pa.date32())))
    if runs.num_rows == 0:
        err.print("no quality run yet: `mhhs quality run`" if dates is None else "no quality run for that date")
        return
    lo, hi = (min(dates), max(dates)) if dates else (None, None)
    findings = latest_findings(store, lo, hi)
    per_rule = Counter(zip(findings["rule"].to_pylist(), findings["severity"].to_pylist(), strict=True))
    days = sorted(set(runs["utc_settlement_date"].to_pylist()))
    table = Table(title=f"Data quality: {len(days)} dates, {days[0]} to {days[-1]}")
    for col in ("rule", "title", "severity", "findings", "dates affected"):
        table.add_column(col, justify="right" if col in ("rule", "findings", "dates affected") else "left")
    by_day = Counter(
        (r, s, d) for r, s, d in zip(
            findings["rule"].to_pylist(), findings["severity"].to_pylist(),
            findings["utc_settlement_date"].to_pylist(), strict=True,
        )
    )  # fmt: skip
    for number, rule in RULES.items():
        severities = sorted({s for r, s in per_rule if r == number} or {rule.severity}, key=SEVERITIES.index)
        for severity in severities:
            n = per_rule.get((number, severity), 0)
            affected = len({d for r, s, d in by_day if r == number and s == severity})
            style = "red" if n and severity == "error" else ("yellow" if n and severity == "warning" else None)
            table.add_row(str(number), rule.title, severity, f"{n:,}", str(affected), style=style)
    out.print(table)
    index = settings.docs_dir / "index.html"
    out.print(f"Data Docs: {index.resolve()}" if index.exists() else "Data Docs: not built yet (`mhhs quality run`)")


@quality_app.command("certify")
def certify_command(day: DateOpt = None) -> None:
    """Completeness per topic and date: offset gaps, missing IF-021 channels, late arrivals."""
    from quality.completeness import certify

    try:
        certificates = certify(_store(), QualitySettings(), [day.date()] if day else None)
    except LakehouseError as exc:
        raise _fail(str(exc)) from exc
    if not certificates:
        err.print("no events in the store yet: nothing to certify")
        return
    table = Table(title="Completeness certificates")
    for col in ("date", "topic", "events", "quarantined", "gap offsets", "due", "missing", "late", "complete"):
        table.add_column(col, justify="left" if col in ("date", "topic") else "right", no_wrap=col in ("date", "topic"))
    for c in certificates:
        if not c.events and not c.gaps and not c.missing:
            continue
        table.add_row(
            str(c.day), c.topic.removeprefix("mhhs."), f"{c.events:,}", f"{c.quarantined:,}", f"{c.gap_offsets:,}",
            "-" if c.expected is None else f"{c.expected:,}", f"{len(c.missing):,}", f"{c.late:,}",
            "yes" if c.complete else "[red]no[/]",
        )  # fmt: skip
    out.print(table)
