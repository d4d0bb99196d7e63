"""`mhhs lake`: snapshots, tags, retention, compaction and SQL over the lakehouse."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table as RichTable

from lakehouse.catalog import open_catalog
from lakehouse.errors import LakehouseError
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import TABLES, ensure_table

lake_app = typer.Typer(
    help="Snapshots, tags, retention, compaction and SQL over the Iceberg tables.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

TableOpt = Annotated[str, typer.Option("--table", help=f"one of: {', '.join(TABLES)}")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)


def _table(name: str):  # type: ignore[no-untyped-def]
    if name not in TABLES:
        raise _fail(f"unknown table {name!r}; choose one of {', '.join(TABLES)}")
    settings = LakehouseSettings()
    try:
        return settings, ensure_table(open_catalog(settings), settings, name)
    except LakehouseError as exc:
        raise _fail(str(exc)) from exc


@lake_app.command("snapshots")
def snapshots(table: TableOpt = "events", as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the retained snapshots with their row counts, tags and recorded Kafka offsets."""
    from lakehouse.history import list_snapshots

    _, t = _table(table)
    snaps = list_snapshots(t)
    if as_json:
        docs = [s.to_json() for s in snaps]
        out.print_json(orjson.dumps(docs).decode())
        return
    view = RichTable(title=f"{table}: {len(snaps)} snapshots")
    for col in ("snapshot id", "committed at (UTC)", "operation", "added", "total", "tags"):
        view.add_column(col)
    for s in snaps:
        view.add_row(
            str(s.snapshot_id),
            s.committed_at.strftime("%Y-%m-%d %H:%M:%S"),
            s.operation,
            f"{s.added_records:,}",
            f"{s.total_records:,}",
            ", ".join(s.tags),
        )
    out.print(view)


@lake_app.command("tag")
def tag(
    name: Annotated[str, typer.Argument(help="tag name, e.g. settlement-run-2026-03-28")],
    table: TableOpt = "events",
    snapshot: Annotated[int | None, typer.Option(help="snapshot ID (default: current)")] = None,
) -> None:
    """Pin a snapshot under a tag, so retention never removes it."""
    from lakehouse.history import create_tag

    _, t = _table(table)
    try:
        pinned = create_tag(t, name, snapshot)
    except LakehouseError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"{table}: tag {name} -> snapshot {pinned}")


@lake_app.command("expire")
def expire(
    orphan_min_age_minutes: Annotated[
        float, typer.Option(min=0.0, help="never delete unreferenced files younger than this")
    ] = 60.0,
) -> None:
    """Expire snapshots past retention (keeping tags and the newest) and delete unreferenced files."""
    from lakehouse.maintenance import expire_table

    for name in TABLES:
        settings, t = _table(name)
        if t.current_snapshot() is None:
            continue
        report = expire_table(t, settings, timedelta(minutes=orphan_min_age_minutes))
        out.print(
            f"{name}: expired {report.snapshots_expired} snapshots, deleted {report.files_deleted} files "
            f"({report.bytes_deleted:,} bytes), kept {report.files_kept} files"
        )


@lake_app.command("compact")
def compact(
    table: TableOpt = "events",
    min_files: Annotated[int, typer.Option(min=2, help="rewrite partitions with at least this many files")] = 2,
) -> None:
    """Rewrite small files of each partition into one sorted file, changing no row."""
    from lakehouse.maintenance import compact_table, whole_table_checksum

    _, t = _table(table)
    before = whole_table_checksum(t)
    try:
        report = compact_table(t, min_files=min_files)
    except LakehouseError as exc:
        raise _fail(str(exc)) from exc
    after = whole_table_checksum(t)
    out.print(
        f"{table}: rewrote {report.partitions_rewritten} partitions, files {report.files_before} -> "
        f"{report.files_after}; rows {before[0]:,} -> {after[0]:,}; checksum {before[1]} -> {after[1]}"
    )
    if before != after:
        raise _fail("row count or checksum changed: investigate before trusting this table")


@lake_app.command("sql")
def sql(query: Annotated[str, typer.Argument(help="DuckDB SQL over views named after the tables")]) -> None:
    """Run DuckDB SQL over the current snapshot of every table (events, quarantine, ..., consumption_latest)."""
    import duckdb

    from lakehouse.duck import lake_connection

    conn = lake_connection(LakehouseSettings())
    try:
        result = conn.sql(query)
    except duckdb.Error as exc:
        raise _fail(str(exc)) from exc
    if result is None:
        return
    view = RichTable()
    for col in result.columns:
        view.add_column(col)
    for row in result.fetchmany(200):
        view.add_row(*(str(v) for v in row))
    out.print(view)


@lake_app.command("refine")
def refine(
    rebuild: Annotated[bool, typer.Option(help="recreate the typed tables from the events table")] = False,
) -> None:
    """Bring the typed consumption and registration tables up to the events table (exactly once)."""
    from lakehouse.refine import rebuild_consumption, refine_consumption
    from lakehouse.refine.registration import rebuild_registration, refine_registration

    settings = LakehouseSettings()
    catalog = open_catalog(settings)
    try:
        result = rebuild_consumption(catalog, settings) if rebuild else refine_consumption(catalog, settings)
        reg = rebuild_registration(catalog, settings) if rebuild else refine_registration(catalog, settings)
    except LakehouseError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"consumption: +{result.rows:,} rows (snapshot {result.snapshot_id})")
    out.print(
        f"registration: {reg.events_read:,} new events, {reg.mpans_recomputed:,} MPANs recomputed, "
        f"{reg.rows_replaced:,} rows replaced by {reg.rows_written:,} (snapshot {reg.snapshot_id})"
    )
