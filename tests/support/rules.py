"""An independent check of DOMAIN.md's twelve business rules over simulated records, in plain Python.

Written from DOMAIN.md alone (no product code beyond the contract's check digit), record by record,
as the ground truth the simulator's manifest and the quality suites are measured against. It
returns, per rule, the set of transaction IDs of the IF-021 messages (or registration messages)
that break it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from contract.identifiers import DNO_BY_DISTRIBUTOR, is_valid_mpan

OPEN = date(9999, 12, 31)
LONDON = ZoneInfo("Europe/London")
DS_ROLES = {"SDS", "ADS", "UMSDS"}


@dataclass
class _History:
    """One MPAN's registration history, as the registration messages say."""

    confirmations: list[tuple[date, str, list[tuple[str, str, str]]]] = field(default_factory=list)
    ended: list[tuple[str, str, date]] = field(default_factory=list)  # (mpid, role, effective to)
    energisation: list[tuple[date, str, str]] = field(default_factory=list)  # (from, sent, E|D)

    def data_service(self, day: date) -> str | None:
        """The DIP ID of the data service appointed on ``day`` (None: nobody)."""
        confirmed = sorted(self.confirmations, key=lambda c: (c[0], c[1]))
        for i, (eff, _, appts) in enumerate(confirmed):
            nxt = confirmed[i + 1][0] - timedelta(days=1) if i + 1 < len(confirmed) else OPEN
            if not eff <= day <= nxt:
                continue
            for role, mpid, dip in appts:
                if role not in DS_ROLES:
                    continue
                ends = [to for m, r, to in self.ended if m == mpid and r == role and to >= eff]
                if day <= min(ends, default=OPEN):
                    return dip
        return None

    def energised(self, day: date) -> bool:
        state = "E"
        for eff, _, status in sorted(self.energisation):
            if eff <= day:
                state = status
        return state == "E"


def _decimals(value: Any) -> int:
    text = format(Decimal(str(value)).normalize(), "f")
    return len(text.split(".", 1)[1]) if "." in text else 0


def _local_half_hour(period: dict[str, Any]) -> str:
    """The Europe/London clock time a period starts at: "that period" of the day as the premises live it."""
    end = datetime.fromisoformat(period["settlementPeriodEffectiveToDateTime"].replace("Z", "+00:00"))
    return (end - timedelta(minutes=30)).astimezone(LONDON).strftime("%H:%M")


