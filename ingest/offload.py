"""Judging batches in a helper process, so the worker polls and commits while the last batch is judged.

A worker spends ~25 us of its ~75 us per 6.5 KB IF-021 message parsing and validating the value
(orjson + JSON Schema), all of it holding the GIL, while the machine's other core is nearly idle (the
broker used 0.1 core at 10 k msg/s, measured). A helper process does that work for the worker:

- the worker copies a due batch's values, with the topic, partition and offset columns the landing
  order needs, into one of two shared-memory segments (used in turn, so a segment's pages are
  touched once rather than faulted in per batch: ~9 us per fresh 4 KiB page on this VM);
- the request on the pipe is a few hundred bytes, the helper answers with the batch's ``Judged``
  (verdicts in landing order, envelope columns as Arrow);
- the worker takes the accepted values out of the segment into the events table and commits.

The helper runs ``ingest.validate.judge`` and ``ingest.decode.arrange``, the functions the worker runs
in process, on the same bytes; a batch the segment cannot hold, or a helper that fails, is judged in
the worker from the same segment, so a verdict never depends on where it was made.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from array import array
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import structlog

from ingest.decode import EVENTS_ARROW, QUARANTINE_ARROW, Judged, arrange
from ingest.kafka_client import PolledRecords
from ingest.validate import RecordValidator, gc_paused, judge

log = structlog.get_logger("ingest")

_ALIGN = 64


def _up(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one batch's columns sit in a segment (byte positions), and what the helper needs beside them."""

    segment: int
    n: int
    topics: tuple[str, ...]  # the batch's distinct topics; the segment holds each record's index into them
    nulls: tuple[int, ...]  # records with no value (tombstones)
    ends: int  # int64[n + 1]: each value's start, then the last one's end, relative to ``data``
    partitions: int  # int32[n]
    offsets: int  # int64[n]
    topic_index: int  # uint16[n]
    data: int
    nbytes: int  # of values

    @staticmethod
    def size(n: int, nbytes: int) -> int:
        return _up(8 * (n + 1)) + _up(4 * n) + _up(8 * n) + _up(2 * n) + nbytes


def write_batch(buf: memoryview, segment: int, polled: PolledRecords) -> Layout:
    """Copy ``polled``'s values and ordering columns into ``buf``; empties ``polled.values`` as it goes."""
    values, n = polled.values, len(polled)
    nulls = tuple(i for i, v in enumerate(values) if v is None) if None in values else ()
    lengths = [0 if v is None else len(v) for v in values] if nulls else list(map(len, values))  # type: ignore[arg-type]
    ends = pc.cumulative_sum(pa.array(lengths, pa.int64()))
    nbytes = ends[-1].as_py() if n else 0
    names = tuple(sorted(set(polled.topics)))
    index = {t: i for i, t in enumerate(names)}
    pos = 0
    at: list[int] = []
    for column in (
        b"\0" * 8 + ends.buffers()[1].to_pybytes(),
        array("i", polled.partitions).tobytes(),
        array("q", polled.offsets).tobytes(),
        array("H", [index[t] for t in polled.topics]).tobytes(),
    ):
        at.append(pos)
        buf[pos : pos + len(column)] = column
        pos = _up(pos + len(column))
    data = pos
    for i, value in enumerate(values):
        if value is not None:
            end = pos + len(value)
            buf[pos:end] = value
            pos = end
        values[i] = None  # released as soon as it is copied: the batch is never in memory twice
    values.clear()
    return Layout(segment, n, names, nulls, at[0], at[1], at[2], at[3], data, nbytes)


def read_batch(buf: memoryview, layout: Layout) -> tuple[list[str], list[int], list[int], list[memoryview | None]]:
    """The topics, partitions, offsets and values (views into ``buf``) that ``write_batch`` put there."""
    n = layout.n
    ends = buf[layout.ends : layout.ends + 8 * (n + 1)].cast("q")
    partitions = buf[layout.partitions : layout.partitions + 4 * n].cast("i").tolist()
    offsets = buf[layout.offsets : layout.offsets + 8 * n].cast("q").tolist()
    topics = [layout.topics[i] for i in buf[layout.topic_index : layout.topic_index + 2 * n].cast("H")]
    base = layout.data
    values: list[memoryview | None] = [buf[base + ends[i] : base + ends[i + 1]] for i in range(n)]
    for i in layout.nulls:
        values[i] = None
    ends.release()
    return topics, partitions, offsets, values


def judge_segment(validator: RecordValidator, buf: memoryview, layout: Layout) -> Judged:
    """Judge the batch ``layout`` describes, as ``ingest.decode.decode_batch`` judges a polled batch."""
    topics, partitions, offsets, values = read_batch(buf, layout)
    try:
        verdicts = judge(validator, topics, values)  # type: ignore[arg-type]  # memoryviews parse as bytes
        with gc_paused():
            return arrange(verdicts, topics, partitions, offsets)
    finally:
        for v in values:
            if v is not None:
                v.release()


