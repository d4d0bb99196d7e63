"""Errors raised by the simulator and its file format."""

from __future__ import annotations


class MarketError(Exception):
    """Root of every simulator error."""


class InputFileError(MarketError):
    """A file given to ``mhhs publish`` is missing or not in the simulator's JSON Lines format."""
