"""A simulation run: a deterministic synthetic MHHS market, record by record in publication order."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from market.consumption import ConsumptionFlows, Revision
from market.faults import BUSINESS_FAULTS, MALFORMED_FAULTS, FaultEntry, FaultPicker
from market.messages import MessageFactory, SimRecord
from market.participants import Market, build_meter_points, build_participants
from market.reference import ReferenceData
from market.registration import RegistrationFlows
from market.state import SimulationParams, sent_timestamp

__all__ = ["Simulation", "SimulationParams"]


@dataclass
class Simulation(RegistrationFlows, ConsumptionFlows, ReferenceData):
    """Generates the records of one simulated market; ``faults`` fills in as records are made."""

    params: SimulationParams
    faults: list[FaultEntry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.params.seed)
        self._fault_rng = np.random.default_rng(self.params.seed + 1_000_003)
        self._factory = MessageFactory(self.params.seed)
        self.market: Market = build_participants(self._rng)
        self.market.meter_points = build_meter_points(
            self._rng, self.market, self.params.mpans, self.params.start.toordinal()
        )
        self._business = FaultPicker(self._fault_rng, list(BUSINESS_FAULTS), self.params.business_fault_rate)
        self._malformed = FaultPicker(self._fault_rng, list(MALFORMED_FAULTS), self.params.malformed_rate)
        self._seq = 0
        self._pending = {}
        self._days_sent = {}

    def records(self) -> Iterator[SimRecord]:
        """Every record of the run, in publication order.

        The cyclic garbage collector is paused while generating: messages are acyclic dicts freed
        by reference counting, and collector passes over them roughly doubled the run time.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield from self._records()
        finally:
            if was_enabled:
                gc.enable()

    def _records(self) -> Iterator[SimRecord]:
        start = self.params.start
        yield from self._isd(start - timedelta(days=1))
        for mp in self.market.meter_points:
            eff = date.fromisoformat(mp.registered_from)
            yield from self._appointment_flow(mp, eff, sent_timestamp(eff - timedelta(days=5), 36_000))
        pending_revisions: list[Revision] = []
        for d in range(self.params.days):
            day = start + timedelta(days=d)
            yield from self._registration_changes(day)
            yield from self._revisions(pending_revisions, day)
            pending_revisions = []
            yield from self._consumption(day, pending_revisions)
            yield from self._load_shapes(day)
