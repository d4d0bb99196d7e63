"""Ingest against the real broker: every record lands exactly once, malformed ones in quarantine."""

from __future__ import annotations

import random
import signal
import time
import uuid
from pathlib import Path

from ingest.service import IngestWorker
from ingest.settings import IngestSettings
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.tables import EVENTS, QUARANTINE
from tests.support.kafka import (
    assert_exactly_once,
    free_port,
    ingest_env,
    kafka_inventory,
    publish_market,
    spawn_ingest,
    wait_until_consumed,
)


def _worker(bootstrap: str, lake: LakehouseSettings, group: str, **kw: object) -> IngestWorker:
    settings = IngestSettings(kafka_bootstrap=bootstrap, group_id=group, session_timeout_ms=6000, **kw)  # type: ignore[arg-type]
    return IngestWorker(settings, lake, bootstrap)


def test_malformed_matrix_is_quarantined_with_its_code_and_good_records_land(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings
) -> None:
    sim = publish_market(
        kafka_bootstrap, broker_settings, mpans=300, days=1, seed=21, business_fault_rate=0.04, malformed_rate=0.06
    )
    worker = _worker(kafka_bootstrap, lake, f"matrix-{uuid.uuid4().hex[:6]}", batch_max_records=2000)
    stats = worker.run(until_idle=4)
    assert stats.commits >= 1
    assert_exactly_once(kafka_bootstrap, broker_settings, lake)
    # where the time went, per stage, in the run's stats and the metrics alike
    assert all(stats.stage_seconds[s] > 0 for s in ("poll", "decode", "commit")), stats.stage_seconds
    registry = worker.metrics.registry
    for stage, spent in stats.stage_seconds.items():
        assert registry.get_sample_value("mhhs_ingest_stage_seconds_total", {"stage": stage}) == spent

    q = read_table(lake, QUARANTINE, ["transaction_id", "error_code", "error_reason", "value"]).to_pylist()
    by_txn = {}
    for row in q:
        by_txn.setdefault(row["transaction_id"], []).append(row)
    expected = [f for f in sim.faults if f.kind == "malformed"]
    assert {f.expected_code for f in expected} >= {
        "invalid_json",
        "invalid_utf8",
        "invalid_envelope",
        "schema_violation",
        "unknown_interface",
        "unknown_schema_version",
        "missing_settlement_date",
        "invalid_settlement_date",
        "tombstone",
        "oversized",
        "topic_mismatch",
    }
    for fault in expected:
        rows = by_txn.get(fault.transaction_id)
        assert rows, f"{fault.fault} ({fault.transaction_id}) is not in quarantine"
        assert fault.expected_code in {r["error_code"] for r in rows}, (fault, rows)
        assert all(r["error_reason"] for r in rows)
    # business-rule defects are not ingest's business: they land as ordinary events
    events = read_table(lake, EVENTS, ["transaction_id", "value"])
    landed_txns = set(events["transaction_id"].to_pylist())
    for fault in (f for f in sim.faults if f.kind == "business"):
        assert fault.transaction_id in landed_txns, fault


def test_values_are_stored_byte_for_byte(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings
) -> None:
    sim = publish_market(
        kafka_bootstrap, broker_settings, mpans=40, days=1, seed=33, malformed_rate=0.0, business_fault_rate=0.0
    )
    produced = {}
    for rec in sim.published:  # type: ignore[attr-defined]
        produced[rec.transaction_id] = rec.value
    worker = _worker(kafka_bootstrap, lake, f"bytes-{uuid.uuid4().hex[:6]}")
    worker.run(until_idle=3)
    events = read_table(lake, EVENTS, ["transaction_id", "value", "settlement_date", "interface_id"]).to_pylist()
    matched = 0
    for row in events:
        if row["transaction_id"] in produced:
            assert row["value"] == produced[row["transaction_id"]]
            matched += 1
    assert matched == len(produced)


