"""Reference data: Industry Standing Data (IF-047) and the LSS's load shapes (IF-022 / IF-023)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np

from contract.identifiers import GSP_GROUPS
from market.messages import SimRecord
from market.participants import MeterPoint
from market.profiles import SHAPES, period_ends
from market.state import SimulationState, sent_timestamp


class ReferenceData(SimulationState):
    """The reference-data part of a run."""

    def _isd(self, eff: date) -> Iterator[SimRecord]:
        datasets: dict[str, list[dict[str, Any]]] = {
            "market_participants": [
                {"mpid": p.mpid, "role": p.role, "dipID": p.dip_id} for p in self.market.all_participants()
            ],
            "gsp_groups": [{"gspGroupID": g} for g in GSP_GROUPS],
            "distributors": [
                {"distributorID": dist, "ldsoMPID": p.mpid, "ldsoDIPID": p.dip_id}
                for dist, p in sorted(self.market.ldso.items())
            ],
        }
        for name, records in datasets.items():
            _, rec = self._factory.build(
                "IF-047",
                "[ISDPublication]",
                self.market.isd,
                ["ALL"],
                sent_timestamp(eff, 3600),
                {"dataset": name, "effectiveFromDate": eff.isoformat(), "records": records},
                key=name,
            )
            yield self._emit(rec)

    def _load_shapes(self, day: date) -> Iterator[SimRecord]:
        """IF-022 load shapes and IF-023 totals per GSP group from the LSS."""
        m = self.market
        ends = period_ends(day)
        sent_at = sent_timestamp(day + timedelta(days=2), 7200)
        by_gsp: dict[str, list[MeterPoint]] = {}
        for mp in m.meter_points:
            by_gsp.setdefault(mp.gsp_group, []).append(mp)
        for gsp in GSP_GROUPS:
            points = by_gsp.get(gsp, [])
            for category, shape in (("DOM", SHAPES["domestic"]), ("NDOM", SHAPES["business"])):
                values = np.round(shape / 48.0, 6).tolist()
                _, rec = self._factory.build(
                    "IF-022",
                    "[LoadShapePeriods]",
                    m.lss,
                    ["PUBLIC"],
                    sent_at,
                    {
                        "gspGroupID": gsp,
                        "utcSettlementDate": day.isoformat(),
                        "loadShapeCategory": category,
                        "periods": [
                            {"settlementPeriodEffectiveToDateTime": e, "loadShapeValue": v}
                            for e, v in zip(ends, values, strict=True)
                        ],
                    },
                    key=gsp,
                )
                yield self._emit(rec)
            dom = sum(1 for p in points if p.domestic)
            _, rec = self._factory.build(
                "IF-023",
                "[LoadShapeTotals]",
                m.lss,
                ["PUBLIC"],
                sent_at,
                {
                    "gspGroupID": gsp,
                    "utcSettlementDate": day.isoformat(),
                    "totals": [
                        {
                            "loadShapeCategory": "DOM",
                            "meteringPointCount": dom,
                            "totalConsumption": round(sum(p.base_kwh for p in points if p.domestic) * 48, 3),
                        },
                        {
                            "loadShapeCategory": "NDOM",
                            "meteringPointCount": len(points) - dom,
                            "totalConsumption": round(sum(p.base_kwh for p in points if not p.domestic) * 48, 3),
                        },
                    ],
                },
                key=gsp,
            )
            yield self._emit(rec)
