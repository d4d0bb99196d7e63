"""Row-level entitlements from the registration history in the store, as of the snapshot served.

A supplier sees the MPANs it is registered to on each settlement date, a data or metering
service those it is appointed to, an LDSO / registration service its own distributor's MPANs,
a third party what its grant lists; MDS, LSS, analysts, auditors and admins see every row.
Rows without an MPAN (ISD, load shapes) are public.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from access.principal import ALL_ROWS, SERVICE_ROLES, Principal
from contract.identifiers import DNO_BY_DISTRIBUTOR, is_ascii_digits

_DIST_BY_MPID = {mpid: dist for dist, (mpid, _) in DNO_BY_DISTRIBUTOR.items()}


def distributor_of(subject: str) -> str:
    """The distributor ID an LDSO / registration service subject stands for ('--' if none)."""
    if len(subject) == 2 and is_ascii_digits(subject):
        return subject
    return _DIST_BY_MPID.get(subject, "--")


_DATE_COLUMNS = ("settlement_date", "utc_settlement_date", "effective_from")


class Entitlement:
    """The rows one caller may see: decided once per request, applied to each batch in Arrow.

    ``intervals`` (mpan, participant, role, eff_from, eff_to) is the registration history as of the
    snapshot served; it is needed for suppliers and appointed services only.
    """

    def __init__(self, principal: Principal, intervals: pa.Table | None) -> None:
        self.role = principal.role
        self._grants = pa.array(sorted(set(principal.grants)), pa.string())
        self._distributor = distributor_of(principal.subject)
        self._mine: pa.Table | None = None
        if self.role == "SUP" or self.role in SERVICE_ROLES:
            if intervals is None:
                raise ValueError(f"entitlements for {self.role} need the registration intervals")
            own = pc.and_(pc.equal(intervals["participant"], principal.subject), pc.equal(intervals["role"], self.role))
            mine = intervals.filter(own)
            self._mine = pa.table(
                {
                    "mpan": pc.cast(mine["mpan"], pa.string()),
                    "eff_from": pc.cast(mine["eff_from"], pa.date32()),
                    "eff_to": pc.cast(mine["eff_to"], pa.date32()),
                }
            )

    def __call__(self, rows: pa.Table) -> pa.Table:
        if self.role in ALL_ROWS or rows.num_rows == 0:
            return rows
        mpan = pc.cast(rows["mpan"], pa.string())
        public = pc.is_null(mpan)
        if self.role == "third_party":
            mask = pc.is_in(mpan, self._grants)
        elif self.role in ("LDSO", "REGS"):
            mask = pc.equal(pc.utf8_slice_codeunits(mpan, 0, 2), self._distributor)
        elif self._mine is not None:
            mask = self._appointed(rows, mpan)
        else:
            mask = pa.array([False] * rows.num_rows)
        return rows.filter(pc.or_(public, pc.fill_null(mask, False)))

    def _appointed(self, rows: pa.Table, mpan: pa.ChunkedArray) -> pa.Array:
        """True where (mpan, date of the row) lies in one of the caller's appointment intervals."""
        assert self._mine is not None
        index = pa.array(range(rows.num_rows), pa.int64())
        date_col = next((c for c in _DATE_COLUMNS if c in rows.column_names), None)
        if date_col is None:
            return pc.is_in(mpan, self._mine["mpan"])
        probe = pa.table({"row": index, "mpan": mpan, "day": pc.cast(rows[date_col], pa.date32())})
        joined = probe.join(self._mine, keys="mpan", join_type="inner")
        inside = joined.filter(
            pc.and_(pc.greater_equal(joined["day"], joined["eff_from"]), pc.less_equal(joined["day"], joined["eff_to"]))
        )
        return pc.is_in(index, pc.unique(inside["row"]))


def filter_entitled(rows: pa.Table, principal: Principal, intervals: pa.Table | None) -> pa.Table:
    """The rows ``principal`` may see: (mpan, settlement date) inside one of its entitlements."""
    return Entitlement(principal, intervals)(rows)
