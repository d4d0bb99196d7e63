"""The access log's write-ahead journal: an access is on local disk from its first byte to its commit.

The access log is an Iceberg table, committed once a response is complete (a commit takes a quarter
of a second; the client does not wait for it). An API process killed mid-stream (OOM, SIGKILL, a
crash) used to leave no record of what it had started sending, and a commit that failed (the catalog
unreachable) only an error in the logs. Now each API process appends to its own journal file: the
access's row as it would be if the process ended now (outcome ``interrupted``, the rows and bytes
sent so far, re-noted as the stream goes on), the final row when it ends, and a ``done`` line once
that row is committed. The file is emptied whenever nothing is owed, and rewritten with only what is
owed when it grows past ``max_bytes``. Each process holds an exclusive ``flock`` on its file while it
lives (files are made under another name, locked, then renamed into place, so no process ever sees
one unlocked while its owner lives); ``recover``, run by every API process at start-up, takes only
the files of processes that are gone, commits the rows they owed (unless the access log already has
them: a crash between a commit and its ``done`` line) and deletes the files.

Nothing is synced to the disk (``fsync``): a killed process loses nothing, a host losing power can
lose the last lines. Journals live under ``<directory>/<lake>/``, one directory per lake (catalog,
warehouse, namespace), so processes of other deployments sharing the directory never commit each
other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)
SUFFIX = ".journal"


class AuditJournalError(RuntimeError):
    """The journal directory cannot be written (a misconfiguration: the API does not start without it)."""


def lake_key(*parts: str | None) -> str:
    """A directory name for one lake, from what identifies it (catalog type and URI, warehouse, namespace)."""
    return hashlib.sha256("\n".join(p or "" for p in parts).encode()).hexdigest()[:16]


class AccessJournal:
    """This process's journal file: the rows it owes the access log until they are committed.

    Raises:
        AuditJournalError: if the directory cannot be written.
    """

    def __init__(self, directory: Path, max_bytes: int = 1 << 20) -> None:
        self.directory = directory
        self.path = directory / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self.max_bytes = max_bytes
        self._owed: dict[str, bytes] = {}  # access id: its latest line
        self._size = 0
        self._lock = threading.Lock()
        try:
            self._fd = self._fresh(b"")
        except OSError as exc:
            raise AuditJournalError(
                f"cannot write the access journal in {directory}: {exc} (MHHS_API_AUDIT_JOURNAL_DIR)"
            ) from exc

    def note(self, access_id: str, row: dict[str, Any]) -> None:
        """Note ``row`` (JSON-ready) as what access ``access_id`` is owed as, should this process end now."""
        line = orjson.dumps({"id": access_id, "row": row}) + b"\n"
        with self._lock:
            self._owed[access_id] = line
            self._append(line)

    def done(self, access_id: str) -> None:
        """The access's row is committed: nothing owed for it any more."""
        with self._lock:
            if self._owed.pop(access_id, None) is None:
                return
            self._append(orjson.dumps({"id": access_id, "done": True}) + b"\n")

    def owed(self) -> dict[str, dict[str, Any]]:
        """The rows noted and not yet done, by access id."""
        with self._lock:
            return {k: orjson.loads(line)["row"] for k, line in self._owed.items()}

    def _append(self, line: bytes) -> None:
        try:
            if self._fd < 0:  # closed by a lifespan's end, used again by the next (tests run several)
                self._fd = self._fresh(b"")
            if not self._owed:
                os.ftruncate(self._fd, 0)  # nothing owed: nothing to recover
                self._size = 0
                return
            if self._size + len(line) > self.max_bytes:  # only what is owed, in a new file
                fresh = self._fresh(b"".join(self._owed.values()))
                os.close(self._fd)
                self._fd = fresh
                return
            os.write(self._fd, line)  # in the kernel's hands: survives this process being killed
            self._size += len(line)
        except OSError as exc:  # a full disk must not stop the response; said loudly
            log.error("audit_journal_failed", extra={"journal": str(self.path), "error": f"{exc}"})

    def _fresh(self, content: bytes) -> int:
        """A file at ``path`` holding ``content``, locked before it is there to be seen."""
        self.directory.mkdir(parents=True, exist_ok=True)
        making = self.path.with_name(self.path.name + ".new")
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this process lives
            if content:
                os.write(fd, content)
            os.rename(making, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._size = len(content)
        return fd

    def close(self) -> None:
        """Delete the file if nothing is owed; else keep it locked while this process lives (owed rows
        are recovered once it has ended, never while it might still commit them itself)."""
        with self._lock:
            if self._fd >= 0 and not self._owed:
                self.path.unlink(missing_ok=True)
                os.close(self._fd)
                self._fd = -1
                with contextlib.suppress(OSError):  # the lake's directory, once no journal is left in it
                    self.directory.rmdir()


def recover(
    directory: Path, commit: Callable[[list[dict[str, Any]]], int], skip: Path | None = None
) -> tuple[int, int]:
    """Commit what journals of processes that are gone owed; return (files taken, rows committed).

    ``commit`` receives the rows (the last noted of each access not done) and commits those the
    access log does not already have, returning how many. A file is deleted once its rows are
    committed; one whose commit fails stays for the next try.
    """
    files = rows = 0
    for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []:
        if path == skip:
            continue
        for fd in _locked(path):
            pending = _owed_rows(fd)
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
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # recovered and deleted, or replaced by its owner's rewrite, between open and lock
            return
        yield fd
    finally:
        os.close(fd)


def _owed_rows(fd: int) -> list[dict[str, Any]]:
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    latest: dict[str, dict[str, Any]] = {}
    for line in data.splitlines():
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:  # a line cut short
            continue
        if doc.get("done"):
            latest.pop(doc["id"], None)
        elif "row" in doc:
            latest[doc["id"]] = doc["row"]
    return list(latest.values())