def test_exactly_once_under_repeated_kill_9(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings, tmp_path: Path
) -> None:
    publish_market(kafka_bootstrap, broker_settings, mpans=300, days=2, seed=44)
    env = ingest_env(
        kafka_bootstrap,
        lake,
        f"kill-{uuid.uuid4().hex[:6]}",
        MHHS_BATCH_MAX_RECORDS="400",
        MHHS_BATCH_MAX_SECONDS="0.3",
    )
    rng = random.Random(9)
    log = tmp_path / "ingest.log"
    kills = 0
    while kills < 5:
        proc = spawn_ingest(env, until_idle=30, log=log)
        time.sleep(rng.uniform(3.0, 7.0))
        if proc.poll() is not None:
            break  # it finished everything before we could kill it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills == 5, "ingest finished before 5 kills: make the data set larger"
    final = spawn_ingest(env, until_idle=6, log=log)
    assert final.wait(timeout=300) == 0, log.read_text()[-2000:]
    assert assert_exactly_once(kafka_bootstrap, broker_settings, lake) > 3000


def test_sigterm_commits_the_batch_in_hand_and_exits_zero(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings, tmp_path: Path
) -> None:
    publish_market(kafka_bootstrap, broker_settings, mpans=60, days=1, seed=55)
    on_broker = len(kafka_inventory(kafka_bootstrap, broker_settings)[0])
    port = free_port()
    env = ingest_env(
        kafka_bootstrap,
        lake,
        f"term-{uuid.uuid4().hex[:6]}",
        MHHS_BATCH_MAX_SECONDS="3600",
        MHHS_BATCH_MAX_RECORDS="10000000",
        MHHS_BATCH_MAX_BYTES=str(1 << 40),
        MHHS_METRICS_PORT=str(port),
    )
    log = tmp_path / "ingest.log"
    proc = spawn_ingest(env, until_idle=600, log=log)
    # wait until the worker holds every record on the broker in its (uncommitted) batch, however long that takes
    wait_until_consumed(port, on_broker, proc, timeout_s=300)
    assert read_table(lake, EVENTS, ["offset"]).num_rows == 0  # nothing was due by size or time
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, log.read_text()[-2000:]
    landed = read_table(lake, EVENTS, ["offset"]).num_rows + read_table(lake, QUARANTINE, ["offset"]).num_rows
    assert landed == on_broker  # only SIGTERM committed it, all of it
    assert_exactly_once(kafka_bootstrap, broker_settings, lake)


def test_ingest_refines_the_typed_tables_as_it_goes(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings
) -> None:
    from lakehouse.catalog import open_catalog
    from lakehouse.refine import refine_consumption
    from lakehouse.tables import CONSUMPTION, REGISTRATION

    publish_market(kafka_bootstrap, broker_settings, mpans=60, days=1, seed=34)
    refining = lake.model_copy(update={"refine_every_commits": 1})
    # the session's broker also holds earlier tests' records: large batches keep the commits (and refines) few
    worker = _worker(kafka_bootstrap, refining, f"refine-{uuid.uuid4().hex[:6]}", batch_max_records=5000)
    stats = worker.run(until_idle=4)
    assert stats.commits >= 1
    during = read_table(lake, CONSUMPTION)
    assert during.num_rows > 0 and read_table(lake, REGISTRATION).num_rows > 0
    assert refine_consumption(open_catalog(lake), lake).rows == 0  # every commit was refined already


def test_a_broker_that_never_answers_at_start_is_waited_for_then_a_clear_error(
    lake: LakehouseSettings, tmp_path: Path
) -> None:
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = ingest_env(nobody, lake, f"absent-{uuid.uuid4().hex[:6]}", MHHS_BROKER_WAIT_SECONDS="12")
    log = tmp_path / "ingest.log"
    started = time.monotonic()
    proc = spawn_ingest(env, until_idle=5, log=log)
    assert proc.wait(timeout=180) == 1
    assert time.monotonic() - started >= 12  # it waited before giving up
    text = log.read_text()
    assert "broker_unavailable_waiting" in text and "MHHS_BROKER_WAIT_SECONDS" in text
    assert "Traceback" not in text
