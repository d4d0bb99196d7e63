"""Ingest's commands: topic summaries and the ingest worker.

Where the broker is comes from the composition root: ``ctx.obj`` is a ``BrokerLocator`` (the
``mhhs`` command gives one that knows the local development broker); without one, only
``MHHS_KAFKA_BOOTSTRAP`` is used.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Protocol, runtime_checkable

import orjson
import structlog
import typer
from rich.console import Console
from rich.table import Table

from contract.topics import load_topic_catalogue
from ingest.errors import BrokerUnavailableError, IngestError
from ingest.kafka_client import end_offsets
from ingest.settings import IngestSettings
from ingest.topics import create_topics

err = Console(stderr=True)
out = Console()
log = structlog.get_logger("ingest.cli")


@runtime_checkable
class BrokerLocator(Protocol):
    """Finds the broker to use: the configured cluster, or a local one (started if ``start``)."""

    def bootstrap(self, settings: IngestSettings, start: bool = True) -> str: ...


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` to stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def locate_broker(ctx: typer.Context | None, settings: IngestSettings, start: bool = True) -> str:
    """The bootstrap address for a command: ``MHHS_KAFKA_BOOTSTRAP``, else the locator's broker.

    Raises:
        BrokerUnavailableError: if neither is available.
    """
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    locator = ctx.find_root().obj if ctx is not None else None
    if not isinstance(locator, BrokerLocator):
        raise BrokerUnavailableError("(none)", "set MHHS_KAFKA_BOOTSTRAP or run `mhhs broker up`")
    return locator.bootstrap(settings, start)


def topics_summary(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Per-topic record counts on the broker (log-end offsets)."""
    settings = IngestSettings()
    try:
        bootstrap = locate_broker(ctx, settings, start=False)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    print_topics(settings, bootstrap, as_json)


def print_topics(settings: IngestSettings, bootstrap: str, as_json: bool = False) -> None:
    """Print the record count of every catalogue topic on ``bootstrap``."""
    catalogue = load_topic_catalogue()
    try:
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
    ctx: typer.Context,
    until_idle: Annotated[
        float | None, typer.Option(min=0.1, help="exit once every topic has been quiet this many seconds")
    ] = None,
    group: Annotated[str | None, typer.Option(help="consumer group (default MHHS_GROUP_ID)")] = None,
    worker_id: Annotated[str | None, typer.Option(help="this worker's name (default host-pid)")] = None,
    processes: Annotated[
        int, typer.Option(min=1, max=256, help="group members to run in this command, one process each")
    ] = 1,
) -> None:
    """Land every MHHS broker event in Iceberg exactly once; quarantine the malformed."""
    updates: dict[str, object] = {}
    if group:
        updates["group_id"] = group
    if worker_id:
        updates["worker_id"] = worker_id
    settings = IngestSettings().model_copy(update=updates)
    try:
        bootstrap = locate_broker(ctx, settings)
    except IngestError as exc:
        raise fail(str(exc)) from exc
    if processes == 1:
        run_ingest(settings, bootstrap, until_idle)
        return
    raise typer.Exit(run_members(settings, bootstrap, until_idle, processes))


def _member(settings: IngestSettings, bootstrap: str, until_idle: float | None) -> None:
    try:
        run_ingest(settings, bootstrap, until_idle, live=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


def run_members(settings: IngestSettings, bootstrap: str, until_idle: float | None, processes: int) -> int:
    """Run ``processes`` workers of one group, each in its own process; the first failing exit code, else 0.

    Each is named ``<worker id>-<i>`` (default host-pid-i) and, with ``MHHS_METRICS_PORT`` set, serves
    its metrics on that port + i. SIGTERM / SIGINT are passed on: each commits its batch and stops.
    """
    import multiprocessing
    import os
    import signal
    import socket

    base = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    context = multiprocessing.get_context("fork")  # before any thread starts: children inherit logging
    members = []
    for i in range(processes):
        port = settings.metrics_port + i if settings.metrics_port else 0
        member = settings.model_copy(update={"worker_id": f"{base}-{i}", "metrics_port": port})
        proc = context.Process(target=_member, args=(member, bootstrap, until_idle), name=f"ingest-{i}")
        proc.start()
        members.append(proc)

    def forward(signum: int, _frame: object) -> None:
        for proc in members:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in members:
        proc.join()
    # a member killed by a signal reports -signum: exit as a shell would, 128 + signum
    codes = [128 - code if code is not None and code < 0 else code or 0 for code in (p.exitcode for p in members)]
    err.print(f"ingest: {processes} processes ended, exit codes {codes}")
    return next((c for c in codes if c), 0)


def run_ingest(settings: IngestSettings, bootstrap: str, until_idle: float | None = None, live: bool = True) -> None:
    """Run one ingest worker on ``bootstrap`` (until idle, or until SIGTERM); ``live``: a live table on a tty."""
    from ingest.service import IngestWorker, install_signal_handlers
    from lakehouse.errors import LakehouseError
    from lakehouse.settings import LakehouseSettings

    deadline = time.monotonic() + settings.broker_wait_seconds
    while True:  # a broker that is down when the worker starts is waited for, like one lost mid-run
        try:
            lake = LakehouseSettings()
            create_topics(settings, bootstrap)
            worker = IngestWorker(settings, lake, bootstrap)
            break
        except BrokerUnavailableError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise fail(f"{exc} (waited {settings.broker_wait_seconds:g} s: MHHS_BROKER_WAIT_SECONDS)") from exc
            log.warning("broker_unavailable_waiting", bootstrap=bootstrap, detail=str(exc), seconds_left=round(left))
            time.sleep(min(2.0, left))
        except (IngestError, LakehouseError) as exc:
            raise fail(str(exc)) from exc
    install_signal_handlers(worker)
    if settings.metrics_port:
        worker.metrics.serve(settings.metrics_port)
    if live and sys.stderr.isatty():
        from rich.live import Live

        with Live(console=err, refresh_per_second=4) as view:

            def tick(stats: object) -> None:
                view.update(_stats_table(worker))

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
