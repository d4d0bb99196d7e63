"""Errors of the quality runs; each says what to do next."""

from __future__ import annotations


class QualityError(Exception):
    """A quality run cannot go ahead (e.g. the typed tables have not been refined yet)."""
