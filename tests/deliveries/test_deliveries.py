"""Deliveries to third parties: grants, incremental signed deliveries, verification, crashes, two schedulers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from access.grants import Grant, GrantError
from access.policy import load_policy
from deliveries.errors import VerificationError
from deliveries.registry import GrantRegistry
from deliveries.runner import DeliveryRunner
from deliveries.scheduler import FailureBackoff
from deliveries.settings import DeliveriesSettings
from deliveries.signing import load_or_create_key, public_keys_from_jwks
from deliveries.verify import verify_delivery
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import DELIVERIES
from market.simulation import Simulation
from tests.support.markets import land_records, simulated

START = date(2026, 7, 6)
SECRET = b"test-mask-secret"


def _runner(lake: LakehouseSettings, root: Path) -> DeliveryRunner:
    settings = DeliveriesSettings(signing_key_file=root / "key.pem", jwks_file=root / "jwks.json")
    key = load_or_create_key(settings.signing_key_file, settings.jwks_file)
    return DeliveryRunner(Store(lake), load_policy(), key, settings, SECRET)


def _grant(sim: Simulation, root: Path, **kw: object) -> Grant:
    mpans = tuple(sorted(mp.mpan for mp in sim.market.meter_points)[:12])
    base: dict[str, object] = {
        "grant_id": "research-1",
        "recipient": "UNIV",
        "dataset": "consumption",
        "schedule": "0 6 * * *",
        "destination": str(root / "out"),
        "approved_by": "ops",
        "mpans": mpans,
        "valid_from": datetime.now(UTC) - timedelta(days=1),
    }
    base.update(kw)
    return Grant(**base)  # type: ignore[arg-type]


@pytest.fixture()
def market(tmp_path: Path) -> tuple[Simulation, list, LakehouseSettings]:  # type: ignore[type-arg]
    sim, records = simulated(80, 3, START, 808, 0.0)
    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    return sim, records, lake


def _keys(root: Path) -> dict:  # type: ignore[type-arg]
    return public_keys_from_jwks(orjson.loads((root / "jwks.json").read_bytes()))


def test_grant_lifecycle_and_refusals(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records[:200])
    registry = GrantRegistry(Store(lake), load_policy())
    grant = registry.add(_grant(sim, tmp_path))
    assert grant.version == 1 and registry.get("research-1").status == "active"
    amended = registry.amend("research-1", "ops2", schedule="0 7 * * *")
    assert amended.version == 2 and amended.schedule == "0 7 * * *"
    revoked = registry.revoke("research-1", "ops3")
    assert revoked.status == "revoked" and [g.version for g in registry.history("research-1")] == [1, 2, 3]
    refusals = {
        "bad cron": {"schedule": "every day"},
        "unknown dataset": {"dataset": "everything"},
        "unknown column": {"columns": ("nope",)},
        "looser masking": {"masking": {"mpan": "keep"}},
        "a column the policy withholds": {"columns": ("consumption_kwh",)},
        "a bad MPAN": {"mpans": ("123",)},
    }
    for what, change in refusals.items():
        with pytest.raises(GrantError):
            registry.add(_grant(sim, tmp_path, grant_id=f"bad-{what.replace(' ', '-')}", **change))
    stricter = registry.add(_grant(sim, tmp_path, grant_id="strict", masking={"participants": "remove"}))
    assert stricter.masking == {"participants": "remove"}


def test_incremental_deliveries_add_up_to_one_full_extract_with_no_row_twice(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    day2 = f'"utcSettlementDate":"{START + timedelta(days=1)}"'.encode()
    third = next(i for i, r in enumerate(records) if r.interface == "IF-021" and day2 in (r.value or b""))
    land_records(lake, records[:third])  # the first day; the rest lands after the first delivery
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path))
    first = runner.run(["research-1"])[0]
    assert first.status == "made" and first.rows > 0
    assert runner.run(["research-1"])[0].status == "nothing new"  # the same window is never delivered twice
    land_records(lake, records[third:], 2, earlier=records[:third])
    second = runner.run(["research-1"])[0]
    assert second.status == "made" and second.delivery_id != first.delivery_id
    full = runner.run(["research-1"], full=True)[0]
    union = Counter()
    for outcome in (first, second):
        union.update(_keys_of(Path(outcome.location or "")))
    everything = Counter(_keys_of(Path(full.location or "")))
    assert union == everything and max(union.values()) == 1
    for outcome in (first, second, full):
        verify_delivery(Path(outcome.location or ""), _keys(tmp_path))
    recorded = read_table(lake, DELIVERIES).to_pylist()
    assert sorted(r["delivery_id"] for r in recorded) == sorted(o.delivery_id for o in (first, second, full))


def _keys_of(directory: Path) -> list[tuple[object, ...]]:
    rows = []
    for f in sorted(directory.glob("part-*.parquet")):
        t = pq.read_table(f)
        names = (
            ("mpan", "period_end_utc", "transaction_id")
            if "period_end_utc" in t.column_names
            else ("topic", "partition", "offset")
        )
        rows += list(zip(*(t[n].to_pylist() for n in names), strict=True))
    return rows


@pytest.mark.parametrize("dataset", ["consumption", "events"])
def test_incremental_delivery_after_expiry_and_compaction_has_every_new_row_once(  # type: ignore[no-untyped-def]
    market, tmp_path: Path, dataset: str
) -> None:
    """The snapshots between two deliveries expired (a ceiling) and the files compacted meanwhile:
    the next delivery still has exactly the rows added since the last one."""
    from lakehouse.maintenance import compact_table, expire_old_snapshots
    from lakehouse.read import _ancestors
    from lakehouse.tables import CONSUMPTION, EVENTS

    sim, records, lake = market
    consumption = [i for i, r in enumerate(records) if r.interface == "IF-021"]
    third = consumption[len(consumption) // 6]  # halfway through the first day: its partitions get both
    land_records(lake, records[:third])
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path, dataset=dataset))
    first = runner.run(["research-1"])[0]
    assert first.status == "made" and first.rows > 0
    land_records(lake, records[third:], 2, earlier=records[:third])  # two more ingest commits, then a refine
    store = Store(lake)
    source = store.table(EVENTS if dataset == "events" else CONSUMPTION)
    assert compact_table(source).partitions_rewritten > 0  # old and new rows now share files
    ceiling = lake.model_copy(update={"max_snapshots": 1, "keep_last_snapshots": 1})
    assert expire_old_snapshots(source, ceiling) > 0
    source.refresh()
    tag = source.metadata.refs["delivery-research-1"].snapshot_id
    assert tag not in _ancestors(source, source.metadata.current_snapshot_id or 0)  # the chain is gone
    second = runner.run(["research-1"])[0]
    assert second.status == "made" and second.rows > 0
    full = runner.run(["research-1"], full=True)[0]
    union = Counter(_keys_of(Path(first.location or ""))) + Counter(_keys_of(Path(second.location or "")))
    assert union == Counter(_keys_of(Path(full.location or ""))) and max(union.values()) == 1


def test_verify_names_what_is_wrong(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records)
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path))
    where = Path(runner.run(["research-1"])[0].location or "")
    verify_delivery(where, _keys(tmp_path))
    part = next(where.glob("part-*"))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="sha256"):
        verify_delivery(where, _keys(tmp_path))
    part.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(VerificationError, match="bytes"):
        verify_delivery(where, _keys(tmp_path))
    runner2 = _runner(lake, tmp_path / "other")  # another key: its JWKS does not know this delivery's signer
    with pytest.raises(VerificationError, match="no public key"):
        verify_delivery(where, _keys(tmp_path / "other"))
    manifest = where / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"rows"', b'"rows" ', 1))
    with pytest.raises(VerificationError, match="signature"):
        verify_delivery(where, _keys(tmp_path))
    assert runner2  # its key exists, and it signed nothing here


def test_revoked_or_expired_grants_deliver_nothing_more(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records)
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path))
    runner.registry.add(_grant(sim, tmp_path, grant_id="ended", valid_to=datetime.now(UTC) - timedelta(minutes=1),
                               valid_from=datetime.now(UTC) - timedelta(days=2)))  # fmt: skip
    runner.registry.revoke("research-1", "ops")
    outcomes = {o.grant_id: o.status for o in runner.run()}
    assert outcomes == {"research-1": "not active (revoked)", "ended": "not active (active)"}
    assert read_table(lake, DELIVERIES).num_rows == 0


def test_one_grant_failing_does_not_stop_the_others(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records[:300])
    (tmp_path / "a-file").write_bytes(b"not a directory")
    runner = _runner(lake, tmp_path)
    runner.registry.add(
        _grant(sim, tmp_path, grant_id="broken", dataset="events", destination=str(tmp_path / "a-file"))
    )
    runner.registry.add(_grant(sim, tmp_path, grant_id="fine", dataset="events"))
    outcomes = {o.grant_id: o for o in runner.run()}
    assert outcomes["broken"].status.startswith("failed:") and outcomes["fine"].status == "made"
    assert [r["grant_id"] for r in read_table(lake, DELIVERIES).to_pylist()] == ["fine"]
    (tmp_path / "a-file").unlink()  # the destination fixed, a re-run delivers the failed grant
    assert {o.grant_id: o.status for o in runner.run()} == {"broken": "made", "fine": "nothing new"}


def test_the_scheduler_backs_off_a_failing_grant_and_resumes_it_once_fixed(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records[:300])
    (tmp_path / "a-file").write_bytes(b"not a directory")
    runner = _runner(lake, tmp_path)
    every_minute = {"dataset": "events", "schedule": "* * * * *"}
    runner.registry.add(_grant(sim, tmp_path, grant_id="broken", destination=str(tmp_path / "a-file"), **every_minute))
    runner.registry.add(_grant(sim, tmp_path, grant_id="fine", **every_minute))
    backoff = FailureBackoff()
    t0 = datetime.now(UTC)

    def tick(at: datetime) -> dict[str, str]:
        outcomes = runner.run(due=True, held_back=backoff.held_back(at))
        backoff.record(outcomes, at)
        return {o.grant_id: o.status for o in outcomes}

    first = tick(t0)
    assert first["broken"].startswith("failed:") and first["fine"] == "made"
    assert tick(t0 + timedelta(seconds=59))["broken"].startswith("held back after failing")  # not read again
    assert tick(t0 + timedelta(minutes=1))["broken"].startswith("failed:")  # tried again after 1 minute
    assert set(backoff.held_back(t0 + timedelta(minutes=2, seconds=59))) == {"broken"}  # then after 2 more
    assert tick(t0 + timedelta(minutes=3))["broken"].startswith("failed:")
    at, waits = t0 + timedelta(minutes=3), []
    for _ in range(6):  # each time it fails again, twice as long, at most an hour
        retry = backoff.held_back(at)["broken"]
        waits.append(round((retry - at).total_seconds() / 60))
        at = retry
        assert tick(at)["broken"].startswith("failed:")
    assert waits == [4, 8, 16, 32, 60, 60]
    (tmp_path / "a-file").unlink()  # fixed: the scheduler's next try delivers it ...
    at = backoff.held_back(at)["broken"]
    assert tick(at)["broken"] == "made"
    assert backoff.held_back(at) == {}  # ... and from then on it is tried on its schedule again
    assert [r["grant_id"] for r in read_table(lake, DELIVERIES).to_pylist()].count("broken") == 1


def test_a_crash_between_recording_and_tagging_loses_no_start(  # type: ignore[no-untyped-def]
    market, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery is recorded, then the process dies before moving its tag; a ceiling expires
    everything untagged: the next delivery still starts where the recorded one ended."""
    from lakehouse.maintenance import expire_old_snapshots
    from lakehouse.tables import EVENTS

    sim, records, lake = market
    thirds = (len(records) // 3, 2 * len(records) // 3)
    land_records(lake, records[: thirds[0]])
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path, dataset="events"))
    first = runner.run()[0]
    land_records(lake, records[thirds[0] : thirds[1]], 2, earlier=records[: thirds[0]])
    real = Store.move_tag

    def dies_after_recording(self: Store, name: str, tag: str, snapshot_id: int, **kw: object) -> None:
        if tag == "delivery-research-1" and snapshot_id != first_to:
            raise KeyboardInterrupt  # the process is killed: not an error the run could catch
        real(self, name, tag, snapshot_id, **kw)  # type: ignore[arg-type]

    first_to = int(read_table(lake, DELIVERIES).to_pylist()[0]["snapshot_to"])
    monkeypatch.setattr(Store, "move_tag", dies_after_recording)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    monkeypatch.setattr(Store, "move_tag", real)
    second = next(r for r in read_table(lake, DELIVERIES).to_pylist() if r["snapshot_to"] != first_to)
    land_records(lake, records[thirds[1] :], 2, earlier=records[: thirds[1]])
    ceiling = lake.model_copy(update={"max_snapshots": 1, "keep_last_snapshots": 1})
    assert expire_old_snapshots(Store(lake).table(EVENTS), ceiling) > 0
    third = runner.run()[0]
    assert third.status == "made"
    full = runner.run(full=True)[0]
    union = Counter(_keys_of(Path(first.location or ""))) + Counter(_keys_of(Path(second["location"])))
    union += Counter(_keys_of(Path(third.location or "")))
    assert union == Counter(_keys_of(Path(full.location or ""))) and max(union.values()) == 1


