"""Errors raised by ingest; each carries what to do next."""

from __future__ import annotations


class IngestError(Exception):
    """Root of every ingest error."""


class BrokerUnavailableError(IngestError):
    """The Kafka broker could not be reached in time; check the bootstrap address or start one."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(f"Kafka broker at {bootstrap} is not answering: {detail}")
        self.bootstrap = bootstrap
        self.detail = detail


class LocalBrokerError(IngestError):
    """The local broker could not be fetched, formatted or started; see its log file."""

    def __init__(self, message: str, log_file: str | None = None) -> None:
        suffix = f" (log: {log_file})" if log_file else ""
        super().__init__(message + suffix)
        self.log_file = log_file


class InputFileError(IngestError):
    """A file given to ``mhhs publish`` is missing or not in the simulator's JSON Lines format."""
