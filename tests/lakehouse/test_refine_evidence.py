"""One record never stops refine: values the table cannot hold are kept as evidence, periods it cannot place set aside.

Published through the real broker and landed by a real ingest worker; records an older contract let
through (times that are not real instants) are landed directly, as they would sit in a store today.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date

import orjson
import pyarrow.compute as pc
import pytest

from ingest.kafka_client import publish
from ingest.service import IngestWorker
from ingest.settings import IngestSettings
from ingest.topics import create_topics
from ingest.validate import RecordValidator, Rejection
from lakehouse.catalog import open_catalog
from lakehouse.read import read_table
from lakehouse.refine import rebuild_consumption, refine_consumption
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import CONSUMPTION, EVENTS, QUARANTINE, REFINE_REJECTS
from lakehouse.writer import LandingWriter
from market.messages import SimRecord, encode
from market.simulation import Simulation, SimulationParams
from tests.support.landing import decoded_batches

DAY = date(2026, 6, 3)


def _variant(rec: SimRecord, n: int, change: dict[int, dict[str, object]]) -> SimRecord:
    """``rec`` as a new transaction with some periods changed (index -> fields)."""
    doc = orjson.loads(rec.value or b"")
    doc["CommonBlock"]["D0"]["transactionID"] = f"T-EVID-{uuid.uuid4().hex[:8]}-{n}"
    for i, fields in change.items():
        doc["CustomBlock"]["periods"][i].update(fields)
    return encode(rec.topic, rec.key.decode() if rec.key else None, doc)


@pytest.fixture(scope="module")
def market() -> list[SimRecord]:
    sim = Simulation(SimulationParams(mpans=20, days=1, start=DAY, seed=7373, business_fault_rate=0, malformed_rate=0))
    return [r for r in sim.records() if r.interface == "IF-021"]


def test_values_beyond_the_decimal_are_refined_with_their_evidence(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings, market: list[SimRecord]
) -> None:
    huge = _variant(market[0], 1, {5: {"consumption": 1e12}})
    fine = _variant(market[1], 2, {7: {"consumption": 0.1234}})
    unreal = _variant(market[2], 3, {9: {"settlementPeriodEffectiveToDateTime": f"{DAY.isoformat()}T24:30:00Z"}})
    create_topics(broker_settings, kafka_bootstrap)
    publish(kafka_bootstrap, broker_settings.api_version_tuple(), [r.as_out() for r in (huge, fine, unreal)])
    settings = IngestSettings(kafka_bootstrap=kafka_bootstrap, group_id=f"evid-{uuid.uuid4().hex[:6]}")
    IngestWorker(settings, lake, kafka_bootstrap).run(until_idle=4)
    quarantined = read_table(lake, QUARANTINE, ["transaction_id", "error_code"]).to_pylist()
    assert {"transaction_id": unreal.transaction_id, "error_code": "schema_violation"} in quarantined  # not a real time

    catalog = open_catalog(lake)
    refine_consumption(catalog, lake)
    refine_consumption(catalog, lake)  # and again: nothing fails, nothing twice
    rows = read_table(lake, CONSUMPTION).to_pylist()
    ours = {huge.transaction_id, fine.transaction_id}
    by_txn = {
        (r["transaction_id"], r["refine_flag"]): r for r in rows if r["refine_flag"] and r["transaction_id"] in ours
    }
    assert set(by_txn) == {(huge.transaction_id, "out_of_range"), (fine.transaction_id, "excess_precision")}
    big = by_txn[(huge.transaction_id, "out_of_range")]
    assert big["consumption_kwh"] is None and float(big["consumption_raw"]) == 1e12
    precise = by_txn[(fine.transaction_id, "excess_precision")]
    assert str(precise["consumption_kwh"]) == "0.123" and precise["consumption_raw"] == "0.1234"
    assert Counter(r["transaction_id"] for r in rows)[huge.transaction_id] == 48  # the rest of its day refined


def test_periods_that_are_not_real_instants_are_set_aside_and_every_row_is_accounted_for(
    lake: LakehouseSettings, market: list[SimRecord]
) -> None:
    bad_end = _variant(market[3], 4, {0: {"settlementPeriodEffectiveToDateTime": f"{DAY.isoformat()}T24:30:00Z"}})
    no_day = _variant(market[4], 5, {1: {"settlementPeriodEffectiveToDateTime": "2026-02-30T10:00:00Z"}})
    older_contract = RecordValidator(1 << 20, check_formats=False)
    assert isinstance(RecordValidator(1 << 20).check(bad_end.topic, bad_end.value), Rejection)
    writer = LandingWriter(lake)
    records = [*market, bad_end, no_day]
    for events, quarantine, offsets in decoded_batches(records, 1, len(records), validator=older_contract):
        assert quarantine.num_rows == 0
        writer.commit(events, quarantine, "g", offsets, {}, max_attempts=5)
    catalog = open_catalog(lake)
    refine_consumption(catalog, lake, window_messages=7)  # several windows, several commits
    rejects = read_table(lake, REFINE_REJECTS).to_pylist()
    assert {(r["transaction_id"], r["reason"], r["value_as_sent"]) for r in rejects} == {
        (bad_end.transaction_id, "invalid_period_end", f"{DAY.isoformat()}T24:30:00Z"),
        (no_day.transaction_id, "invalid_period_end", "2026-02-30T10:00:00Z"),
    }
    consumption = read_table(lake, CONSUMPTION, ["source_offset", "source_partition"])
    events = read_table(lake, EVENTS, ["partition", "offset", "value"]).to_pylist()
    refined = Counter(zip(consumption["source_partition"].to_pylist(), consumption["source_offset"].to_pylist(),
                          strict=True))  # fmt: skip
    set_aside = Counter((r["source_partition"], r["source_offset"]) for r in rejects)
    for e in events:  # every period of every source event is in the typed table or among the rejects
        periods = len(orjson.loads(e["value"])["CustomBlock"]["periods"])
        assert refined[(e["partition"], e["offset"])] + set_aside[(e["partition"], e["offset"])] == periods
    before = read_table(lake, CONSUMPTION).num_rows
    rebuild_consumption(catalog, lake)
    assert read_table(lake, CONSUMPTION).num_rows == before and len(read_table(lake, REFINE_REJECTS)) == 2
    assert pc.sum(pc.is_null(read_table(lake, CONSUMPTION, ["period_end_utc"])["period_end_utc"])).as_py() == 0