def _buf(segment: SharedMemory) -> memoryview:
    buf = segment.buf
    assert buf is not None, "segment closed"
    return buf


def values_array(segment: SharedMemory, layout: Layout) -> pa.Array:
    """The batch's values as a large_binary array over the segment (no copy: take from it before reuse)."""
    whole = pa.py_buffer(_buf(segment))
    validity = None
    if layout.nulls:
        mask = [True] * layout.n
        for i in layout.nulls:
            mask[i] = False
        validity = pa.array(mask, pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(
        pa.large_binary(),
        layout.n,
        [validity, whole.slice(layout.ends, 8 * (layout.n + 1)), whole.slice(layout.data, layout.nbytes)],
        null_count=len(layout.nulls),
    )


def _serve(conn: multiprocessing.connection.Connection, names: list[str], max_message_bytes: int) -> None:
    """The helper's loop: judge each requested segment; a closed pipe ends it."""
    segments = [SharedMemory(name=name, create=False) for name in names]
    validator = RecordValidator(max_message_bytes)
    try:
        while True:
            try:
                layout: Layout = conn.recv()
            except EOFError:
                return
            conn.send(judge_segment(validator, _buf(segments[layout.segment]), layout))
    finally:
        for s in segments:
            s.close()


@dataclass(slots=True)
class Pending:
    """A batch handed to the helper: its columns (values excepted) and where its values are."""

    polled: PolledRecords
    layout: Layout
    helper: int | None  # the helper it was sent to (its generation), None if not sent


class JudgingHelper:
    """The worker's side of the helper: two segments used in turn, and the pipe to the helper process.

    ``submit`` copies a batch in and asks for its verdicts; ``collect`` waits for them and returns the
    batch's accepted values (in landing order) and rejected values as Arrow, copied out of the
    segment, which is then free for the next batch but one.
    """

    def __init__(self, validator: RecordValidator, max_message_bytes: int, segment_bytes: int) -> None:
        self._validator = validator
        self._max_message_bytes = max_message_bytes
        self.segment_bytes = segment_bytes
        self._segments = [SharedMemory(create=True, size=segment_bytes) for _ in range(2)]
        self._free = [0, 1]
        self._process: Any = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._generation = 0
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads or locks
        ours, theirs = context.Pipe()
        names = [s.name for s in self._segments]
        self._process = context.Process(
            target=_serve, args=(theirs, names, self._max_message_bytes), name="ingest-judge", daemon=True
        )
        self._process.start()
        theirs.close()
        self._conn = ours
        self._generation += 1

    def fits(self, polled: PolledRecords) -> bool:
        """Whether a batch fits a segment (else the worker judges it itself)."""
        return bool(self._free) and Layout.size(len(polled), polled.nbytes) <= self.segment_bytes

    def ready(self) -> bool:
        """Whether collecting the oldest batch submitted would not wait."""
        return self._conn is None or self._conn.poll()

    def submit(self, polled: PolledRecords) -> Pending:
        """Copy ``polled`` into a free segment (emptying ``polled.values``) and send it to be judged."""
        segment = self._free.pop(0)
        layout = write_batch(_buf(self._segments[segment]), segment, polled)
        helper = None
        if self._conn is not None:
            try:
                self._conn.send(layout)
                helper = self._generation
            except (OSError, ValueError) as exc:
                self._lost(exc)
        return Pending(polled, layout, helper)

    def collect(self, pending: Pending) -> tuple[Judged, pa.Array, pa.Array]:
        """The verdicts and the accepted and rejected values of a submitted batch; frees its segment."""
        layout = pending.layout
        segment = self._segments[layout.segment]
        judged: Judged | None = None
        if pending.helper == self._generation and self._conn is not None:  # else its helper was lost
            try:
                judged = self._conn.recv()
            except (EOFError, OSError) as exc:
                self._lost(exc)
        if judged is None:  # judged here, from the same bytes
            judged = judge_segment(self._validator, _buf(segment), layout)
        values = values_array(segment, layout)
        good = values.take(pa.array(judged.good, pa.int64()))
        bad = values.take(pa.array(judged.bad, pa.int64())).cast(QUARANTINE_ARROW.field("value").type)
        del values
        self._free.append(layout.segment)
        return judged, good.cast(EVENTS_ARROW.field("value").type), bad

    def _lost(self, exc: BaseException) -> None:
        log.warning("judging_helper_lost", error=f"{type(exc).__name__}: {exc}", exit_code=self._process.exitcode)
        self._stop_process()
        self._start()  # for the next batch; the one in hand is judged in the worker

    def _stop_process(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()

    def close(self) -> None:
        """End the helper and free the segments."""
        self._stop_process()
        for s in self._segments:
            try:
                s.close()
                s.unlink()
            except (BufferError, FileNotFoundError):  # an array still over it: freed at exit
                pass
