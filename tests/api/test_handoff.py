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
        replayed, quarantined, resume = _replay(client, headers, params)

    # 5. it resumes the live broker exactly where the replay ends
    live = [(r.partition, r.offset, r.value) for r in read_from(kafka_bootstrap, api_version, TOPIC, resume)]
    assert live, "the third batch should only be reachable on Kafka"

    # every offset once: events byte-identical, quarantined records (other tests' malformed ones) accounted
    received = consumed + replayed + live
    truth = [(r.partition, r.offset, r.value) for r in read_from(kafka_bootstrap, api_version, TOPIC, {})]
    offsets = [(p, o) for p, o, _ in received] + quarantined
    assert len(offsets) == len(set(offsets)), "a record arrived twice"
    assert sorted(offsets) == sorted((p, o) for p, o, _ in truth), "a record was lost"
    by_offset = {(p, o): v for p, o, v in truth}
    assert all(by_offset[(p, o)] == v for p, o, v in received), "an event was altered"


def _replay(
    client: TestClient, headers: dict[str, str], params: dict[str, object]
) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, int]], dict[int, int]]:
    """Page through a replay: (partition, offset, value) of events, (partition, offset) of quarantined, resume."""
    events: list[tuple[int, int, bytes]] = []
    quarantined: list[tuple[int, int]] = []
    while True:
        resp = client.get(f"/v1/replays/{TOPIC}", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        docs = [orjson.loads(line) for line in resp.text.splitlines()]
        events += [(d["partition"], d["offset"], d["value"].encode()) for d in docs if d["type"] == "event"]
        quarantined += [(d["partition"], d["offset"]) for d in docs if d["type"] == "quarantined"]
        end = docs[-1]
        assert end["type"] == "end" and end["quarantined"] == sum(d["type"] == "quarantined" for d in docs)
        if not end["next_cursor"]:
            return events, quarantined, {int(p): n for p, n in end["resume_offsets"].items()}
        params = {"cursor": end["next_cursor"]}


def test_replay_from_zero_accounts_for_every_offset_malformed_ones_included(
    kafka_bootstrap: str, broker_settings: IngestSettings, tmp_path: object
) -> None:
    api_version = broker_settings.api_version_tuple()
    publish_market(kafka_bootstrap, broker_settings, mpans=80, days=1, seed=94, malformed_rate=0.05)
    lake = LakehouseSettings(warehouse=str(tmp_path) + "/warehouse")  # type: ignore[operator]
    settings = IngestSettings(kafka_bootstrap=kafka_bootstrap, group_id=f"every-{uuid.uuid4().hex[:6]}")
    IngestWorker(settings, lake, kafka_bootstrap).run(until_idle=4)
    publish_market(kafka_bootstrap, broker_settings, mpans=20, days=1, seed=95, malformed_rate=0.05)  # Kafka only
    api = ApiSettings(dev_mode=True)
    with TestClient(create_app(api, lake)) as client:
        mds = bearer(api, "MDSV", "MDS", ["replay"])
        events, quarantined, resume = _replay(client, mds, {"limit": 97})
        live = read_from(kafka_bootstrap, api_version, TOPIC, resume)
        offsets = [(p, o) for p, o, _ in events] + quarantined + [(r.partition, r.offset) for r in live]
        truth = {(r.partition, r.offset): r.value for r in read_from(kafka_bootstrap, api_version, TOPIC, {})}
        assert quarantined, "the market had malformed records: the test would prove little"
        assert len(offsets) == len(set(offsets)) and set(offsets) == set(truth)
        assert all(truth[(p, o)] == v for p, o, v in events)

        # raw bytes of a malformed record only for roles allowed them; a parameter leaves them out
        first_page = client.get(f"/v1/replays/{TOPIC}", params={"limit": 100_000}, headers=mds).text.splitlines()
        q_mds = [d for d in map(orjson.loads, first_page) if d["type"] == "quarantined"]
        assert q_mds and all("value" not in d and d["error_code"] for d in q_mds)
        auditor = bearer(api, "AUDT", "auditor", ["replay"])
        lines = client.get(f"/v1/replays/{TOPIC}", params={"limit": 100_000}, headers=auditor).text.splitlines()
        q_aud = [d for d in map(orjson.loads, lines) if d["type"] == "quarantined"]
        raw = {(d["partition"], d["offset"]): d.get("value") for d in q_aud}
        tombstones = [k for k, v in raw.items() if truth[k] is None]
        assert all(v is None for k, v in raw.items() if k in tombstones)
        assert any(v for v in raw.values())
        without = client.get(
            f"/v1/replays/{TOPIC}", params={"limit": 100_000, "include_quarantined": "false"}, headers=mds
        ).text.splitlines()
        assert not any(orjson.loads(line)["type"] == "quarantined" for line in without)
        assert orjson.loads(without[-1])["quarantined"] == 0