def test_a_delivery_whose_start_is_gone_says_deliver_full_and_leaves_no_files(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lakehouse.maintenance import expire_old_snapshots
    from lakehouse.tables import EVENTS

    sim, records, lake = market
    half = len(records) // 2
    land_records(lake, records[:half])
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path, dataset="events"))
    assert runner.run()[0].status == "made"
    land_records(lake, records[half:], 2, earlier=records[:half])
    store = Store(lake)
    for tag in ("delivery-research-1", "delivery-research-1-next"):  # an operator removed the tags
        store.remove_tag(EVENTS, tag)
    ceiling = lake.model_copy(update={"max_snapshots": 1, "keep_last_snapshots": 1})
    assert expire_old_snapshots(store.table(EVENTS), ceiling) > 0
    failed = runner.run()[0]
    assert failed.status.startswith("failed:") and "deliver with --full" in failed.status
    made = [p for p in (tmp_path / "out" / "research-1").iterdir() if any(p.iterdir())]
    assert len(made) == 1  # the first delivery only: nothing half-written beside it
    assert runner.run(full=True)[0].status == "made"


def test_delivered_files_leak_nothing_a_third_party_may_not_see(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records)
    runner = _runner(lake, tmp_path)
    grant = runner.registry.add(_grant(sim, tmp_path, dataset="events", format="ndjson"))
    where = Path(runner.run([grant.grant_id])[0].location or "")
    body = b"".join(p.read_bytes() for p in where.glob("part-*"))
    assert body
    raw = {mp.mpan for mp in sim.market.meter_points}
    assert not [m for m in raw if m.encode() in body]  # tokens only
    assert b'"consumption"' not in body and b"postcode" not in body and b"meterIDs" not in body
    aggregate = runner.registry.add(_grant(sim, tmp_path, grant_id="agg", dataset="consumption_aggregate", mpans=()))
    where = Path(runner.run([aggregate.grant_id])[0].location or "")
    table = pq.read_table(next(where.glob("part-*")))
    assert "mpan" not in table.column_names and all(n >= 5 for n in table["mpans"].to_pylist())


