"""`mhhs grants`, `mhhs deliveries` and `mhhs scheduler`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from access.errors import AccessError
from access.grants import Grant, GrantError
from access.policy import load_policy
from deliveries.errors import DeliveryError, VerificationError
from deliveries.settings import DeliveriesSettings
from lakehouse.errors import LakehouseError
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store

grants_app = typer.Typer(help="Grants to authorised third parties (admin).", no_args_is_help=True)
deliveries_app = typer.Typer(help="Scheduled, signed deliveries to authorised third parties.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

Many = Annotated[list[str] | None, typer.Option()]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _mask_secret() -> bytes:
    """The MPAN token key (the API's, so tokens join across replays, extracts and deliveries)."""
    return DeliveriesSettings().mask_secret.get_secret_value().encode()


def grant_registry():  # type: ignore[no-untyped-def]
    from deliveries.registry import GrantRegistry

    try:
        return GrantRegistry(Store(LakehouseSettings()), load_policy())
    except (LakehouseError, AccessError) as exc:
        raise _fail(str(exc)) from exc


def runner():  # type: ignore[no-untyped-def]
    """The delivery runner the settings describe (the signing key made on first use)."""
    from deliveries.runner import DeliveryRunner
    from deliveries.signing import load_or_create_key

    settings = DeliveriesSettings()
    try:
        key = load_or_create_key(settings.signing_key_file, settings.jwks_file)
        return DeliveryRunner(Store(LakehouseSettings()), load_policy(), key, settings, _mask_secret())
    except (LakehouseError, AccessError, DeliveryError) as exc:
        raise _fail(str(exc)) from exc


def _when(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@grants_app.command("add")
def add(
    grant_id: Annotated[str, typer.Option("--id", help="a stable name, e.g. uni-leeds-2027")],
    recipient: Annotated[str, typer.Option(help="the recipient's token subject")],
    dataset: Annotated[str, typer.Option(help="events, consumption, consumption_aggregate or registration")],
    schedule: Annotated[str, typer.Option(help="cron, UTC: minute hour day month weekday")],
    destination: Annotated[str, typer.Option(help="a directory or an s3:// prefix")],
    approved_by: Annotated[str, typer.Option(help="who approved it")],
    topic: Many = None,
    date_from: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    date_to: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    gsp_group: Many = None,
    distributor: Many = None,
    mpan: Many = None,
    column: Many = None,
    mask: Annotated[list[str] | None, typer.Option(help="stricter masking: kind=action (participants=remove)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or ndjson")] = "parquet",
    valid_from: Annotated[datetime | None, typer.Option(help="default: now")] = None,
    valid_to: Annotated[datetime | None, typer.Option()] = None,
) -> None:
    """Record a grant (refused when malformed or looser than the third-party policy)."""
    masking = {}
    for item in mask or []:
        kind, _, action = item.partition("=")
        if not action:
            raise _fail(f"--mask takes kind=action, not {item!r}")
        masking[kind] = action
    grant = Grant(
        grant_id=grant_id,
        recipient=recipient,
        dataset=dataset,
        schedule=schedule,
        destination=destination,
        approved_by=approved_by,
        topics=tuple(topic or ()),
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        gsp_groups=tuple(gsp_group or ()),
        distributors=tuple(distributor or ()),
        mpans=tuple(mpan or ()),
        columns=tuple(column or ()),
        masking=masking,
        format=fmt,
        valid_from=_when(valid_from) or datetime.now(UTC),
        valid_to=_when(valid_to),
    )
    try:
        recorded = grant_registry().add(grant)
    except (GrantError, LakehouseError) as exc:
        raise _fail(str(exc)) from exc
    out.print(f"grant {recorded.grant_id} v{recorded.version} for {recorded.recipient}: {recorded.dataset}")


@grants_app.command("revoke")
def revoke(grant_id: Annotated[str, typer.Argument()], by: Annotated[str, typer.Option(help="who revoked it")]) -> None:
    """Revoke a grant: nothing more is delivered under it (its history is kept)."""
    try:
        revoked = grant_registry().revoke(grant_id, by)
    except (GrantError, LakehouseError) as exc:
        raise _fail(str(exc)) from exc
    out.print(f"grant {revoked.grant_id} revoked (v{revoked.version})")


@grants_app.command("list")
def list_grants(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every grant's latest version."""
    grants = sorted(grant_registry().all().values(), key=lambda g: g.grant_id)
    if as_json:
        out.print_json(orjson.dumps([g.to_row() for g in grants], default=str).decode())
        return
    table = Table(title=f"{len(grants)} grants")
    for col in ("grant", "v", "status", "recipient", "dataset", "schedule", "format", "valid to"):
        table.add_column(col)
    for g in grants:
        table.add_row(g.grant_id, str(g.version), g.status, g.recipient, g.dataset, g.schedule, g.format,
                      str(g.valid_to or "-"))  # fmt: skip
    out.print(table)


@grants_app.command("show")
def show(grant_id: Annotated[str, typer.Argument()]) -> None:
    """Every version of one grant, oldest first."""
    history = grant_registry().history(grant_id)
    if not history:
        raise _fail(f"no grant {grant_id!r}")
    out.print_json(orjson.dumps([g.to_row() for g in history], default=str).decode())


@deliveries_app.command("run")
def run(
    due: Annotated[bool, typer.Option("--due", help="only grants whose schedule has come round")] = False,
    grant: Annotated[list[str] | None, typer.Option("--grant", help="only these grants")] = None,
    full: Annotated[bool, typer.Option("--full", help="everything, not just what is new")] = False,
) -> None:
    """Deliver what is new for each grant: files, a signed manifest, a row in the deliveries table."""
    try:
        outcomes = runner().run(grant, due=due, full=full)
    except (DeliveryError, LakehouseError) as exc:
        raise _fail(str(exc)) from exc
    table = Table(title="Deliveries")
    for col in ("grant", "status", "delivery", "rows", "location"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(o.grant_id, o.status, o.delivery_id or "-", f"{o.rows:,}", o.location or "-")
    out.print(table)
    failed = [o.grant_id for o in outcomes if o.status.startswith("failed")]
    if failed:
        raise _fail(f"{len(failed)} of {len(outcomes)} grants failed: {', '.join(failed)} (the others were delivered)")


@deliveries_app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="a delivery directory (with manifest.json)")],
    public_key: Annotated[Path | None, typer.Option("--public-key", help="the PEM public key")] = None,
    jwks: Annotated[str | None, typer.Option("--jwks", help="a JWKS file or URL, e.g. .../v1/deliveries/keys")] = None,
) -> None:
    """Check a delivery: signature, every file's bytes, sha256 and rows. Exits 1 saying what is wrong."""
    from deliveries.verify import load_public_keys, verify_delivery

    try:
        manifest = verify_delivery(directory, load_public_keys(public_key, jwks))
    except VerificationError as exc:
        for problem in exc.problems:
            err.print(f"[red]x[/] {problem}")
        raise _fail(f"{directory}: does not verify ({len(exc.problems)} problems)") from exc
    except DeliveryError as exc:
        raise _fail(str(exc)) from exc
    out.print(
        f"{directory}: verified - delivery {manifest.delivery_id} of grant {manifest.grant_id}, "
        f"{len(manifest.files)} files, {manifest.rows:,} rows, "
        f"snapshots {manifest.snapshot_from} -> {manifest.snapshot_to}"
    )


@deliveries_app.command("keygen")
def keygen() -> None:
    """Make the signing key (once) and publish its public half in the JWKS file."""
    from deliveries.signing import load_or_create_key

    settings = DeliveriesSettings()
    key = load_or_create_key(settings.signing_key_file, settings.jwks_file)
    out.print(f"signing key {key.kid}: {settings.signing_key_file} (public keys: {settings.jwks_file})")
