"""The expectation suites, in code: one per subject, each expectation tagged with its rule and severity.

``events`` (envelope), ``consumption`` and ``cross_table`` (both over the IF-021 message frame),
``registration`` (de-appointments) and ``kpi``. Each ``Check`` builds a fresh Great Expectations
expectation and says which columns of an unexpected row are the observed and expected values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import great_expectations.expectations as gxe

from quality.rules import GX_SEVERITY, RULES, Severity


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation of a suite: its rule, severity and how a finding reports it."""

    rule: int
    severity: Severity
    build: Callable[..., Any]
    kwargs: tuple[tuple[str, Any], ...]
    observed: str  # the frame column whose value is the observed one
    expected: str  # the expected value, for people (or ``column:<name>`` for another column's value)

    @property
    def key(self) -> str:
        """A stable name for this check within its suite (rule + expectation + column)."""
        kw = dict(self.kwargs)
        column = kw.get("column") or kw.get("column_A") or ""
        return f"rule{self.rule}:{self.build.__name__}:{column}"

    def expectation(self) -> Any:
        return self.build(
            **dict(self.kwargs),
            meta={"rule": self.rule, "severity": self.severity, "title": RULES[self.rule].title, "check": self.key},
            notes=f"Rule {self.rule} ({self.severity}): {RULES[self.rule].title}",
            severity=GX_SEVERITY[self.severity],
        )


def _check(rule: int, build: Callable[..., Any], observed: str, expected: str, severity: Severity | None = None,
           **kwargs: Any) -> Check:  # fmt: skip
    return Check(rule, severity or RULES[rule].severity, build, tuple(sorted(kwargs.items())), observed, expected)


SUITES: dict[str, tuple[Check, ...]] = {
    "events": (
        _check(1, gxe.ExpectColumnValuesToBeInSet, "mpan_valid", "true", column="mpan_valid", value_set=[True]),
        _check(3, gxe.ExpectColumnValuesToBeBetween, "occurrences", "1", column="occurrences", max_value=1),
        _check(12, gxe.ExpectColumnPairValuesToBeEqual, "gsp_group", "column:home_gsp_group", column_A="gsp_group",
               column_B="home_gsp_group", ignore_row_if="either_value_is_missing"),
    ),
    "consumption": (
        _check(2, gxe.ExpectColumnValuesToBeBetween, "periods", "48", column="periods", min_value=48, max_value=48),
        _check(2, gxe.ExpectColumnValuesToBeBetween, "distinct_periods", "48", column="distinct_periods",
               min_value=48, max_value=48),
        _check(2, gxe.ExpectColumnValuesToBeInSet, "ends_ok", "00:30Z to 24:00Z", column="ends_ok", value_set=[True]),
        _check(3, gxe.ExpectColumnValuesToBeBetween, "versions", "1 (later versions are revisions)", severity="info",
               column="versions", max_value=1),
        _check(4, gxe.ExpectColumnValuesToBeBetween, "estimates_without_reason", "0",
               column="estimates_without_reason", max_value=0),
        _check(8, gxe.ExpectColumnValuesToBeBetween, "negative_periods", "0", column="negative_periods", max_value=0),
        _check(8, gxe.ExpectColumnValuesToBeBetween, "imprecise_periods", "0 (9.3 precision)",
               column="imprecise_periods", max_value=0),
        _check(9, gxe.ExpectColumnValuesToBeBetween, "max_outlier_ratio", "at most 5x the 28-day median",
               column="max_outlier_ratio", max_value=5),
        _check(10, gxe.ExpectColumnValuesToBeBetween, "longest_zero_run", "fewer than 12 zero half hours",
               column="longest_zero_run", max_value=11),
    ),
    "cross_table": (
        _check(6, gxe.ExpectColumnValuesToBeInSet, "energised", "energised", column="energised", value_set=[True]),
        _check(7, gxe.ExpectColumnPairValuesToBeEqual, "participant", "column:appointed_data_service",
               column_A="participant", column_B="appointed_data_service", ignore_row_if="both_values_are_missing"),
        _check(11, gxe.ExpectColumnValuesToBeInSet, "confirmed_before", "a confirmation on or before the date",
               column="confirmed_before", value_set=[True]),
    ),
    "registration": (
        _check(11, gxe.ExpectColumnValuesToNotBeNull, "appointed_from", "an appointment to end",
               column="appointed_from"),
        _check(11, gxe.ExpectColumnPairValuesAToBeGreaterThanB, "effective_to", "column:appointed_from",
               column_A="effective_to", column_B="appointed_from", or_equal=True,
               ignore_row_if="either_value_is_missing"),
    ),
    "kpi": (
        _check(5, gxe.ExpectColumnValuesToBeBetween, "actual_share", "1.0 (every period actual)", column="actual_share",
               min_value=1.0),
    ),
}  # fmt: skip

FRAME_OF_SUITE = {
    "events": "events",
    "consumption": "consumption",
    "cross_table": "consumption",
    "registration": "registration",
    "kpi": "kpi",
}
"""Which frame each suite validates (a frame may carry several suites: one checkpoint per frame)."""


def check_by_key(suite: str, key: str) -> Check:
    """The check ``key`` of ``suite``.

    Raises:
        KeyError: if there is none.
    """
    for check in SUITES[suite]:
        if check.key == key:
            return check
    raise KeyError(f"{suite}: no check {key}")
