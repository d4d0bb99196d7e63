"""Errors of the development stack; each says what to install or where to look."""

from __future__ import annotations


class DevstackError(Exception):
    """Root of every devstack error."""


class MavenFetchError(DevstackError):
    """Maven or Java is missing, or Maven could not resolve an artifact."""


class LocalBrokerError(DevstackError):
    """The local broker could not be fetched, formatted or started; see its log file."""

    def __init__(self, message: str, log_file: str | None = None) -> None:
        suffix = f" (log: {log_file})" if log_file else ""
        super().__init__(message + suffix)
        self.log_file = log_file


class ServerStartError(DevstackError):
    """A development server (e.g. Iceberg's REST catalog) exited or did not answer in time."""
