"""Quality results for callers: runs and completeness (not personal), findings (entitled and masked)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from access.guard import AccessGuard
from access.principal import Principal
from api.services.errors import NotFoundError
from lakehouse.findings import latest_findings, latest_runs
from lakehouse.store import Store
from lakehouse.tables import COMPLETENESS, QUALITY_FINDINGS, TABLES


def _json_rows(rows: pa.Table) -> list[dict[str, Any]]:
    return [
        {k: (v.isoformat() if isinstance(v, datetime | date) else v) for k, v in r.items()} for r in rows.to_pylist()
    ]


def _between(rows: pa.Table, column: str, date_from: date | None, date_to: date | None) -> pa.Table:
    if date_from is not None:
        rows = rows.filter(pc.greater_equal(rows[column], pa.scalar(date_from, pa.date32())))
    if date_to is not None:
        rows = rows.filter(pc.less_equal(rows[column], pa.scalar(date_to, pa.date32())))
    return rows


@dataclass
class QualityService:
    """The latest quality runs, their findings and the completeness certificates."""

    _store: Store
    _guard: AccessGuard
    _batch_rows: int
    _docs_dir: Path

    def runs(self, date_from: date | None, date_to: date | None) -> list[dict[str, Any]]:
        """The latest run of each date (one row per suite)."""
        rows = _between(latest_runs(self._store), "utc_settlement_date", date_from, date_to)
        return _json_rows(rows.sort_by([("utc_settlement_date", "ascending"), ("suite", "ascending")]))

    def findings(
        self,
        principal: Principal,
        rule: int | None,
        severity: str | None,
        date_from: date | None,
        date_to: date | None,
    ) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
        """The latest findings, filtered, as the caller may see them (its MPANs on its dates; tokens for some)."""
        rows = latest_findings(self._store, date_from, date_to)
        if rule is not None:
            rows = rows.filter(pc.equal(rows["rule"], rule))
        if severity is not None:
            rows = rows.filter(pc.equal(rows["severity"], severity))
        schema = TABLES[QUALITY_FINDINGS].arrow_schema
        rows = rows.cast(schema)
        snap = self._guard.current_snapshot()
        return self._guard.protect(
            principal, iter(rows.to_batches(self._batch_rows)), schema, snap, (), self._batch_rows
        )

    def completeness(self, topic: str | None, day: date | None) -> list[dict[str, Any]]:
        """The latest certificate of each topic x date (optionally one topic, one date)."""
        rows = self._store.read(COMPLETENESS)
        if rows.num_rows == 0:
            return []
        if topic is not None:
            rows = rows.filter(pc.equal(rows["topic"], topic))
        rows = _between(rows, "utc_settlement_date", day, day)
        latest: dict[tuple[str, date], dict[str, Any]] = {}
        for r in rows.sort_by([("certified_at", "descending")]).to_pylist():
            latest.setdefault((r["topic"], r["utc_settlement_date"]), r)
        ordered = sorted(latest.values(), key=lambda r: (r["utc_settlement_date"], r["topic"]))
        return _json_rows(pa.Table.from_pylist(ordered, schema=rows.schema))

    def docs_file(self, path: str) -> Path:
        """A file of the Data Docs site.

        Raises:
            NotFoundError: ``docs_not_found`` when there is no such file (or no site yet).
        """
        root = self._docs_dir.resolve()
        try:
            target = (root / (path or "index.html")).resolve()
            if target.is_dir():
                target = target / "index.html"
            found = target.is_relative_to(root) and target.is_file()
        except (OSError, ValueError):  # a name the file system cannot hold is no page either
            found = False
        if not found:
            raise NotFoundError(f"no Data Docs page {path[:200]!r}; run `mhhs quality run`", "docs_not_found")
        return target
