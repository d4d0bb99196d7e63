"""DOMAIN.md's twelve business rules, as data: number, title, severity and the suite that checks each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info", "kpi"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info", "kpi")


@dataclass(frozen=True, slots=True)
class Rule:
    """One business rule of the quality suites."""

    number: int
    title: str
    severity: Severity
    suite: str


RULES: dict[int, Rule] = {
    r.number: r
    for r in (
        Rule(1, "MPAN core passes the check digit and has a known distributor ID", "error", "events"),
        Rule(2, "48 periods per MPAN x quantity x UTC date, 00:30Z to 24:00Z, no gaps, no duplicates", "error",
             "consumption"),
        Rule(3, "a transaction ID twice is a duplicate (error); a newer transaction is a revision (info)", "error",
             "events"),
        Rule(4, "a quality indicator other than A carries an estimation reason", "error", "consumption"),
        Rule(5, "share of actual periods per data service, supplier and day (target 100%)", "kpi", "kpi"),
        Rule(6, "no consumption on an MPAN de-energised on that date", "warning", "cross_table"),
        Rule(7, "consumption sent by the data service appointed on that date", "error", "cross_table"),
        Rule(8, "values within 9.3 precision and not negative", "error", "consumption"),
        Rule(9, "no value above 5x the MPAN's 28-day median for that half hour (import)", "warning", "consumption"),
        Rule(10, "no long run of zeros on an energised MPAN (import)", "warning", "consumption"),
        Rule(11, "confirmation before consumption; an appointment never ends before it began", "error",
             "cross_table"),
        Rule(12, "GSP group consistent with a DNO distributor ID", "warning", "events"),
    )
}  # fmt: skip
"""The rules; ``suite`` is the one whose findings name it (rule 3's revisions are ``info`` in ``consumption``)."""

GX_SEVERITY: dict[Severity, str] = {"error": "critical", "warning": "warning", "info": "info", "kpi": "info"}
"""How each severity is told to Great Expectations (it knows critical, warning and info)."""
