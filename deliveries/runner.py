"""Making deliveries: per due grant, everything new since its last delivery, as files and a signed manifest.

Order of writing, so that a crash anywhere leaves a state a re-run completes: the data files of a
delivery (``<destination>/<grant>/<delivery>/part-*.ext``), then the detached signature, then the
manifest (by an atomic rename: a manifest only ever names files that are there), then the row in
the ``deliveries`` table (appended only if absent). A delivery's ID is its grant and the snapshot it
reads up to, so re-running the same window finds it made; a missed schedule is caught up by one
delivery covering everything since the last. The snapshot delivered up to is tagged
(``delivery-<grant>``), so retention keeps the start of the next incremental read; the snapshots
between two deliveries may be expired (``MHHS_MAX_SNAPSHOTS``): the rows since the tag are then
found by their Kafka positions (``lakehouse.read.appended_since_positions``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from croniter import croniter
from pyarrow import fs as pafs

from access.grants import Grant
from access.guard import AccessGuard
from access.policy import Policy
from deliveries.datasets import DELIVERED_WHOLE, grant_policy, grant_rows
from deliveries.errors import DeliveryError
from deliveries.manifest import MANIFEST, SIGNATURE, FileEntry, Manifest, sha256_of
from deliveries.registry import SOURCE_TABLE, GrantRegistry
from deliveries.settings import DeliveriesSettings
from deliveries.signing import SigningKey, sign_detached
from lakehouse.errors import LakehouseError, SnapshotNotFoundError
from lakehouse.formats import ChunkWriter
from lakehouse.read import prefetched
from lakehouse.storage import filesystem_for_location, storage_properties
from lakehouse.store import Store
from lakehouse.tables import DELIVERIES, TABLES

log = logging.getLogger(__name__)
EXTENSIONS = {"parquet": "parquet", "csv": "csv", "ndjson": "ndjson"}


@dataclass(frozen=True)
class Outcome:
    """What happened to one grant in a run: ``made``, ``already made``, ``nothing new``, ``not due``,
    ``held back ...`` (by the scheduler, after failures), or ``failed: <why>`` (the other grants of the
    run are still delivered)."""

    grant_id: str
    status: str
    delivery_id: str | None = None
    rows: int = 0
    location: str | None = None


class DeliveryRunner:
    """Makes deliveries for the grants in the store."""

    def __init__(
        self, store: Store, policy: Policy, key: SigningKey, settings: DeliveriesSettings, secret: bytes
    ) -> None:
        self._store = store
        self._policy = policy
        self._key = key
        self._settings = settings
        self._secret = secret
        self.registry = GrantRegistry(store, policy)

    # -- which grants --------------------------------------------------------------------
    def last_delivery(self, grant_id: str) -> dict[str, object] | None:
        """The latest delivery recorded for a grant (None before the first)."""
        rows = [r for r in self._store.read(DELIVERIES).to_pylist() if r["grant_id"] == grant_id]
        return max(rows, key=lambda r: r["created_at"]) if rows else None

    def is_due(self, grant: Grant, now: datetime) -> bool:
        """True when a scheduled time has passed since the grant's last delivery (or since it began)."""
        if not grant.active_at(now):
            return False
        last = self.last_delivery(grant.grant_id)
        since = last["created_at"] if last else grant.valid_from
        previous_fire = croniter(grant.schedule, now).get_prev(datetime)
        return bool(previous_fire > since)

    def run(
        self,
        grant_ids: list[str] | None = None,
        due: bool = False,
        full: bool = False,
        held_back: Mapping[str, datetime] | None = None,
    ) -> list[Outcome]:
        """Deliver the grants named (or every active one); with ``due``, only those whose time has come.

        ``held_back`` names grants not to try now, with when they will be (the scheduler's backoff
        after failures: ``deliveries.scheduler.FailureBackoff``).

        Raises:
            DeliveryError: for a grant that does not exist.
        """
        now = datetime.now(UTC)
        grants = self.registry.all()
        if grant_ids:
            missing = [g for g in grant_ids if g not in grants]
            if missing:
                raise DeliveryError(f"no such grants: {', '.join(missing)}")
            chosen = [grants[g] for g in grant_ids]
        else:
            chosen = list(grants.values())
        out = []
        for grant in chosen:
            if not grant.active_at(now):
                out.append(Outcome(grant.grant_id, f"not active ({grant.status})"))
            elif held_back and grant.grant_id in held_back:
                retry = held_back[grant.grant_id].strftime("%Y-%m-%dT%H:%M:%SZ")
                out.append(Outcome(grant.grant_id, f"held back after failing (next try {retry})"))
            elif due and not self.is_due(grant, now):
                out.append(Outcome(grant.grant_id, "not due"))
            else:
                out.append(self._attempt(grant, full))
        return out

    def _attempt(self, grant: Grant, full: bool) -> Outcome:
        """``deliver``, with a failure reported as this grant's outcome: one grant's bad destination or
        expired start snapshot must not stop the deliveries of the others (a re-run retries it)."""
        try:
            return self.deliver(grant, full)
        except Exception as exc:  # whatever it was, the other grants go on
            log.error("delivery_failed", extra={"grant": grant.grant_id, "error": f"{type(exc).__name__}: {exc}"})
            return Outcome(grant.grant_id, f"failed: {exc}")

    # -- one delivery --------------------------------------------------------------------
    def deliver(self, grant: Grant, full: bool = False) -> Outcome:
        """Deliver what is new for ``grant`` (everything when ``full`` or on its first delivery).

        Raises:
            DeliveryError: if the previous delivery's snapshot is no longer retained (deliver ``full``).
        """
        source = SOURCE_TABLE[grant.dataset]
        snapshot_to = self._store.resolve(source)
        if snapshot_to is None:
            return Outcome(grant.grant_id, "nothing yet (the source table is empty)")
        last = None if full else self.last_delivery(grant.grant_id)
        snapshot_from = int(last["snapshot_to"]) if last and last["snapshot_to"] is not None else None  # type: ignore[call-overload]
        if last is not None and snapshot_from == snapshot_to:
            return Outcome(grant.grant_id, "nothing new", str(last["delivery_id"]))
        delivery_id = f"{grant.grant_id}-{snapshot_to}{'-full' if full or snapshot_from is None else ''}"
        if any(r["delivery_id"] == delivery_id for r in self._store.read(DELIVERIES).to_pylist()):
            return Outcome(grant.grant_id, "already made", delivery_id)
        # both ends held by tags while the files are written (it may take longer than the snapshots
        # retention keeps): the start re-pointed in case a crash came between recording and tagging
        try:
            if snapshot_from is not None and grant.dataset not in DELIVERED_WHOLE:
                self._store.move_tag(source, f"delivery-{grant.grant_id}", snapshot_from)
            self._store.move_tag(source, f"delivery-{grant.grant_id}-next", snapshot_to)
        except SnapshotNotFoundError as exc:
            raise DeliveryError(f"{grant.grant_id}: {exc}; deliver with --full") from exc
        location = f"{grant.destination.rstrip('/')}/{grant.grant_id}/{delivery_id}"
        fs, root, _ = filesystem_for_location(location, storage_properties(self._store.settings))
        manifest = self._finished(fs, root)
        if manifest is None:
            manifest = self._write(grant, fs, root, delivery_id, source, snapshot_from, snapshot_to, full)
        self._record(grant, manifest, location)
        self._store.move_tag(source, f"delivery-{grant.grant_id}", snapshot_to)
        return Outcome(grant.grant_id, "made", delivery_id, manifest.rows, location)

    def _finished(self, fs: pafs.FileSystem, root: str) -> Manifest | None:
        """The manifest of a delivery written before a crash stopped its recording, if any."""
        info = fs.get_file_info(f"{root}/{MANIFEST}")
        if info.type != pafs.FileType.File:
            return None
        with fs.open_input_stream(f"{root}/{MANIFEST}") as fh:
            return Manifest.from_bytes(fh.read())

    def _write(
        self,
        grant: Grant,
        fs: pafs.FileSystem,
        root: str,
        delivery_id: str,
        source: str,
        snapshot_from: int | None,
        snapshot_to: int,
        full: bool,
    ) -> Manifest:
        guard = AccessGuard(self._store, grant_policy(self._policy, grant), self._secret)
        try:
            rows = self._settings.batch_rows
            batches, schema = grant_rows(self._store, guard, grant, snapshot_from, snapshot_to, rows)
        except LakehouseError as exc:
            raise DeliveryError(f"{grant.grant_id}: {exc}; deliver with --full") from exc
        if fs.get_file_info(root).type == pafs.FileType.Directory:
            fs.delete_dir_contents(root)  # what a crashed attempt left: it is written again
        fs.create_dir(root, recursive=True)
        try:
            files = _write_files(fs, root, prefetched(batches), schema, grant.format, self._settings.file_rows)
        except SnapshotNotFoundError as exc:  # found while reading: the start's tag gone, or no positions
            fs.delete_dir_contents(root)  # no half delivery left where recipients look
            raise DeliveryError(f"{grant.grant_id}: {exc}; deliver with --full") from exc
        manifest = Manifest(
            delivery_id=delivery_id,
            grant_id=grant.grant_id,
            grant_version=grant.version,
            recipient=grant.recipient,
            dataset=grant.dataset,
            filters=__import__("orjson").loads(grant.filters_json()),
            columns=list(schema.names),
            format=grant.format,
            policy_version=self._policy.version,
            masking=dict(grant.masking),
            source_table=source,
            snapshot_from=snapshot_from,
            snapshot_to=snapshot_to,
            full=full or snapshot_from is None,
            created_at=datetime.now(UTC).isoformat(),
            files=files,
        )
        body = manifest.to_bytes()
        _atomic_write(fs, f"{root}/{SIGNATURE}", sign_detached(body, self._key).encode())
        _atomic_write(fs, f"{root}/{MANIFEST}", body)  # last: a manifest names only files that are there
        return manifest

    def _record(self, grant: Grant, manifest: Manifest, location: str) -> None:
        row = {
            "delivery_id": manifest.delivery_id,
            "grant_id": grant.grant_id,
            "grant_version": grant.version,
            "recipient": grant.recipient,
            "dataset": grant.dataset,
            "full": manifest.full,
            "source_table": manifest.source_table,
            "snapshot_from": manifest.snapshot_from,
            "snapshot_to": manifest.snapshot_to,
            "files": len(manifest.files),
            "rows": manifest.rows,
            "bytes": manifest.size,
            "manifest_sha256": sha256_of(manifest.to_bytes()),
            "location": location,
            "policy_version": manifest.policy_version,
            "created_at": datetime.now(UTC),
        }
        table = pa.Table.from_pylist([row], schema=TABLES[DELIVERIES].arrow_schema)
        self._store.append_if_absent(DELIVERIES, table, "delivery_id", manifest.delivery_id)