def check_rules(values: Iterable[bytes | None]) -> dict[int, set[str]]:
    """Per rule number, the transaction IDs of the messages that break it (rule 5 is a KPI: never)."""
    docs = []
    for v in values:
        if v is None:
            continue
        try:
            doc = orjson.loads(v)
            doc["CommonBlock"]["S0"]["interfaceID"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        docs.append(doc)
    broken: dict[int, set[str]] = defaultdict(set)
    history: dict[str, _History] = defaultdict(_History)
    txns = Counter(d["CommonBlock"]["D0"]["transactionID"] for d in docs)
    for doc in docs:
        c, body = doc["CommonBlock"], doc["CustomBlock"]
        iface, txn = c["S0"]["interfaceID"], c["D0"]["transactionID"]
        m0 = c.get("M0")
        if txns[txn] > 1:
            broken[3].add(txn)
        if m0 is None:
            continue
        mpan = m0["MPANCore"]
        if not is_valid_mpan(mpan):
            broken[1].add(txn)
        home = DNO_BY_DISTRIBUTOR.get(mpan[:2])
        if home is not None and m0["GSPGroupID"] != home[1]:
            broken[12].add(txn)
        sent = c["S1"]["senderTimestamp"]
        h = history[mpan]
        if iface == "IF-036":
            appts = [(a["serviceRole"], a["serviceMPID"], a["serviceDIPID"]) for a in body["appointments"]]
            h.confirmations.append((date.fromisoformat(body["effectiveFromDate"]), sent, appts))
            h.energisation.append((date.fromisoformat(body["effectiveFromDate"]), sent, body["energisationStatus"]))
        elif iface == "IF-037":
            a = body["appointment"]
            h.ended.append((a["serviceMPID"], a["serviceRole"], date.fromisoformat(body["effectiveToDate"])))
        elif iface == "IF-018":
            h.energisation.append((date.fromisoformat(body["effectiveFromDate"]), sent, body["energisationStatus"]))
    for mpan, h in history.items():  # rule 11: an appointment never ends before it began
        for mpid, role, to in h.ended:
            began = [eff for eff, _, appts in h.confirmations if any(m == mpid and r == role for r, m, _ in appts)]
            if began and to < min(began):
                broken[11].add(mpan)
    series: dict[tuple[str, str], list[tuple[date, float]]] = defaultdict(list)  # AI values per MPAN x period
    latest: dict[tuple[str, str, date], tuple[str, str]] = {}
    for doc in docs:
        c, body = doc["CommonBlock"], doc["CustomBlock"]
        if c["S0"]["interfaceID"] != "IF-021":
            continue
        txn, mpan = c["D0"]["transactionID"], c["M0"]["MPANCore"]
        day = date.fromisoformat(body["utcSettlementDate"])
        key = (mpan, body["measurementQuantityID"], day)
        if key not in latest or latest[key] < (c["S1"]["senderTimestamp"], txn):
            latest[key] = (c["S1"]["senderTimestamp"], txn)
        h = history.get(mpan, _History())
        if not h.confirmations or day < min(eff for eff, _, _ in h.confirmations):
            broken[11].add(txn)  # consumption before any confirmation
        if h.data_service(day) != body["dataServiceDIPID"]:
            broken[7].add(txn)
        if not h.energised(day):
            broken[6].add(txn)
        periods = body["periods"]
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        expected = [(start + timedelta(minutes=30 * (i + 1))).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(48)]
        if sorted(p["settlementPeriodEffectiveToDateTime"] for p in periods) != expected:
            broken[2].add(txn)
        zeros = longest = 0
        for p in periods:
            if p["settlementPeriodQualityIndicator"] != "A" and p.get("estimationReasonCode") is None:
                broken[4].add(txn)
            v = p["consumption"]
            if v < 0 or _decimals(v) > 3 or abs(v) >= 1e9:
                broken[8].add(txn)
            zeros = zeros + 1 if v == 0 else 0
            longest = max(longest, zeros)
        if body["measurementQuantityID"] == "AI" and longest >= 12 and h.energised(day):
            broken[10].add(txn)
    for doc in docs:  # rule 9 over the current version of each AI day: 5x the median of the 28 days before
        c, body = doc["CommonBlock"], doc["CustomBlock"]
        if c["S0"]["interfaceID"] != "IF-021" or body["measurementQuantityID"] != "AI":
            continue
        mpan, day = c["M0"]["MPANCore"], date.fromisoformat(body["utcSettlementDate"])
        if latest[(mpan, "AI", day)][1] != c["D0"]["transactionID"]:
            continue
        for p in body["periods"]:
            series[(mpan, _local_half_hour(p))].append((day, float(p["consumption"])))
    for doc in docs:
        c, body = doc["CommonBlock"], doc["CustomBlock"]
        if c["S0"]["interfaceID"] != "IF-021" or body["measurementQuantityID"] != "AI":
            continue
        mpan, day, txn = c["M0"]["MPANCore"], date.fromisoformat(body["utcSettlementDate"]), c["D0"]["transactionID"]
        if latest[(mpan, "AI", day)][1] != txn:
            continue
        for p in body["periods"]:
            history_of_period = series[(mpan, _local_half_hour(p))]
            before = [v for d, v in history_of_period if day - timedelta(days=28) <= d < day]
            if len(before) >= 5 and statistics.median(before) > 0 and p["consumption"] > 5 * statistics.median(before):
                broken[9].add(txn)
    return dict(broken)
