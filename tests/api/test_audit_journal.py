"""Every access audited, even when the API process is killed mid-stream or its commit fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from access.principal import Principal
from api.services.audit import AccessRecord, AuditLog
from api.services.journal import AccessJournal
from api.settings import ApiSettings
from lakehouse.read import read_table
from lakehouse.settings import LakehouseSettings
from lakehouse.store import Store
from lakehouse.tables import ACCESS_LOG

WHO = Principal("9900000001", "MDS", frozenset({"extract"}))

# a process that serves four accesses and is killed (SIGKILL) with:
# 1 begun, still streaming; 2 ended, its commit failed; 3 committed; 4 committed, killed before its "done"
KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from access.principal import Principal
    from api.services.audit import AccessRecord, AuditLog, _table, _values
    from lakehouse.settings import LakehouseSettings
    from lakehouse.store import Store
    from lakehouse.tables import ACCESS_LOG

    store = Store(LakehouseSettings(warehouse=sys.argv[1]))
    audit = AuditLog(store, Path(sys.argv[2]))
    who = Principal("9900000001", "MDS", frozenset({"extract"}))
    records = [AccessRecord(who, f"/v1/extracts/access-{i}", {"i": i}, snapshot_id=7) for i in range(1, 5)]
    for r in records:
        audit.begin(r)
    records[2].rows = 5
    audit.write(records[2])
    records[1].rows, records[1].nbytes = 12, 3456
    store.append = lambda *a: (_ for _ in ()).throw(OSError("catalog unreachable"))
    audit.write(records[1])  # its commit fails: logged, and owed in the journal
    del store.append
    records[3].rows = 9
    store.append(ACCESS_LOG, _table([_values(records[3], "ok")]))  # committed, then the kill
    print(audit._journal.path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _log(lake: LakehouseSettings) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for row in read_table(lake, ACCESS_LOG).to_pylist():
        out.setdefault(row["endpoint"], []).append(row)
    return out


def test_accesses_of_a_killed_process_are_committed_by_the_next_start_up(tmp_path: Path) -> None:
    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    journals = tmp_path / "journal"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED, lake.warehouse, str(journals)],
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    journal = Path(killed.stdout.decode().strip())
    assert journal.exists()
    before = _log(lake)
    assert set(before) == {"/v1/extracts/access-3", "/v1/extracts/access-4"}  # what it had committed

    audit = AuditLog(Store(lake), journals)  # the next API process, starting
    assert audit.recover() == (1, 2)
    after = _log(lake)
    assert set(after) == {f"/v1/extracts/access-{i}" for i in range(1, 5)}
    assert all(len(rows) == 1 for rows in after.values())  # access 4 (committed, no "done") not twice
    streaming = after["/v1/extracts/access-1"][0]
    assert streaming["outcome"] == "interrupted" and streaming["subject"] == WHO.subject
    assert streaming["snapshot_id"] == 7 and streaming["checksum"] is None
    assert streaming["ended_at"] >= streaming["started_at"]
    failed_commit = after["/v1/extracts/access-2"][0]
    assert (failed_commit["outcome"], failed_commit["rows"], failed_commit["bytes"]) == ("ok", 12, 3456)
    assert failed_commit["checksum"]
    assert not journal.exists()
    assert audit.recover() == (0, 0)  # nothing twice
    audit.close()


def test_a_living_process_journal_is_left_alone_and_emptied_once_its_accesses_are_committed(tmp_path: Path) -> None:
    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    serving = AuditLog(Store(lake), tmp_path / "journal")
    record = AccessRecord(WHO, "/v1/extracts/events", {"topic": "x"})
    serving.begin(record)
    other = AuditLog(Store(lake), tmp_path / "journal")  # a second API process starting meanwhile
    assert other.recover() == (0, 0)
    assert read_table(lake, ACCESS_LOG).num_rows == 0
    journal = serving._journal.path  # type: ignore[union-attr]
    assert journal.stat().st_size > 0
    serving.write(record)
    assert journal.stat().st_size == 0 and read_table(lake, ACCESS_LOG).num_rows == 1
    serving.close()
    other.close()
    assert not journal.exists()


def test_a_row_whose_commit_failed_is_committed_with_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LakehouseSettings(warehouse=str(tmp_path / "warehouse"))
    store = Store(lake)
    audit = AuditLog(store, tmp_path / "journal")
    first, second = (AccessRecord(WHO, f"/v1/extracts/{n}", {}) for n in ("first", "second"))
    append = store.append
    monkeypatch.setattr(store, "append", lambda *a: (_ for _ in ()).throw(OSError("catalog unreachable")))
    audit.write(first)
    assert read_table(lake, ACCESS_LOG).num_rows == 0 and audit._journal.owed()  # type: ignore[union-attr]
    monkeypatch.setattr(store, "append", append)
    audit.write(second)  # the catalog answers again
    assert sorted(_log(lake)) == ["/v1/extracts/first", "/v1/extracts/second"]
    assert audit._journal.owed() == {} and audit._journal.path.stat().st_size == 0  # type: ignore[union-attr]
    audit.close()


def test_a_long_running_journal_is_rewritten_with_only_what_is_owed(tmp_path: Path) -> None:
    journal = AccessJournal(tmp_path, max_bytes=4096)
    for i in range(200):  # overlapping accesses: never a moment with nothing owed
        journal.note(f"a{i}", {"endpoint": f"/v1/extracts/{i}", "pad": "x" * 100})
        if i >= 2:
            journal.done(f"a{i - 2}")
        assert journal.path.stat().st_size <= 4096
    with open(journal.path, "rb") as fh:
        lines = [orjson.loads(line) for line in fh.read().splitlines()]
    owed = {d["id"] for d in lines if "row" in d} - {d["id"] for d in lines if d.get("done")}
    assert owed == {"a198", "a199"} == set(journal.owed())
    assert not list(tmp_path.glob("*.new"))


def test_an_empty_journal_setting_turns_it_off_and_an_unwritable_one_stops_serve(tmp_path: Path) -> None:
    assert ApiSettings(dev_mode=True, audit_journal_dir="").audit_journal_dir is None  # type: ignore[arg-type]
    (tmp_path / "a-file").write_bytes(b"")
    env = {
        **os.environ,
        "MHHS_API_DEV_MODE": "true",
        "MHHS_WAREHOUSE": str(tmp_path / "warehouse"),
        "MHHS_API_AUDIT_JOURNAL_DIR": str(tmp_path / "a-file" / "journal"),
    }
    served = subprocess.run(
        [sys.executable, "-m", "mhhs", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=120
    )
    assert served.returncode == 1
    assert "cannot write the access journal" in served.stderr and "MHHS_API_AUDIT_JOURNAL_DIR" in served.stderr
