"""`mhhs serve` and `mhhs token issue`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

token_app = typer.Typer(help="Development bearer tokens (HS256).", no_args_is_help=True)
err = Console(stderr=True)


def _settings():  # type: ignore[no-untyped-def]
    from api.settings import ApiSettings

    try:
        return ApiSettings()
    except ValidationError as exc:
        err.print(f"[bold red]error:[/] {exc.errors()[0]['msg']}")
        raise typer.Exit(1) from exc


@token_app.command("issue")
def issue(
    subject: Annotated[str, typer.Option(help="participant MPID or DIP ID")],
    role: Annotated[str, typer.Option(help="SUP, SDS, LDSO, MDS, analyst, auditor, third_party, admin, ...")],
    scope: Annotated[list[str] | None, typer.Option(help="replay, extract, audit, admin (repeatable)")] = None,
    grant: Annotated[list[str] | None, typer.Option(help="a third party's grant IDs (repeatable)")] = None,
    ttl_minutes: Annotated[int, typer.Option(min=1, max=60 * 24 * 30)] = 60,
) -> None:
    """Print a signed bearer token for development."""
    from api.auth import issue_token

    try:
        print(issue_token(_settings(), subject, role, scope, timedelta(minutes=ttl_minutes), grant))
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Serve the API (uvicorn)."""
    import uvicorn

    from api.app import create_app
    from api.services.journal import AuditJournalError
    from lakehouse.settings import LakehouseSettings

    try:
        app = create_app(_settings(), LakehouseSettings())
    except AuditJournalError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    uvicorn.run(app, host=host, port=port, log_level="info")
