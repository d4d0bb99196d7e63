"""The validation process gives the worker's own verdicts, and a child that dies loses nothing."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import date

import pytest

from ingest.pipeline import ValidationProcess
from ingest.validate import RecordValidator, Verdicts, judge
from market.simulation import Simulation, SimulationParams


@pytest.fixture(scope="module")
def batch() -> tuple[list[str], list[bytes | None]]:
    sim = Simulation(SimulationParams(mpans=40, days=2, start=date(2026, 3, 28), seed=5))
    records = list(sim.records())
    topics, values = [r.topic for r in records], [r.value for r in records]
    bad = [None, b"{not json", b"\xff\xfe", b"[]", records[0].value]  # and one on a topic it does not belong to
    return topics + [records[0].topic] * 4 + ["mhhs.consumption.if-021"], values + bad


@pytest.fixture()
def child() -> Iterator[ValidationProcess]:
    process = ValidationProcess(1 << 20)
    yield process
    process.close()


def _here(batch: tuple[list[str], list[bytes | None]]) -> Verdicts:
    return judge(RecordValidator(1 << 20), *batch)


def test_the_validation_process_gives_the_verdicts_the_worker_would(
    child: ValidationProcess, batch: tuple[list[str], list[bytes | None]]
) -> None:
    want = _here(batch)
    assert want.accepted and set(want.codes) == {
        "tombstone",
        "invalid_json",
        "invalid_utf8",
        "invalid_envelope",
        "topic_mismatch",
    }
    got = child.result(child.submit(*batch), *batch, RecordValidator(1 << 20))
    assert got == want


def test_a_validation_process_that_dies_is_replaced_and_its_batch_validated_here(
    child: ValidationProcess, batch: tuple[list[str], list[bytes | None]]
) -> None:
    want = _here(batch)
    assert child.result(child.submit(*batch), *batch, RecordValidator(1 << 20)) == want  # started and working
    for pid in list(child._pool._processes):
        os.kill(pid, signal.SIGKILL)
    future = child.submit(*batch)
    assert child.result(future, *batch, RecordValidator(1 << 20)) == want  # nothing lost
    again = child.submit(*batch)  # and the next batch goes to a new process
    assert again.result(timeout=60) == want
