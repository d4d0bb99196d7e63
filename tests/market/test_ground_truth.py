"""The simulator's ground truth is exact: a clean market breaks no rule, and every injected fault breaks its own.

Measured with ``tests.support.rules``, an independent check of DOMAIN.md's rules over the raw records.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from market.faults import BUSINESS_FAULTS
from market.simulation import Simulation, SimulationParams
from tests.support.rules import check_rules


@pytest.fixture(scope="module")
def clean() -> tuple[Simulation, dict[int, set[str]]]:
    # ten days of 1,500 meter points: dozens of changes of supplier, energisation, consent and domestic changes
    sim = Simulation(SimulationParams(mpans=1500, days=10, start=date(2026, 3, 24), seed=101, business_fault_rate=0.0,
                                      malformed_rate=0.0))  # fmt: skip
    values = [r.value for r in sim.records()]
    return sim, check_rules(values)


def test_a_clean_simulation_breaks_no_business_rule(clean: tuple[Simulation, dict[int, set[str]]]) -> None:
    sim, broken = clean
    assert not sim.faults
    assert {rule: sorted(txns)[:5] for rule, txns in broken.items() if txns} == {}


def test_the_clean_simulation_has_the_changes_that_used_to_hide_violations(
    clean: tuple[Simulation, dict[int, set[str]]],
) -> None:
    sim, _ = clean
    counts = Counter(r.interface for r in Simulation(sim.params).records())
    assert counts["IF-001"] >= 20 and counts["IF-037"] >= 40  # changes of supplier, old services de-appointed
    assert counts["IF-018"] >= 5 and counts["IF-026"] >= 5


def test_every_injected_business_fault_breaks_the_rule_the_manifest_names() -> None:
    sim = Simulation(SimulationParams(mpans=400, days=10, start=date(2026, 3, 24), seed=202, business_fault_rate=0.03,
                                      malformed_rate=0.0))  # fmt: skip
    broken = check_rules(r.value for r in sim.records())
    faults = [f for f in sim.faults if f.kind == "business"]
    assert {f.fault for f in faults} == set(BUSINESS_FAULTS)
    missed = [(f.fault, f.rule, f.transaction_id) for f in faults if f.transaction_id not in broken.get(f.rule, set())]
    assert not missed, missed[:5]
