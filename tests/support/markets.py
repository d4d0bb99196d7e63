"""Simulated markets landed straight into a private lake (no broker), refined, for quality and API tests."""

from __future__ import annotations

from datetime import date

from lakehouse.catalog import open_catalog
from lakehouse.refine import refine_consumption, refine_registration
from lakehouse.settings import LakehouseSettings
from lakehouse.writer import LandingWriter
from market.messages import SimRecord
from market.simulation import Simulation, SimulationParams
from tests.support.landing import GROUP, decoded_batches


def simulated(
    mpans: int, days: int, start: date, seed: int, business_fault_rate: float
) -> tuple[Simulation, list[SimRecord]]:
    """A simulation and its records (no malformed ones)."""
    sim = Simulation(SimulationParams(mpans=mpans, days=days, start=start, seed=seed,
                                      business_fault_rate=business_fault_rate, malformed_rate=0.0))  # fmt: skip
    return sim, list(sim.records())


def land_records(
    lake: LakehouseSettings, records: list[SimRecord], batches: int = 4, earlier: list[SimRecord] | None = None
) -> None:
    """Land ``records`` in a few batches through the real writer, then refine both typed tables.

    ``earlier``: the records landed before, whose offsets these continue.
    """
    offsets: dict[tuple[str, int], int] = {}
    if earlier:
        decoded_batches(earlier, 1, len(earlier), offsets)
    writer = LandingWriter(lake)
    for events, quarantine, next_offsets in decoded_batches(records, batches, len(records) // batches + 1, offsets):
        writer.commit(events, quarantine, GROUP, next_offsets, {}, max_attempts=5)
    catalog = open_catalog(lake)
    refine_consumption(catalog, lake)
    refine_registration(catalog, lake)
