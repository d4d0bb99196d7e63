"""Who is asking: a participant (or person) in one market role, with scopes and grants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal[
    "SUP",
    "REGS",
    "SDS",
    "ADS",
    "UMSDS",
    "MSS",
    "MSA",
    "UMSO",
    "LDSO",
    "MDS",
    "LSS",
    "analyst",
    "auditor",
    "third_party",
    "admin",
]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
SCOPES = ("replay", "extract", "audit", "admin")

ALL_ROWS = frozenset({"MDS", "LSS", "analyst", "auditor", "admin"})
"""Roles that see every row (masked by their policy)."""
SERVICE_ROLES = frozenset({"SDS", "ADS", "UMSDS", "MSS", "MSA", "UMSO"})
"""Data and metering services: they see the MPANs they are appointed to, on those dates."""
RAW_BYTES_ROLES = frozenset({"auditor", "admin"})
"""Roles allowed unmasked raw bytes (malformed records cannot be masked)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: subject (MPID, DIP ID or person), role, scopes and grants."""

    subject: str
    role: str
    scopes: frozenset[str]
    grants: tuple[str, ...] = ()  # third parties: the IDs of the grants the token names

    @property
    def needs_history(self) -> bool:
        """True when what this caller may see depends on the appointment history."""
        return self.role == "SUP" or self.role in SERVICE_ROLES
