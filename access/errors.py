"""Errors of the access policy."""

from __future__ import annotations


class AccessError(Exception):
    """Root of every access error."""


class PolicyError(AccessError):
    """The policy file is not a valid access policy; nothing was loaded."""
