"""A paged replay outlives the snapshot it started from (expired by retention mid-replay), quarantine included."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from lakehouse.errors import SnapshotNotFoundError
from lakehouse.history import list_snapshots
from lakehouse.maintenance import expire_table
from lakehouse.offsets import committed_offsets
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import EVENTS, QUARANTINE
from lakehouse.writer import LandingWriter
from market.messages import SimRecord
from market.simulation import Simulation, SimulationParams
from tests.support.claims import bearer
from tests.support.landing import GROUP, decoded_batches

TOPIC = "mhhs.consumption.if-021"
NUMBERING: dict[tuple[str, int], int] = {}  # Kafka offsets carried on from one landing to the next


def _records(seed: int = 3) -> list[SimRecord]:
    sim = Simulation(SimulationParams(mpans=80, days=2, start=date(2026, 3, 28), seed=seed, malformed_rate=0.05))
    return list(sim.records())  # consumption, and most malformed records, from ~900 on


def _land(lake: LakehouseSettings, records: list[SimRecord]) -> None:
    writer = LandingWriter(lake)
    for events, quarantine, offsets in decoded_batches(records, 3, 300, NUMBERING):
        writer.commit(events, quarantine, GROUP, offsets, {}, max_attempts=5)


def _page(client: TestClient, headers: dict[str, str], **params: object) -> list[dict[str, Any]]:
    resp = client.get(f"/v1/replays/{TOPIC}", params=params, headers=headers)  # type: ignore[arg-type]
    assert resp.status_code == 200, resp.text
    return [orjson.loads(line) for line in resp.text.splitlines() if line]


def _landed(lake: LakehouseSettings) -> list[tuple[int, int]]:
    table = read_table(lake, EVENTS, ["topic", "partition", "offset"])
    columns = (table[c].to_pylist() for c in ("topic", "partition", "offset"))
    return sorted((p, o) for t, p, o in zip(*columns, strict=True) if t == TOPIC)


def _quarantined(lake: LakehouseSettings) -> list[tuple[int, int]]:
    q = read_table(lake, QUARANTINE, ["topic", "partition", "offset"]).to_pylist()
    return sorted((r["partition"], r["offset"]) for r in q if r["topic"] == TOPIC)


@pytest.fixture(scope="module")
def api_lake(api_root) -> LakehouseSettings:  # type: ignore[no-untyped-def]
    """Three batches landed; retention keeps only the newest snapshot once expired."""
    lake = LakehouseSettings(warehouse=str(api_root / "warehouse"), keep_last_snapshots=1, snapshot_retention_hours=0)
    _land(lake, _records()[:900])
    return lake


def test_a_replay_whose_snapshot_was_expired_goes_on_from_the_current_one(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    docs = _page(client, headers, limit=5)
    seen = [(d["partition"], d["offset"]) for d in docs if d["type"] == "event"]
    quarantined = [(d["partition"], d["offset"]) for d in docs if d["type"] == "quarantined"]
    first_snapshot, cursor = docs[-1]["snapshot_id"], docs[-1]["next_cursor"]
    assert cursor
    before = _quarantined(api_lake)
    # meanwhile more lands and retention expires the snapshot the cursor was pinned to
    _land(api_lake, _records()[900:])
    writer = LandingWriter(api_lake)
    expire_table(writer.events, api_lake, orphan_min_age=timedelta(days=1))
    assert first_snapshot not in {s.snapshot_id for s in list_snapshots(writer.events)}
    snapshots = set()
    while cursor:
        docs = _page(client, headers, cursor=cursor)
        seen += [(d["partition"], d["offset"]) for d in docs if d["type"] == "event"]
        quarantined += [(d["partition"], d["offset"]) for d in docs if d["type"] == "quarantined"]
        snapshots.add(docs[-1]["snapshot_id"])
        cursor = docs[-1]["next_cursor"]
    assert snapshots == {writer.events.current_snapshot().snapshot_id}  # type: ignore[union-attr]
    expected = _landed(api_lake)
    assert seen == expected  # everything once, in order: what landed later too
    # and every quarantined record: the quarantine pin, still retained, moved with the events one
    assert len(_quarantined(api_lake)) > len(before)  # some were quarantined after the first page
    assert sorted(quarantined) == _quarantined(api_lake)
    # and it ends where the store now stands
    resume = {int(p): n for p, n in docs[-1]["resume_offsets"].items()}
    held = {p: n for (t, p), n in committed_offsets(writer.events, GROUP).items() if t == TOPIC}
    assert held and resume == {p: held.get(p, 0) for p in resume}


def test_a_replay_whose_quarantine_snapshot_alone_was_expired_goes_on(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings
) -> None:
    # quarantine commits seldom: its pin can be the one that ages out while the events pin is kept
    _land(api_lake, _records(seed=4)[900:])  # whatever ran before: quarantined records to pin
    writer = LandingWriter(api_lake)
    qpinned = writer.quarantine.current_snapshot().snapshot_id  # type: ignore[union-attr]
    expected = _quarantined(api_lake)  # all below the events pin's offsets
    headers = bearer(api_settings, "MDSV", "MDS")
    docs = _page(client, headers, limit=5)
    quarantined = [(d["partition"], d["offset"]) for d in docs if d["type"] == "quarantined"]
    pinned, cursor = docs[-1]["snapshot_id"], docs[-1]["next_cursor"]
    assert cursor
    _land(api_lake, _records(seed=5)[900:])  # new quarantine snapshots after the pinned one
    expire_table(writer.quarantine, api_lake, orphan_min_age=timedelta(days=1))
    assert qpinned not in {s.snapshot_id for s in list_snapshots(writer.quarantine)}
    assert pinned in {s.snapshot_id for s in list_snapshots(writer.events)}
    while cursor:
        docs = _page(client, headers, cursor=cursor)
        assert docs[-1]["snapshot_id"] == pinned  # the events pin held
        quarantined += [(d["partition"], d["offset"]) for d in docs if d["type"] == "quarantined"]
        cursor = docs[-1]["next_cursor"]
    assert len(_quarantined(api_lake)) > len(expected)  # the newer records are past the replay's end
    assert sorted(quarantined) == expected  # was: none, read from the expired snapshot


def test_a_pin_expired_between_resolving_and_reading_a_page_is_repinned(
    client: TestClient, api_settings: ApiSettings, api_lake: LakehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = bearer(api_settings, "MDSV", "MDS")
    docs = _page(client, headers, limit=5)
    seen = [(d["partition"], d["offset"]) for d in docs if d["type"] == "event"]
    pinned, cursor = docs[-1]["snapshot_id"], docs[-1]["next_cursor"]
    assert cursor
    writer = LandingWriter(api_lake)
    original = Store.held_offsets
    raced: list[int] = []

    def expired_meanwhile(store: Store, snapshot_id: int | None) -> dict[tuple[str, int], int]:
        if snapshot_id == pinned and not raced:  # the pin resolved; retention takes it before the read
            raced.append(snapshot_id)
            _land(api_lake, _records(seed=6)[900:])
            expire_table(writer.events, api_lake, orphan_min_age=timedelta(days=1))
        return original(store, snapshot_id)

    monkeypatch.setattr(Store, "held_offsets", expired_meanwhile)
    while cursor:
        docs = _page(client, headers, cursor=cursor)  # 200, was: 404 snapshot_not_found
        seen += [(d["partition"], d["offset"]) for d in docs if d["type"] == "event"]
        cursor = docs[-1]["next_cursor"]
    assert raced == [pinned]
    assert pinned not in {s.snapshot_id for s in list_snapshots(writer.events)}
    with pytest.raises(SnapshotNotFoundError):  # not "holds nothing", which a page read as the end
        original(Store(api_lake), pinned)
    expected = _landed(api_lake)
    assert seen == expected  # everything once, in order (a page read as empty ended the replay early)
