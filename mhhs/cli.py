"""The ``mhhs`` command: one typer app composed of each package's commands."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import typer
from pydantic import ValidationError

from api import cli as api_cli
from deliveries import cli as deliveries_cli
from deliveries.settings import DeliveriesSettings
from ingest import cli as ingest_cli
from ingest.settings import IngestSettings
from lakehouse import cli as lake_cli
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from market import cli as market_cli
from market.simulation import SimulationParams
from mhhs import scheduler as scheduler_cli
from mhhs.devbroker import LocalBrokerLocator, broker_app, ensure_broker
from mhhs.logs import configure_logging
from quality import cli as quality_cli
from quality.settings import QualitySettings

app = typer.Typer(
    name="mhhs",
    help="MHHS Event Store: land, keep, replay and extract every MHHS broker event.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(broker_app, name="broker")
app.command("simulate")(market_cli.simulate)
app.command("publish")(market_cli.publish_file)
app.command("topics")(ingest_cli.topics_summary)
app.command("ingest")(ingest_cli.ingest_command)
app.add_typer(lake_cli.lake_app, name="lake")
app.add_typer(api_cli.token_app, name="token")
app.command("serve")(api_cli.serve)
app.add_typer(quality_cli.quality_app, name="quality")
app.add_typer(deliveries_cli.grants_app, name="grants")
app.add_typer(deliveries_cli.deliveries_app, name="deliveries")
app.command("scheduler")(scheduler_cli.scheduler)


@app.callback()
def _setup(
    ctx: typer.Context,
    log_level: str = typer.Option("INFO", envvar="MHHS_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR"),
) -> None:
    """Configure structured logging once for whichever command runs; wire the broker locator."""
    try:
        configure_logging(log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-level / MHHS_LOG_LEVEL") from exc
    ctx.obj = LocalBrokerLocator()


@app.command("demo")
def demo(
    mpans: int = typer.Option(1000, min=1, help="meter points to simulate"),
    days: int = typer.Option(2, min=1, help="UTC settlement days to simulate"),
    seed: int = typer.Option(7, min=0),
) -> None:
    """End to end on the local broker: start it, create topics, simulate, summarise."""
    err = ingest_cli.err
    settings = IngestSettings()
    err.rule("1. broker")
    bootstrap = ensure_broker(settings)
    err.rule(f"2. simulate {mpans} MPANs x {days} UTC days into Kafka")
    params = SimulationParams(
        mpans=mpans,
        days=days,
        start=date(2026, 3, 28),
        seed=seed,
        business_fault_rate=0.005,
        malformed_rate=0.002,
        max_message_bytes=settings.max_message_bytes,
    )
    market_cli.run_simulation(settings, params, bootstrap)
    err.rule("3. what the broker holds")
    ingest_cli.print_topics(settings, bootstrap)
    err.rule("4. ingest: land every event exactly once, quarantine the malformed")
    ingest_cli.run_ingest(settings, bootstrap, until_idle=5.0)
    err.rule("5. refine the typed consumption and registration tables")
    lake_cli.refine(rebuild=False)
    err.rule("6. what the lakehouse holds (DuckDB over Iceberg)")
    lake_cli.sql(
        "SELECT interface_id, count(*) AS events, count(DISTINCT settlement_date) AS dates "
        "FROM events GROUP BY 1 ORDER BY 1"
    )
    lake_cli.sql("SELECT error_code, count(*) AS records FROM quarantine GROUP BY 1 ORDER BY 2 DESC")
    lake_cli.sql(
        "SELECT utc_settlement_date, count(DISTINCT mpan) AS mpans, count(*) AS periods, "
        "sum(consumption_kwh) AS kwh, avg(CASE WHEN quality_indicator = 'A' THEN 1 ELSE 0 END) "
        "AS actual_share FROM consumption GROUP BY 1 ORDER BY 1"
    )
    err.rule("7. data quality: the twelve business rules (Great Expectations), completeness")
    store = Store(LakehouseSettings())
    quality = QualitySettings()
    quality_cli.run_quality(store, quality)
    from quality.completeness import certify  # DuckDB: only the demo and `quality` need it

    certificates = certify(store, quality)
    complete = sum(c.complete for c in certificates)
    err.print(f"completeness: {complete} of {len(certificates)} topic x date certificates complete")
    err.rule("8. a signed delivery to an authorised third party (grant, delivery, verification)")
    delivered = _demo_delivery()
    _next_steps(quality, delivered)


DEMO_GRANT = "demo-network-planner"


def _demo_delivery() -> str | None:
    """Grant a network planner the consumption aggregate, deliver it, verify it as the recipient would."""
    from datetime import UTC, datetime

    from access.grants import Grant
    from deliveries.verify import load_public_keys, verify_delivery

    err = ingest_cli.err
    registry = deliveries_cli.grant_registry()
    if DEMO_GRANT not in registry.all():
        registry.add(
            Grant(
                grant_id=DEMO_GRANT,
                recipient="network-planner",
                dataset="consumption_aggregate",
                schedule="0 6 * * *",
                destination=str(Path("var/deliveries/outbox").resolve()),
                approved_by="demo",
                valid_from=datetime.now(UTC),
            )
        )
        err.print(f"grant {DEMO_GRANT}: consumption aggregate for network-planner, daily at 06:00 UTC")
    outcome = deliveries_cli.runner().run([DEMO_GRANT])[0]
    err.print(f"delivery: {outcome.status}, {outcome.rows:,} rows -> {outcome.location or '-'}")
    if outcome.location is None:
        return None
    settings = DeliveriesSettings()
    manifest = verify_delivery(Path(outcome.location), load_public_keys(jwks=str(settings.jwks_file)))
    err.print(f"verified as the recipient would: signature, {len(manifest.files)} files' sha256 and rows")
    return outcome.location


def _next_steps(quality: QualitySettings, delivered: str | None) -> None:
    """What to do after the demo, with commands that work as printed."""
    err = ingest_cli.err
    jwks = DeliveriesSettings().jwks_file
    verify = f"Verify the delivery: .venv/bin/mhhs deliveries verify {delivered} --jwks {jwks}"
    verify_line = [verify] if delivered else []
    err.rule("what next")
    err.print(
        "\n".join(
            [
                "The API over what was just landed (dev secrets):",
                "  export MHHS_API_DEV_MODE=true",
                "  .venv/bin/mhhs serve &",
                "  TOKEN=$(.venv/bin/mhhs token issue --subject MDSV --role MDS --scope replay --scope extract)",
                '  curl -s -H "Authorization: Bearer $TOKEN" '
                "'http://127.0.0.1:8000/v1/replays/mhhs.consumption.if-021?limit=5'",
                '  curl -s -H "Authorization: Bearer $TOKEN" '
                "'http://127.0.0.1:8000/v1/consumption/aggregate?format=csv'",
                f"Data quality: `mhhs quality report`, Data Docs at {(quality.docs_dir / 'index.html').resolve()}",
                "Notebooks for analysts: `make lab` (JupyterLab on 127.0.0.1, notebooks/)",
                *verify_line,
                "Grants and the scheduler: `mhhs grants list`, `mhhs scheduler --once` (README: Deliveries)",
                "The broker keeps running: `make kafka-down` stops it.",
            ]
        ),
        soft_wrap=True,  # commands stay on one line, to copy as printed
    )


def main() -> None:
    """Entry point of the ``mhhs`` console script; bad MHHS_* settings end with a message and exit 1."""
    try:
        app()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or exc.title
        print(f"error: invalid setting {where} ({exc.title}): {first['msg']}", file=sys.stderr)
        raise SystemExit(1) from exc
