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