def test_a_delivery_killed_midway_is_completed_once_by_a_rerun(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records)
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path, mpans=()))
    env = {
        **os.environ,
        "MHHS_WAREHOUSE": lake.warehouse,
        "MHHS_DELIVERIES_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        "MHHS_DELIVERIES_JWKS_FILE": str(tmp_path / "jwks.json"),
        "MHHS_DELIVERIES_MASK_SECRET": SECRET.decode(),
        "MHHS_DELIVERIES_FILE_ROWS": "200",  # many small files: there is a middle to die in
        "MHHS_DELIVERIES_BATCH_ROWS": "100",
        "MHHS_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "mhhs", "deliveries", "run", "--grant", "research-1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out_dir = tmp_path / "out" / "research-1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out_dir.glob("*/part-00003.*")):
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert not list(out_dir.glob("*/manifest.json")), "killed before it finished: no manifest may exist"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    [delivery] = list(out_dir.iterdir())
    verify_delivery(delivery, _keys(tmp_path))
    assert read_table(lake, DELIVERIES).num_rows == 1
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0 and "nothing new" in rerun.stdout and read_table(lake, DELIVERIES).num_rows == 1


def test_two_schedulers_make_each_due_delivery_once(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, records, lake = market
    land_records(lake, records)
    runner = _runner(lake, tmp_path)
    for i in range(3):
        runner.registry.add(_grant(sim, tmp_path, grant_id=f"g{i}", schedule="* * * * *",
                                   valid_from=datetime.now(UTC) - timedelta(hours=1)))  # fmt: skip
    env = {
        **os.environ,
        "MHHS_WAREHOUSE": lake.warehouse,
        "MHHS_DELIVERIES_SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        "MHHS_DELIVERIES_JWKS_FILE": str(tmp_path / "jwks.json"),
        "MHHS_DELIVERIES_MASK_SECRET": SECRET.decode(),
        "MHHS_QUALITY_DOCS_DIR": str(tmp_path / "docs"),
        "MHHS_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "mhhs", "scheduler", "--once"]
    both = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in (1, 2)]
    results = [p.communicate(timeout=600) for p in both]
    assert all(p.returncode == 0 for p in both), results
    made = Counter(r["grant_id"] for r in read_table(lake, DELIVERIES).to_pylist())
    assert made == Counter({"g0": 1, "g1": 1, "g2": 1})
    assert sum("standby" in out for out, _ in results) == 1  # the second found the lease held


def test_recipients_download_their_own_deliveries_over_the_api(market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import ApiSettings
    from tests.support.claims import bearer

    sim, records, lake = market
    land_records(lake, records)
    runner = _runner(lake, tmp_path)
    runner.registry.add(_grant(sim, tmp_path))
    made = runner.run(["research-1"])[0]
    api = ApiSettings(dev_mode=True, deliveries_jwks_file=tmp_path / "jwks.json")
    with TestClient(create_app(api, lake)) as client:
        mine = bearer(api, "UNIV", "third_party", ["extract"], grants=["research-1"])
        listed = client.get("/v1/deliveries", headers=mine).json()
        assert [d["delivery_id"] for d in listed] == [made.delivery_id]
        manifest = client.get(f"/v1/deliveries/{made.delivery_id}/manifest", headers=mine)
        assert manifest.status_code == 200
        assert manifest.content == (Path(made.location or "") / "manifest.json").read_bytes()
        for f in orjson.loads(manifest.content)["files"]:
            got = client.get(f"/v1/deliveries/{made.delivery_id}/files/{f['name']}", headers=mine)
            assert got.status_code == 200 and len(got.content) == f["bytes"]
        other = bearer(api, "OTHR", "third_party", ["extract"])
        assert client.get("/v1/deliveries", headers=other).json() == []
        assert client.get(f"/v1/deliveries/{made.delivery_id}/manifest", headers=other).status_code == 404
        sneaky = client.get(f"/v1/deliveries/{made.delivery_id}/files/..%2Fkey.pem", headers=mine)
        assert sneaky.status_code == 404
        jwks = client.get("/v1/deliveries/keys").json()
        assert public_keys_from_jwks(jwks) == _keys(tmp_path) or set(public_keys_from_jwks(jwks)) == set(
            _keys(tmp_path)
        )
        admin = bearer(api, "ADMN", "admin", ["extract", "audit"])
        log = client.get("/v1/audit", headers=admin).json()
        assert any(r["endpoint"] == "/v1/deliveries/files" and r["subject"] == "UNIV" for r in log)
    jwks_file = tmp_path / "served-jwks.json"
    jwks_file.write_bytes(orjson.dumps(jwks))
    verified = subprocess.run(
        [sys.executable, "-m", "mhhs", "deliveries", "verify", made.location or "", "--jwks", str(jwks_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0 and "verified" in verified.stdout, verified.stderr
