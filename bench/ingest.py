"""Ingest throughput: a plain kafka-python consumer (baseline) vs `mhhs ingest`, same N IF-021.

The baseline subscribes to the same topics as the worker (the whole catalogue), in one group.

Usage: python bench/ingest.py [--messages N] [--runs 3] [--processes N]
The two paths alternate ``--runs`` times over the same published messages; reports median
messages/s and MB/s for both, the ratio of the medians (and each round's), peak RSS (the largest
process, and all of a run's processes together, for --processes), commit latency p50/p95 and data
files per partition. The 1 M-message run: ``--messages 1000000 --runs 1`` (~4 min).
It also splits one worker's busy time per message into its stages (poll, decode, commit, other:
from the worker's log); where a stage's time goes inside, and the bound that sets on the ratio, is
``bench/ingest_floor.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import broker, percentile, write_results
from contract.topics import load_topic_catalogue
from ingest.kafka_client import TopicPlan, ensure_topics, publish
from ingest.settings import IngestSettings
from ingest.topics import create_topics
from market.simulation import Simulation, SimulationParams


def produce(bootstrap: str, api: tuple[int, ...], topic: str, n: int) -> tuple[int, int]:
    mpans = max(1, n // 10)
    sim = Simulation(
        SimulationParams(mpans=mpans, days=12, start=date(2026, 1, 1), seed=1, business_fault_rate=0, malformed_rate=0)
    )
    sent = 0
    nbytes = 0

    def records():  # type: ignore[no-untyped-def]
        nonlocal sent, nbytes
        for rec in sim.records():
            if rec.interface != "IF-021":
                continue
            if sent >= n:
                return
            sent += 1
            nbytes += len(rec.value or b"")
            yield rec.as_out().__class__(topic, rec.key, rec.value, rec.headers)

    publish(bootstrap, api, records())
    return sent, nbytes


def baseline(bootstrap: str, api: tuple[int, ...], topics: list[str], n: int) -> float:
    """Seconds for a plain consumer to read and JSON-decode all n messages.

    Fair to the worker: one group member subscribed to the same topics (every catalogue topic),
    fetching as much at a time.
    """
    from kafka import KafkaConsumer

    worker = IngestSettings()
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        api_version=api,
        group_id=f"base-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=worker.partition_fetch_max_bytes,  # as the worker fetches
        fetch_max_bytes=worker.fetch_max_bytes,
    )
    seen = 0
    start = None
    while seen < n:
        batch = consumer.poll(timeout_ms=1000, max_records=10_000)
        if start is None and batch:
            start = time.perf_counter()
        for msgs in batch.values():
            for m in msgs:
                orjson.loads(m.value)
                seen += 1
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return elapsed


def _children(ps: psutil.Process) -> list[psutil.Process]:
    try:
        return ps.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@dataclass(frozen=True)
class IngestRun:
    """One `mhhs ingest` run, from its log and the RSS samples."""

    busy: float  # seconds, first assignment to last commit
    peak_mb: float  # largest process
    tree_mb: float  # all processes together
    commits: list[float]  # commit seconds per batch
    spread: float  # how long after the first member the last one got its first partitions
    stages: dict[str, float]  # seconds per stage (poll, decode, commit), all members together


def run_ingest(bootstrap: str, topic_env: dict[str, str], warehouse: Path, log: Path, processes: int = 1) -> IngestRun:
    """Run `mhhs ingest` until idle over what the topics hold, and read what it did from its log."""
    env = dict(os.environ)
    env.update(topic_env)
    env.update(
        {
            "MHHS_KAFKA_BOOTSTRAP": bootstrap,
            "MHHS_WAREHOUSE": str(warehouse),
            "MHHS_GROUP_ID": f"bench-{uuid.uuid4().hex[:8]}",
            "MHHS_LOG_LEVEL": "INFO",
        }
    )
    started = time.perf_counter()
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mhhs", "ingest", "--until-idle", "5", "--processes", str(processes)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
        ps = psutil.Process(proc.pid)
        peak = peak_tree = 0
        while proc.poll() is None:
            rss = []
            for p in [ps, *_children(ps)]:  # the largest process, and all of them (for --processes)
                try:
                    rss.append(p.memory_info().rss)
                except psutil.NoSuchProcess:  # a member that just ended
                    continue
            if rss:
                peak, peak_tree = max(peak, *rss), max(peak_tree, sum(rss))
            time.sleep(0.2)
        proc.wait()
    total = time.perf_counter() - started
    commits, first, last = [], None, None
    stages = {"poll": 0.0, "decode": 0.0, "commit": 0.0}
    assigned: dict[str, str] = {}  # each member's first assignment
    for line in log.read_bytes().splitlines():
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(ev, dict):
            print("ingest printed:", line[:200].decode(errors="replace"), file=sys.stderr)
            continue
        if ev.get("event") == "partitions_assigned":
            first = first or ev["timestamp"]
            assigned.setdefault(ev.get("worker", ""), ev["timestamp"])
        if ev.get("event") == "batch_committed":
            commits.append(float(ev["commit_seconds"]))
            for stage in stages:
                stages[stage] += float(ev.get(f"{stage}_seconds", 0.0))
            last = ev["timestamp"]

    busy = total
    if first and last:
        busy = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    starts = sorted(datetime.fromisoformat(t) for t in assigned.values())
    spread = (starts[-1] - starts[0]).total_seconds() if starts else 0.0
    return IngestRun(busy, peak / 2**20, peak_tree / 2**20, commits, spread, stages)


def files_per_partition(warehouse: Path) -> tuple[int, int]:
    from lakehouse.catalog import open_catalog
    from lakehouse.read import read_table  # noqa: F401  (ensures the package imports)
    from lakehouse.settings import LakehouseSettings
    from lakehouse.tables import EVENTS, ensure_table

    lake = LakehouseSettings(warehouse=str(warehouse))
    table = ensure_table(open_catalog(lake), lake, EVENTS)
    files = table.inspect.files()
    parts = {str(p) for p in files.column("partition").to_pylist()}
    return files.num_rows, len(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=1, help="also run `mhhs ingest --processes N` (goal 1.5x)")
    parser.add_argument("--runs", type=int, default=3, help="alternating rounds of each path; medians are reported")
    args = parser.parse_args()
    for name in ("messages", "processes", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bootstrap, settings = broker(root / "kafka")
        api = settings.api_version_tuple()
        topic = "mhhs.consumption.if-021"
        ensure_topics(bootstrap, api, [TopicPlan(topic, 6, (("max.message.bytes", "8388608"),))])
        t0 = time.perf_counter()
        n, nbytes = produce(bootstrap, api, topic, args.messages)
        produce_s = time.perf_counter() - t0
        create_topics(settings.model_copy(update={"kafka_bootstrap": bootstrap}), bootstrap)  # as the worker does
        # the paths alternate, each round from the start of the same topics (a fresh group and
        # warehouse each time), so a noisy minute on this shared machine falls on one round
        bases: list[float] = []
        ingests: list[IngestRun] = []
        scaleds: list[IngestRun] = []
        for r in range(args.runs):
            bases.append(baseline(bootstrap, api, list(load_topic_catalogue().names), n))
            ingests.append(run_ingest(bootstrap, {}, root / f"warehouse-{r}", root / f"ingest-{r}.log"))
            if args.processes > 1:
                where = root / f"warehouse-n{r}"
                scaleds.append(run_ingest(bootstrap, {}, where, root / f"ingest-n{r}.log", args.processes))
            print(
                f"round {r + 1}: baseline {n / bases[-1]:,.0f} msg/s, ingest {n / ingests[-1].busy:,.0f} msg/s"
                + (f", --processes {args.processes} {n / scaleds[-1].busy:,.0f} msg/s" if scaleds else ""),
                flush=True,
            )
        files, partitions = files_per_partition(root / "warehouse-0")
    base_s = statistics.median(bases)
    ingest_s = statistics.median(i.busy for i in ingests)
    peak_mb, tree_mb = max(i.peak_mb for i in ingests), max(i.tree_mb for i in ingests)
    commits = [c for i in ingests for c in i.commits]
    # where one worker's busy time went (the round nearest the median), per message
    typical = min(ingests, key=lambda i: abs(i.busy - ingest_s))
    by_stage = {k: round(v / n * 1e6, 1) for k, v in typical.stages.items()}
    by_stage["other"] = round((typical.busy - sum(typical.stages.values())) / n * 1e6, 1)
    scaled = None
    if scaleds:
        scaled = (
            statistics.median(x.busy for x in scaleds),
            max(x.peak_mb for x in scaleds),
            max(x.tree_mb for x in scaleds),
        )
    mb = nbytes / 2**20
    figures = {
        "messages": n,
        "megabytes": round(mb, 1),
        "produce_seconds": round(produce_s, 2),
        "baseline": {"seconds": round(base_s, 2), "msgs_per_s": round(n / base_s), "mb_per_s": round(mb / base_s, 1)},
        "ingest": {
            "seconds": round(ingest_s, 2),
            "msgs_per_s": round(n / ingest_s),
            "mb_per_s": round(mb / ingest_s, 1),
            "peak_rss_mb": round(peak_mb),
            "peak_rss_all_processes_mb": round(tree_mb),
            "commits": len(commits),
            "commit_p50_s": round(percentile(commits, 0.5), 3),
            "commit_p95_s": round(percentile(commits, 0.95), 3),
            "us_per_message_by_stage": by_stage,
            "data_files": files,
            "partitions": partitions,
            "files_per_partition": round(files / max(1, partitions), 2),
        },
        "ratio_ingest_to_baseline": round(base_s / ingest_s, 3),  # median baseline / median ingest
        "runs": args.runs,
        "paired_ratios": [round(b / i.busy, 3) for b, i in zip(bases, ingests, strict=True)],
    }
    if scaled is not None:
        figures["processes"] = {
            "n": args.processes,
            "seconds": round(scaled[0], 2),
            "msgs_per_s": round(n / scaled[0]),
            "largest_process_peak_rss_mb": round(scaled[1]),
            "all_processes_peak_rss_mb": round(scaled[2]),
            "speedup_vs_one_process": round(ingest_s / scaled[0], 3),
            "paired_speedups": [round(i.busy / x.busy, 3) for i, x in zip(ingests, scaleds, strict=True)],
            "last_member_assigned_after_first_s": [round(x.spread, 2) for x in scaleds],
            "goal_speedup": 1.5,
        }
    rows: list[tuple[str, ...]] = [
        ("baseline (kafka-python + orjson)", f"{n / base_s:,.0f}", f"{mb / base_s:,.1f}", "-", "-"),
        (
            "mhhs ingest (committed Iceberg)",
            f"{n / ingest_s:,.0f}",
            f"{mb / ingest_s:,.1f}",
            f"{peak_mb:,.0f} ({tree_mb:,.0f} all)",
            f"{percentile(commits, 0.5):.3f} / {percentile(commits, 0.95):.3f}",
        ),
        ("ratio ingest / baseline", f"{base_s / ingest_s:.3f}", "", "", ""),
        ("ingest us/msg: " + " / ".join(by_stage), " / ".join(f"{v:.1f}" for v in by_stage.values()), "", "", ""),
    ]
    if scaled is not None:
        rows.append(
            (f"mhhs ingest --processes {args.processes}", f"{n / scaled[0]:,.0f}", f"{mb / scaled[0]:,.1f}",
             f"{scaled[1]:,.0f} ({scaled[2]:,.0f} all)", f"speed-up {ingest_s / scaled[0]:.2f}x (goal 1.5)")
        )  # fmt: skip
    headers = ("path", "msgs/s", "MB/s", "peak RSS MB, largest process", "commit p50/p95 s")
    write_results("ingest", figures, rows, headers)


if __name__ == "__main__":
    main()
