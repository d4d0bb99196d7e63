"""The access log's write-ahead journal: an access is on local disk before its first byte is sent.

The access log is an Iceberg table, committed once a response is complete (a commit takes a quarter
of a second; the client does not wait for it). A process killed mid-stream (OOM, SIGKILL, the host
going down) used to leave no record of what it had started sending, and a commit that failed (the
catalog unreachable) only an error in the logs. Now each API process appends one line per access to
its own journal file before streaming (the row as it would be if the access ended now: outcome
``interrupted``), again with the final row when it ends, and a ``done`` line once the row is
committed; the file is emptied whenever no access is open. Each process holds an exclusive ``flock``
on its file while it lives, so ``recover`` (run by every API process at start-up) takes only the
files of processes that are gone, commits the rows they left (unless the access log already has them:
a crash between the commit and the ``done`` line) and deletes the files.

Journals live under ``<directory>/<lake>/``, one directory per lake (catalog, warehouse, namespace),
so API processes of other deployments sharing the directory never commit each other's entries.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)
SUFFIX = ".journal"


def lake_key(*parts: str | None) -> str:
    """A directory name for one lake, from what identifies it (catalog type and URI, warehouse, namespace)."""
    return hashlib.sha256("\n".join(p or "" for p in parts).encode()).hexdigest()[:16]


class AccessJournal:
    """This process's journal file: rows noted before they are committed, cleared once they are."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self._fd = -1
        self._open: set[str] = set()
        self._lock = threading.Lock()
        self._opened()

    def _opened(self) -> int:
        """The file, opened (again, after ``close``: an app's lifespan may run more than once) and locked."""
        if self._fd < 0:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this process lives
            self._fd = fd
        return self._fd

    def note(self, access_id: str, row: dict[str, Any]) -> None:
        """Note ``row`` (JSON-ready) as what access ``access_id`` is, should this process end now."""
        self._append({"id": access_id, "row": row}, opened=access_id)

    def done(self, access_id: str) -> None:
        """The access's row is committed: forget it (the file is emptied once no access is open)."""
        self._append({"id": access_id, "done": True}, closed=access_id)

    def _append(self, doc: dict[str, Any], opened: str | None = None, closed: str | None = None) -> None:
        line = orjson.dumps(doc) + b"\n"
        with self._lock:
            if opened is not None:
                self._open.add(opened)
            if closed is not None:
                self._open.discard(closed)
            try:
                fd = self._opened()
                if closed is not None and not self._open:
                    os.ftruncate(fd, 0)  # nothing open: nothing to recover
                else:
                    os.write(fd, line)  # in the kernel's hands: survives this process being killed
            except OSError as exc:  # a full or missing disk must not stop the response; said loudly
                log.error("audit_journal_failed", extra={"journal": str(self.path), "error": f"{exc}"})

    def close(self) -> None:
        """Release the file: deleted when no access is open, else left for ``recover``."""
        with self._lock:
            if self._fd >= 0:
                if not self._open:
                    self.path.unlink(missing_ok=True)
                os.close(self._fd)
                self._fd = -1


def recover(
    directory: Path, commit: Callable[[list[dict[str, Any]]], int], skip: Path | None = None
) -> tuple[int, int]:
    """Commit what journals of processes that are gone left open; return (files taken, rows committed).

    ``commit`` receives the rows (the last noted of each open access, the journal file's time as the
    end of an interrupted one) and commits those the access log does not already have, returning how
    many. A file is deleted once its rows are committed; one whose commit fails stays for the next try.
    """
    files = rows = 0
    for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []:
        if path == skip:
            continue
        for fd in _locked(path):
            pending = _open_rows(fd, datetime.fromtimestamp(os.fstat(fd).st_mtime, UTC))
            try:
                rows += commit(pending) if pending else 0
            except Exception as exc:  # the catalog away: the file stays for the next start-up
                error = f"{type(exc).__name__}: {exc}"
                log.error("audit_recovery_failed", extra={"journal": str(path), "error": error})
                continue
            path.unlink(missing_ok=True)
            files += 1
    return files, rows


def _locked(path: Path) -> Iterator[int]:
    """The file, open and locked, if no living process holds it (none otherwise)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:  # another process recovered it meanwhile
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its process is alive
            return
        if not os.path.exists(path):  # recovered and deleted between our open and lock
            return
        yield fd
    finally:
        os.close(fd)


def _open_rows(fd: int, last_write: datetime) -> list[dict[str, Any]]:
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    latest: dict[str, dict[str, Any]] = {}
    for line in data.splitlines():
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:  # a line cut short by the crash
            continue
        if doc.get("done"):
            latest.pop(doc["id"], None)
        elif "row" in doc:
            latest[doc["id"]] = doc["row"]
    out = []
    for row in latest.values():
        if row.get("outcome") == "interrupted":
            row = {**row, "ended_at": last_write.isoformat()}
        out.append(row)
    return out
