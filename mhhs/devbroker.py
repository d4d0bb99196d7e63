"""The composition root's broker locator: the configured cluster, else the local development broker."""

from __future__ import annotations

import typer
from rich.console import Console

from devstack.errors import DevstackError
from devstack.kafka import read_local_broker, start_local_broker, stop_local_broker
from devstack.settings import DevstackSettings
from ingest.errors import BrokerUnavailableError, IngestError
from ingest.settings import IngestSettings
from ingest.topics import create_topics

err = Console(stderr=True)
out = Console()


class LocalBrokerLocator:
    """``MHHS_KAFKA_BOOTSTRAP`` if set; else the local broker of ``MHHS_KAFKA_DATA_DIR``, started on demand."""

    def __init__(self, dev: DevstackSettings | None = None) -> None:
        self._dev = dev

    @property
    def dev(self) -> DevstackSettings:
        if self._dev is None:
            self._dev = DevstackSettings()
        return self._dev

    def bootstrap(self, settings: IngestSettings, start: bool = True) -> str:
        """The bootstrap address to use.

        Raises:
            BrokerUnavailableError: if no broker is configured or running (and ``start`` is False), or
                the local one cannot be started.
        """
        if settings.kafka_bootstrap:
            return settings.kafka_bootstrap
        running = read_local_broker(self.dev.broker())
        if running is not None:
            return running.bootstrap
        if not start:
            raise BrokerUnavailableError("(none)", "set MHHS_KAFKA_BOOTSTRAP or run `mhhs broker up`")
        try:
            return start_local_broker(self.dev.broker()).bootstrap
        except DevstackError as exc:
            raise BrokerUnavailableError("127.0.0.1 (local)", str(exc)) from exc


broker_app = typer.Typer(help="Run the local single-node Apache Kafka broker (KRaft).", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(1)


def ensure_broker(settings: IngestSettings) -> str:
    """The configured cluster, or the local broker (fetched, formatted and started once), with the topics.

    Raises:
        typer.Exit: with a message when the broker cannot be started or reached.
    """
    if settings.kafka_bootstrap:
        err.print("MHHS_KAFKA_BOOTSTRAP is set: using that broker, starting none")
        bootstrap = settings.kafka_bootstrap
    else:
        try:
            broker = start_local_broker(DevstackSettings().broker())
        except DevstackError as exc:
            raise _fail(str(exc)) from exc
        err.print(f"broker pid {broker.pid}, log {broker.log_file}")
        bootstrap = broker.bootstrap
    try:
        create_topics(settings, bootstrap)
    except IngestError as exc:
        raise _fail(str(exc)) from exc
    return bootstrap


@broker_app.command("up")
def broker_up() -> None:
    """Fetch (once), format and start the local broker, create the topics; print its bootstrap address."""
    out.print(ensure_broker(IngestSettings()))


@broker_app.command("down")
def broker_down() -> None:
    """Stop the local broker (its data stays, so `up` resumes it)."""
    stopped = stop_local_broker(DevstackSettings().broker())
    err.print("broker stopped" if stopped else "no local broker was running")


@broker_app.command("status")
def broker_status() -> None:
    """Print the local broker's address, or exit 1 when none is running."""
    running = read_local_broker(DevstackSettings().broker())
    if running is None:
        raise _fail("no local broker is running")
    out.print(running.bootstrap)
