"""The scheduler: the same idempotent commands, on time, with one active instance at a time.

APScheduler (3.x) fires: every grant's deliveries on its cron schedule (all due ones are checked
each minute), the typed-table refine and the quality suites (`--since-last`) every few minutes, and
maintenance (snapshot expiry, compaction) nightly. Only the holder of the ``scheduler`` lease (a
row in the ``leases`` table, taken by an optimistic Iceberg commit) runs jobs; a second scheduler
started by mistake stands by and takes over when the lease lapses. Each job is idempotent anyway,
so the same commands can run from cron, Kubernetes CronJobs or Airflow instead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lakehouse.store import Store

if TYPE_CHECKING:  # the runner imports DuckDB: not in every `mhhs` process (the ingest worker's memory)
    from deliveries.runner import Outcome

log = logging.getLogger(__name__)
LEASE = "scheduler"


@dataclass
class Lease:
    """This process's claim to be the active scheduler, renewed while it runs."""

    store: Store
    seconds: float
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")

    def held(self) -> bool:
        """Take or renew the lease; True while this process holds it."""
        return self.store.claim_lease(LEASE, self.holder, self.seconds, datetime.now(UTC))

    def release(self) -> None:
        self.store.release_lease(LEASE, self.holder, datetime.now(UTC))


@dataclass
class Job:
    """A named command and when it runs: a cron expression (UTC) or an interval in seconds."""

    name: str
    run: Callable[[], object]
    cron: str | None = None
    every_seconds: float | None = None


@dataclass
class FailureBackoff:
    """When the scheduler tries a failing grant again: after ``first``, then twice as long each time it
    fails again, at most ``cap``; a grant that stops failing is tried on its schedule again.

    A grant fails until someone acts (a destination to fix, a start snapshot gone: ``--full``), and the
    deliveries job runs every minute: without it each run read the grant's rows again and logged the
    same error. In memory: a restarted scheduler tries every grant once more at once.
    """

    first: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=1)
    _failing: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # grant: failures, next try

    def held_back(self, now: datetime) -> dict[str, datetime]:
        """The grants not to try at ``now``, with when they will be."""
        return {grant: at for grant, (_, at) in self._failing.items() if at > now}

    def record(self, outcomes: Iterable[Outcome], now: datetime) -> None:
        """Note what a run at ``now`` did: a failure pushes the grant's next try back, anything tried
        that did not fail clears it (held-back and not-due grants were not tried)."""
        for o in outcomes:
            if o.status.startswith("failed"):
                failures = self._failing.get(o.grant_id, (0, now))[0] + 1
                wait = min(self.cap, self.first * 2 ** (failures - 1))
                self._failing[o.grant_id] = (failures, now + wait)
                log.warning(
                    "delivery_held_back",
                    extra={"grant": o.grant_id, "failures": failures, "retry_at": (now + wait).isoformat()},
                )
            elif not o.status.startswith(("held back", "not due")):
                self._failing.pop(o.grant_id, None)


def run_jobs_once(jobs: list[Job], lease: Lease) -> dict[str, str]:
    """Run every job now, if this process holds the lease; return what each did."""
    out: dict[str, str] = {}
    if not lease.held():
        return {job.name: "standby (another scheduler holds the lease)" for job in jobs}
    for job in jobs:
        out[job.name] = _guarded(job, lease)
    return out


def _guarded(job: Job, lease: Lease) -> str:
    if not lease.held():
        log.info("job_skipped_standby", extra={"job": job.name})
        return "standby"
    started = time.perf_counter()
    try:
        result = job.run()
    except Exception as exc:  # one failing job must not stop the others
        log.error("job_failed", extra={"job": job.name, "error": f"{type(exc).__name__}: {exc}"})
        return f"failed: {exc}"
    log.info("job_done", extra={"job": job.name, "seconds": round(time.perf_counter() - started, 3)})
    return f"done: {result}"


def run_forever(jobs: list[Job], lease: Lease, stop: threading.Event | None = None) -> None:
    """Run the jobs on their schedules until ``stop`` is set (SIGTERM sets it)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    stop = stop or threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for job in jobs:
        trigger = (
            CronTrigger.from_crontab(job.cron, timezone="UTC")
            if job.cron
            else IntervalTrigger(seconds=job.every_seconds or 60, timezone="UTC")
        )
        scheduler.add_job(_guarded, trigger, args=(job, lease), id=job.name, name=job.name)
    scheduler.start()
    try:
        while not stop.wait(lease.seconds / 3):
            lease.held()  # keep the lease while alive (or take it over once the holder lapses)
    finally:
        scheduler.shutdown(wait=True)
        lease.release()
