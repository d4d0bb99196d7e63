"""What every part of a simulation run shares: the market, the generators, and the ledger of output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from market.faults import BUSINESS_FAULTS, MALFORMED_FAULTS, FaultEntry, FaultPicker
from market.messages import MessageFactory, SimRecord
from market.participants import Market


@dataclass(frozen=True, slots=True)
class SimulationParams:
    """What to simulate; the same params and seed always give the same records."""

    mpans: int
    days: int
    start: date
    seed: int = 7
    business_fault_rate: float = 0.005
    malformed_rate: float = 0.002
    max_message_bytes: int = 1_048_576

    def __post_init__(self) -> None:
        if self.mpans < 1:
            raise ValueError("mpans must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        for name in ("business_fault_rate", "malformed_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        return d


def sent_timestamp(day: date, seconds: int) -> str:
    """``seconds`` after UTC midnight of ``day``, as the envelopes write times."""
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulationState:
    """The state the registration, consumption and reference-data parts of a run share.

    ``_emit`` counts every record in publication order; ``_note`` writes a fault to the manifest
    with the sequence number of the next record emitted.
    """

    params: SimulationParams
    market: Market
    faults: list[FaultEntry]
    counts: dict[str, int]
    _rng: np.random.Generator
    _fault_rng: np.random.Generator
    _factory: MessageFactory
    _business: FaultPicker
    _malformed: FaultPicker
    _seq: int
    _pending: dict[date, list[Callable[[], None]]]

    def _on(self, day: date, change: Callable[[], None]) -> None:
        """Make ``change`` to the market's state when ``day`` begins (before that day's consumption)."""
        self._pending.setdefault(day, []).append(change)

    def _apply_changes(self, day: date) -> None:
        """Every change that takes effect on ``day``, in the order they were sent."""
        for change in self._pending.pop(day, []):
            change()

    def _emit(self, record: SimRecord) -> SimRecord:
        self.counts[record.topic] = self.counts.get(record.topic, 0) + 1
        self._seq += 1
        return record

    def _note(self, record: SimRecord, kind: str, fault: str) -> None:
        self.faults.append(
            FaultEntry(
                seq=self._seq,
                topic=record.topic,
                key=record.key.decode() if record.key else None,
                transaction_id=record.transaction_id,
                kind=kind,
                fault=fault,
                expected_code=MALFORMED_FAULTS.get(fault) if kind == "malformed" else None,
                rule=BUSINESS_FAULTS.get(fault) if kind == "business" else None,
            )
        )