class _FileWriter:
    """One delivered file, written as its batches arrive (memory stays at a batch), hashed on the way."""

    def __init__(self, fs: pafs.FileSystem, root: str, name: str, schema: pa.Schema, fmt: str) -> None:
        self.name = name
        self._fs = fs
        self._path = f"{root}/{name}"
        self._out = fs.open_output_stream(f"{self._path}.tmp")
        self._hash = hashlib.sha256()
        self._bytes = 0
        self._writer = ChunkWriter(schema, fmt)  # type: ignore[arg-type]

    @property
    def rows(self) -> int:
        return self._writer.rows

    def _put(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self._hash.update(data)
            self._bytes += len(data)

    def write(self, batch: pa.RecordBatch) -> None:
        self._put(self._writer.write(batch))

    def close(self) -> FileEntry:
        self._put(self._writer.close())
        self._out.close()
        self._fs.move(f"{self._path}.tmp", self._path)
        return FileEntry(self.name, self.rows, self._bytes, self._hash.hexdigest())


def _write_files(
    fs: pafs.FileSystem, root: str, batches: Iterator[pa.RecordBatch], schema: pa.Schema, fmt: str, file_rows: int
) -> list[FileEntry]:
    """The batches as files of at most ``file_rows`` rows (always at least one file, maybe empty)."""
    ext = EXTENSIONS[fmt]
    done: list[FileEntry] = []
    current = _FileWriter(fs, root, f"part-{0:05d}.{ext}", schema, fmt)
    for batch in batches:
        if current.rows and current.rows + batch.num_rows > file_rows:
            done.append(current.close())
            current = _FileWriter(fs, root, f"part-{len(done):05d}.{ext}", schema, fmt)
        current.write(batch)
    done.append(current.close())
    return done


def _atomic_write(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` under a temporary name, then move it into place."""
    tmp = f"{path}.tmp"
    with fs.open_output_stream(tmp) as out:
        out.write(data)
    fs.move(tmp, path)
