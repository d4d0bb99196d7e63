"""Ingest under rebalances and broker outages, with the real broker: still exactly once."""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from devstack.kafka import LocalBrokerConfig, start_local_broker, stop_local_broker
from devstack.settings import DevstackSettings
from ingest.settings import IngestSettings
from lakehouse.settings import LakehouseSettings
from tests.support.kafka import (
    assert_exactly_once,
    ingest_env,
    kafka_inventory,
    publish_market,
    spawn_ingest,
    wait_until_landed,
)


def test_two_workers_and_a_third_joining_mid_run_land_everything_once(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings, tmp_path: Path
) -> None:
    publish_market(kafka_bootstrap, broker_settings, mpans=300, days=2, seed=66)
    env = ingest_env(
        kafka_bootstrap,
        lake,
        f"trio-{uuid.uuid4().hex[:6]}",
        MHHS_BATCH_MAX_RECORDS="300",
        MHHS_BATCH_MAX_SECONDS="0.3",
    )
    log = tmp_path / "ingest.log"
    first = [spawn_ingest({**env, "MHHS_WORKER_ID": f"w{i}"}, until_idle=15, log=log) for i in (1, 2)]
    time.sleep(8)
    third = spawn_ingest({**env, "MHHS_WORKER_ID": "w3"}, until_idle=15, log=log)
    for proc in [*first, third]:
        assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert assert_exactly_once(kafka_bootstrap, broker_settings, lake) > 3000


def test_one_command_runs_two_group_members_that_land_everything_once(
    kafka_bootstrap: str, broker_settings: IngestSettings, lake: LakehouseSettings, tmp_path: Path
) -> None:
    publish_market(kafka_bootstrap, broker_settings, mpans=200, days=1, seed=67)
    env = ingest_env(kafka_bootstrap, lake, f"duo-{uuid.uuid4().hex[:6]}", MHHS_WORKER_ID="duo", MHHS_LOG_LEVEL="INFO")
    log = tmp_path / "ingest.log"
    proc = spawn_ingest(env, 6, log, "--processes", "2")
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assigned = [orjson.loads(line) for line in text.splitlines() if '"partitions_assigned"' in line]
    # both joined the group and were given partitions (how the records split between them is timing)
    assert {a["worker"] for a in assigned if a["partitions"] > 0} == {"duo-0", "duo-1"}, text[-3000:]
    assert set(re.findall(r"ingest (duo-\d): consumed \d+", text)) == {"duo-0", "duo-1"}
    assert "2 processes ended, exit codes [0, 0]" in text
    assert assert_exactly_once(kafka_bootstrap, broker_settings, lake) > 1000


@pytest.fixture()
def own_broker(tmp_path: Path) -> Iterator[LocalBrokerConfig]:
    """A broker private to one test, so it can be stopped and restarted."""
    config = DevstackSettings(kafka_data_dir=tmp_path / "kafka").broker()
    start_local_broker(config)
    yield config
    stop_local_broker(config)


def test_broker_stopped_and_restarted_mid_run_loses_nothing(
    own_broker: LocalBrokerConfig, lake: LakehouseSettings, tmp_path: Path
) -> None:
    broker = start_local_broker(own_broker)  # idempotent: the running one
    settings = IngestSettings(kafka_bootstrap=broker.bootstrap)
    publish_market(broker.bootstrap, settings, mpans=300, days=2, seed=77)
    env = ingest_env(
        broker.bootstrap,
        lake,
        f"outage-{uuid.uuid4().hex[:6]}",
        MHHS_BATCH_MAX_RECORDS="300",
        MHHS_BATCH_MAX_SECONDS="0.3",
    )
    log = tmp_path / "ingest.log"
    proc = spawn_ingest(env, until_idle=600, log=log)  # stopped by SIGTERM once everything has landed
    time.sleep(6)
    assert stop_local_broker(own_broker)
    time.sleep(8)
    again = start_local_broker(own_broker)
    assert again.bootstrap == broker.bootstrap
    publish_market(broker.bootstrap, settings, mpans=100, days=1, seed=78)  # more after the outage
    on_broker = len(kafka_inventory(broker.bootstrap, settings)[0])
    wait_until_landed(lake, on_broker, proc, timeout_s=600)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    assert assert_exactly_once(broker.bootstrap, settings, lake) == on_broker
