"""The consumer-recovery hand-off, with the real broker: Kafka -> replay API -> Kafka, no gap, no overlap."""

from __future__ import annotations

import uuid

import orjson
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from ingest.kafka_client import read_from
from ingest.service import IngestWorker
from ingest.settings import IngestSettings
from lakehouse.settings import LakehouseSettings
from tests.support.claims import bearer
from tests.support.kafka import publish_market

TOPIC = "mhhs.consumption.if-021"


def test_consumer_recovers_over_the_api_and_rejoins_kafka_exactly_once(
    kafka_bootstrap: str, broker_settings: IngestSettings, tmp_path: object
) -> None:
    api_version = broker_settings.api_version_tuple()
    clean = {"business_fault_rate": 0.0, "malformed_rate": 0.0}
    publish_market(kafka_bootstrap, broker_settings, mpans=120, days=2, seed=91, **clean)

    # 1. a data service's consumer reads part of the topic, then goes down
    everything_so_far = read_from(kafka_bootstrap, api_version, TOPIC, {})
    stop_at = {
        p: max(r.offset for r in everything_so_far if r.partition == p) // 2
        for p in {r.partition for r in everything_so_far}
    }
    consumed = [(r.partition, r.offset, r.value) for r in everything_so_far if r.offset < stop_at[r.partition]]

    # 2. more is published while it is down, and ingest lands all of it
    publish_market(kafka_bootstrap, broker_settings, mpans=60, days=1, seed=92, **clean)
    lake = LakehouseSettings(warehouse=str(tmp_path) + "/warehouse")  # type: ignore[operator]
    worker_settings = IngestSettings(
        kafka_bootstrap=kafka_bootstrap, group_id=f"handoff-{uuid.uuid4().hex[:6]}", session_timeout_ms=6000
    )
    IngestWorker(worker_settings, lake, kafka_bootstrap).run(until_idle=4)

    # 3. and more still after the store's last commit: only Kafka has these
    publish_market(kafka_bootstrap, broker_settings, mpans=30, days=1, seed=93, **clean)

    # 4. it replays what it missed over the API, page by page
    api = ApiSettings(dev_mode=True)
    with TestClient(create_app(api, lake)) as client:
        headers = bearer(api, "MDSV", "MDS", ["replay"])
        params: dict[str, object] = {"from_offsets": ",".join(f"{p}:{o}" for p, o in stop_at.items()), "limit": 500}
        replayed = []
        while True:
            resp = client.get(f"/v1/replays/{TOPIC}", params=params, headers=headers)
            assert resp.status_code == 200, resp.text
            docs = [orjson.loads(line) for line in resp.text.splitlines()]
            replayed += [(d["partition"], d["offset"], d["value"].encode()) for d in docs if d["type"] == "event"]
            end = docs[-1]
            if not end["next_cursor"]:
                break
            params = {"cursor": end["next_cursor"]}
    resume = {int(p): n for p, n in end["resume_offsets"].items()}

    # 5. it resumes the live broker exactly where the replay ends
    live = [(r.partition, r.offset, r.value) for r in read_from(kafka_bootstrap, api_version, TOPIC, resume)]
    assert live, "the third batch should only be reachable on Kafka"

    received = consumed + replayed + live
    truth = [(r.partition, r.offset, r.value) for r in read_from(kafka_bootstrap, api_version, TOPIC, {})]
    assert len(received) == len(set((p, o) for p, o, _ in received)), "an event arrived twice"
    assert sorted(received) == sorted(truth), "an event was lost or altered"
