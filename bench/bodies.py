"""Reading an API body to a file (httpx or curl), timed to its first byte, and counting its rows."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq


def timed_get(url: str, headers: dict[str, str], out: Path | None = None) -> tuple[float, float, int]:
    """(seconds to first byte, total seconds, bytes) of a streamed GET (httpx), the body written to ``out``."""
    t0 = time.perf_counter()
    first = None
    total = 0
    with httpx.stream("GET", url, headers=headers, timeout=600) as resp, open(out or os.devnull, "wb") as sink:
        resp.raise_for_status()
        for chunk in resp.iter_raw(1 << 20):
            if first is None:
                first = time.perf_counter() - t0
            total += len(chunk)
            sink.write(chunk)
    return first or 0.0, time.perf_counter() - t0, total


def curl_get(url: str, headers: dict[str, str], out: Path) -> tuple[float, float, int]:
    """As ``timed_get``, read by curl into ``out``; the first byte is the body's (the file is watched
    until it is not empty; the headers come before it)."""
    head = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    first = None
    with subprocess.Popen(["curl", "-sS", "--fail", "-o", str(out), *head, url]) as curl:
        while first is None and curl.poll() is None:
            if out.exists() and out.stat().st_size:
                first = time.perf_counter() - t0
            else:
                time.sleep(0.002)
    total = time.perf_counter() - t0
    if curl.returncode:
        raise RuntimeError(f"curl exited {curl.returncode} for {url}")
    return first if first is not None else total, total, out.stat().st_size


def body_rows(fmt: str, path: Path) -> int:
    """The data rows in an API body (the Arrow trailer and the NDJSON end line must agree)."""
    if fmt == "arrow":
        rows, trailer = arrow_rows(path)
        if int(trailer.get(b"mhhs.rows", -1)) != rows:
            raise AssertionError(f"Arrow trailer says {trailer.get(b'mhhs.rows')!r} rows, body has {rows}")
        return rows
    if fmt == "parquet":
        return int(pq.read_metadata(str(path)).num_rows)
    lines = count_lines(path)
    if fmt == "csv":
        return lines - 1  # the header
    last = orjson.loads(path.read_bytes()[-4096:].rsplit(b"\n", 2)[-2])
    if last.get("type") != "end":
        raise AssertionError(f"NDJSON ends without its end line: {last}")
    if last["rows"] != lines - 1:
        raise AssertionError(f"NDJSON end line says {last['rows']} rows, body has {lines - 1}")
    return lines - 1


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            n += block.count(b"\n")
    return n


def arrow_rows(path: Path) -> tuple[int, dict[bytes, bytes]]:
    """Rows of an Arrow IPC stream and the custom metadata of its trailer (the last batch)."""
    rows = 0
    trailer: dict[bytes, bytes] = {}
    with pa.OSFile(str(path)) as f:
        reader = pa.ipc.open_stream(f)
        while True:
            try:
                batch, meta = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            rows += batch.num_rows
            if meta is not None:
                trailer = dict(meta)
    return rows, trailer
