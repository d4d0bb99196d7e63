"""Grants to authorised third parties: what data set, which rows, which columns, masked how much.

A grant names its recipient (the token subject), a data set (events of some topics, consumption,
the consumption aggregate, registration), row filters (dates, GSP groups, distributor IDs, MPANs),
columns and masking overrides. Masking starts from the ``third_party`` policy of ``access/policy.json``
and may only be stricter. Grants are kept in an append-only table (created, amended, revoked: every
version kept); tokens name grant IDs, and a third party sees the rows its grants cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from access.errors import AccessError
from access.policy import Policy
from contract.identifiers import GSP_GROUPS, KNOWN_DISTRIBUTORS, is_valid_mpan
from contract.topics import load_topic_catalogue

BASE_PROFILE = "third_party"
DATASETS = ("events", "consumption", "consumption_aggregate", "registration")
ORDER = {"keep": 3, "outward": 2, "token": 2, "aggregate": 1, "remove": 0}
"""How much of a field each action shows (a grant's override must not show more than the policy)."""


class GrantError(AccessError):
    """A grant asks for something the policy does not allow, or is not well formed; nothing was recorded."""


@dataclass(frozen=True)
class Grant:
    """One version of a grant."""

    grant_id: str
    recipient: str
    dataset: str
    schedule: str
    destination: str
    approved_by: str
    version: int = 1
    status: str = "active"  # or "revoked"
    topics: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    gsp_groups: tuple[str, ...] = ()
    distributors: tuple[str, ...] = ()
    mpans: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    masking: dict[str, str] = field(default_factory=dict)
    format: str = "parquet"
    valid_from: datetime = field(default_factory=lambda: datetime.now(UTC))
    valid_to: datetime | None = None
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    note: str = ""

    def active_at(self, at: datetime) -> bool:
        """True when the grant is in force at ``at`` (not revoked, inside its validity)."""
        return self.status == "active" and self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def filters_json(self) -> str:
        return orjson.dumps(
            {
                "topics": list(self.topics),
                "date_from": self.date_from.isoformat() if self.date_from else None,
                "date_to": self.date_to.isoformat() if self.date_to else None,
                "gsp_groups": list(self.gsp_groups),
                "distributors": list(self.distributors),
                "mpans": list(self.mpans),
            }
        ).decode()

    def to_row(self) -> dict[str, Any]:
        """The grant as a ``grants`` table row."""
        return {
            "grant_id": self.grant_id,
            "version": self.version,
            "status": self.status,
            "recipient": self.recipient,
            "dataset": self.dataset,
            "filters": self.filters_json(),
            "columns": orjson.dumps(list(self.columns)).decode(),
            "masking": orjson.dumps(self.masking).decode(),
            "schedule": self.schedule,
            "format": self.format,
            "destination": self.destination,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "approved_by": self.approved_by,
            "recorded_at": self.recorded_at,
            "note": self.note,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Grant:
        f = orjson.loads(row["filters"])
        return cls(
            grant_id=row["grant_id"],
            version=int(row["version"]),
            status=row["status"],
            recipient=row["recipient"],
            dataset=row["dataset"],
            schedule=row["schedule"],
            destination=row["destination"],
            approved_by=row["approved_by"],
            topics=tuple(f["topics"]),
            date_from=date.fromisoformat(f["date_from"]) if f["date_from"] else None,
            date_to=date.fromisoformat(f["date_to"]) if f["date_to"] else None,
            gsp_groups=tuple(f["gsp_groups"]),
            distributors=tuple(f["distributors"]),
            mpans=tuple(f["mpans"]),
            columns=tuple(orjson.loads(row["columns"])),
            masking=dict(orjson.loads(row["masking"])),
            format=row["format"],
            valid_from=row["valid_from"],
            valid_to=row["valid_to"],
            recorded_at=row["recorded_at"],
            note=row.get("note") or "",
        )

    def revoked(self, by: str, at: datetime | None = None) -> Grant:
        """The next version of this grant: revoked."""
        now = at or datetime.now(UTC)
        return replace(self, version=self.version + 1, status="revoked", approved_by=by, recorded_at=now)


def check_grant(grant: Grant, policy: Policy, available_columns: dict[str, tuple[str, ...]]) -> None:
    """Refuse a grant that is malformed or looser than the third-party policy.

    ``available_columns`` maps each data set to the columns a third party receives of it.

    Raises:
        GrantError: saying exactly what is wrong.
    """
    if grant.dataset not in DATASETS:
        raise GrantError(f"unknown dataset {grant.dataset!r}; one of {', '.join(DATASETS)}")
    if not grant.recipient or not grant.grant_id or not grant.approved_by:
        raise GrantError("a grant needs an ID, a recipient and who approved it")
    catalogue = load_topic_catalogue()
    unknown_topics = [t for t in grant.topics if catalogue.by_name(t) is None]
    if unknown_topics:
        raise GrantError(f"unknown topics: {', '.join(unknown_topics)}")
    if grant.topics and grant.dataset != "events":
        raise GrantError("topics filter events only (dataset events)")
    bad_mpans = [m for m in grant.mpans if not is_valid_mpan(m)]
    if bad_mpans:
        raise GrantError(f"not valid MPAN cores: {', '.join(bad_mpans[:5])}")
    bad_dist = [d for d in grant.distributors if d not in KNOWN_DISTRIBUTORS]
    if bad_dist:
        raise GrantError(f"unknown distributor IDs: {', '.join(bad_dist)}")
    bad_gsp = [g for g in grant.gsp_groups if g not in GSP_GROUPS]
    if bad_gsp:
        raise GrantError(f"unknown GSP groups: {', '.join(bad_gsp)}")
    if grant.date_from and grant.date_to and grant.date_from > grant.date_to:
        raise GrantError(f"date_from {grant.date_from} is after date_to {grant.date_to}")
    if grant.valid_to is not None and grant.valid_to <= grant.valid_from:
        raise GrantError("valid_to must be after valid_from")
    for kind, action in grant.masking.items():
        if kind not in policy.roles.get(BASE_PROFILE, {}):
            raise GrantError(f"unknown kind of field {kind!r} in the masking overrides")
        allowed = policy.action(BASE_PROFILE, kind)
        if action not in ORDER:
            raise GrantError(f"unknown masking action {action!r}")
        if ORDER[action] > ORDER[allowed]:
            raise GrantError(f"masking {kind}={action} is looser than the third-party policy ({allowed})")
    available = available_columns[grant.dataset]
    refused = [c for c in grant.columns if c not in available]
    if refused:
        hint = " (half-hourly values are aggregate only: use dataset consumption_aggregate)"
        hint = hint if "consumption_kwh" in refused and grant.dataset != "consumption_aggregate" else ""
        raise GrantError(f"columns not available to third parties in {grant.dataset}: {', '.join(refused)}{hint}")


def current_grants(rows: pa.Table) -> dict[str, Grant]:
    """The latest version of every grant in the ``grants`` table rows."""
    out: dict[str, Grant] = {}
    for row in rows.sort_by([("grant_id", "ascending"), ("version", "ascending")]).to_pylist():
        out[row["grant_id"]] = Grant.from_row(row)
    return out


@dataclass(frozen=True)
class GrantScope:
    """The rows a set of grants covers: any grant's MPANs / distributors / dates."""

    grants: tuple[Grant, ...]

    def covers(self, rows: pa.Table, date_column: str | None) -> pa.Array:
        """True where a row lies in at least one grant (rows without an MPAN are decided elsewhere)."""
        mpan = pc.cast(rows["mpan"], pa.string())
        out = pa.repeat(False, rows.num_rows)
        for g in self.grants:
            inside = pa.repeat(True, rows.num_rows)
            if g.mpans:
                inside = pc.and_(inside, pc.is_in(mpan, pa.array(g.mpans, pa.string())))
            if g.distributors:
                inside = pc.and_(inside, pc.is_in(pc.utf8_slice_codeunits(mpan, 0, 2), pa.array(g.distributors)))
            if g.gsp_groups and "gsp_group" in rows.column_names:
                inside = pc.and_(inside, pc.is_in(rows["gsp_group"], pa.array(g.gsp_groups)))
            if date_column is not None:
                day = pc.cast(rows[date_column], pa.date32())
                if g.date_from:
                    inside = pc.and_(inside, pc.greater_equal(day, pa.scalar(g.date_from, pa.date32())))
                if g.date_to:
                    inside = pc.and_(inside, pc.less_equal(day, pa.scalar(g.date_to, pa.date32())))
            out = pc.or_(out, pc.fill_null(inside, False))
        return out
