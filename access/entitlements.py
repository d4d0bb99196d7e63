"""Row-level entitlements from the registration history in the store, as of the snapshot served.

A supplier sees the MPANs it is registered to on each settlement date, a data or metering
service those it is appointed to, an LDSO / registration service its own distributor's MPANs,
a third party what its grants cover; MDS, LSS, analysts, auditors and admins see every row.
Rows without an MPAN (ISD, load shapes) are public.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from access.grants import GrantScope
from access.intervals import domestic_rows, interval_table, row_date_column, within
from access.principal import ALL_ROWS, Principal
from contract.identifiers import DNO_BY_DISTRIBUTOR, is_ascii_digits

_DIST_BY_MPID = {mpid: dist for dist, (mpid, _) in DNO_BY_DISTRIBUTOR.items()}


def distributor_of(subject: str) -> str:
    """The distributor ID an LDSO / registration service subject stands for ('--' if none)."""
    if len(subject) == 2 and is_ascii_digits(subject):
        return subject
    return _DIST_BY_MPID.get(subject, "--")


class Entitlement:
    """The rows one caller may see: decided once per request, applied to each batch in Arrow.

    ``intervals`` (mpan, participant, role, eff_from, eff_to, domestic, ...) is the registration history
    as of the snapshot served; suppliers and appointed services need it for their rows, and roles
    whose policy treats domestic and non-domestic consumption apart need it for ``domestic``.
    """

    def __init__(self, principal: Principal, intervals: pa.Table | None, scope: GrantScope | None = None) -> None:
        self.role = principal.role
        self._scope = scope
        self._distributor = distributor_of(principal.subject)
        self._mine: pa.Table | None = None
        self._premises: pa.Table | None = None
        if intervals is not None:
            self._premises = interval_table(intervals, pc.equal(intervals["role"], "SUP"), ("domestic",))
        if principal.needs_history:
            if intervals is None:
                raise ValueError(f"entitlements for {self.role} need the registration intervals")
            own = pc.and_(pc.equal(intervals["participant"], principal.subject), pc.equal(intervals["role"], self.role))
            self._mine = interval_table(intervals, own)

    def __call__(self, rows: pa.Table) -> pa.Table:
        if self.role in ALL_ROWS or rows.num_rows == 0:
            return rows
        mpan = pc.cast(rows["mpan"], pa.string())
        public = pc.is_null(mpan)
        if self.role == "third_party":
            mask = self._scope.covers(rows, row_date_column(rows)) if self._scope else pa.repeat(False, rows.num_rows)
        elif self.role in ("LDSO", "REGS"):
            mask = pc.equal(pc.utf8_slice_codeunits(mpan, 0, 2), self._distributor)
        elif self._mine is not None:
            mask = within(rows, self._mine)
        else:
            mask = pa.repeat(False, rows.num_rows)
        return rows.filter(pc.or_(public, pc.fill_null(mask, False)))

    def domestic(self, rows: pa.Table) -> pa.Array:
        """Per row: the MPAN is domestic on the row's date, or not known to be otherwise."""
        if self._premises is None or "mpan" not in rows.column_names:
            return pa.repeat(True, rows.num_rows)
        return domestic_rows(rows, self._premises)


def filter_entitled(rows: pa.Table, principal: Principal, intervals: pa.Table | None) -> pa.Table:
    """The rows ``principal`` may see: (mpan, settlement date) inside one of its entitlements."""
    return Entitlement(principal, intervals)(rows)
