"""The synthetic market: participants with MPIDs and DIP IDs, and meter points (MPANs)."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np

from contract.identifiers import (
    DNO_BY_DISTRIBUTOR,
    GSP_GROUPS,
    IDNO_DISTRIBUTORS,
    mpan_check_digit,
)

# (role, count) of the service providers; counts follow DOMAIN.md's indicative figures.
SERVICE_COUNTS: dict[str, int] = {
    "SDS": 20,
    "ADS": 10,
    "UMSDS": 5,
    "MSS": 70,
    "MSA": 30,
    "UMSO": 12,
}
SUPPLIER_COUNT = 60
DS_FOR_SEGMENT = {"S": "SDS", "A": "ADS", "U": "UMSDS"}
MS_FOR_SEGMENT = {"S": "MSS", "A": "MSA", "U": "UMSO"}
PROFILE_FOR_SEGMENT = {"S": "business", "A": "advanced", "U": "unmetered"}  # non-domestic premises
CONNECTION_FOR_SEGMENT = {"S": ("W",), "A": ("L", "H"), "U": ("U",)}


@dataclass(frozen=True, slots=True)
class Participant:
    """A market participant in one role: MPID and the DIP ID of that MPID-and-role pair."""

    mpid: str
    role: str
    dip_id: str


@dataclass(slots=True)
class MeterPoint:
    """One MPAN and its current registration state (mutated as the simulation advances)."""

    mpan: str
    distributor: str
    gsp_group: str
    segment: str
    connection_type: str
    domestic: bool
    consent: str
    energised: bool
    supplier: Participant
    data_service: Participant
    metering_service: Participant
    meter_ids: tuple[str, ...]
    address_lines: tuple[str, ...]
    postcode: str
    base_kwh: float
    solar: bool
    registered_from: str
    profile: str = ""  # the load shape of the premises (set at creation; an indicator change does not change it)

    def __post_init__(self) -> None:
        if not self.profile:
            self.profile = "domestic" if self.domestic else PROFILE_FOR_SEGMENT[self.segment]


@dataclass(slots=True)
class Market:
    """Everyone in the market and every meter point."""

    suppliers: list[Participant]
    services: dict[str, list[Participant]]
    regs: dict[str, Participant]
    ldso: dict[str, Participant]
    mds: Participant
    lss: Participant
    isd: Participant
    meter_points: list[MeterPoint] = field(default_factory=list)

    def all_participants(self) -> list[Participant]:
        out = [*self.suppliers, *self.regs.values(), *self.ldso.values(), self.mds, self.lss, self.isd]
        for group in self.services.values():
            out.extend(group)
        return out


def _mpids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    letters = np.array(list(string.ascii_uppercase))
    out: list[str] = []
    while len(out) < n:
        code = "".join(rng.choice(letters, 4))
        if code not in taken:
            taken.add(code)
            out.append(code)
    return out


def _dip_ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        dip = str(int(rng.integers(1_000_000_000, 9_999_999_999)))
        if dip not in taken:
            taken.add(dip)
            out.append(dip)
    return out


def build_participants(rng: np.random.Generator) -> Market:
    """Create suppliers, service providers, registration services, LDSOs and central roles."""
    mpids_taken = {mpid for mpid, _ in DNO_BY_DISTRIBUTOR.values()}
    dips: set[str] = set()

    def make(role: str, n: int) -> list[Participant]:
        return [
            Participant(m, role, d) for m, d in zip(_mpids(rng, n, mpids_taken), _dip_ids(rng, n, dips), strict=True)
        ]

    suppliers = make("SUP", SUPPLIER_COUNT)
    services = {role: make(role, n) for role, n in SERVICE_COUNTS.items()}
    distributors = [*DNO_BY_DISTRIBUTOR, *IDNO_DISTRIBUTORS]
    idno_mpids = _mpids(rng, len(IDNO_DISTRIBUTORS), mpids_taken)
    ldso: dict[str, Participant] = {}
    regs: dict[str, Participant] = {}
    for i, dist in enumerate(distributors):
        mpid = DNO_BY_DISTRIBUTOR[dist][0] if dist in DNO_BY_DISTRIBUTOR else idno_mpids[i - 14]
        ldso[dist] = Participant(mpid, "LDSO", _dip_ids(rng, 1, dips)[0])
        regs[dist] = Participant(mpid, "REGS", _dip_ids(rng, 1, dips)[0])
    central = _dip_ids(rng, 3, dips)
    return Market(
        suppliers=suppliers,
        services=services,
        regs=regs,
        ldso=ldso,
        mds=Participant("MDSV", "MDS", central[0]),
        lss=Participant("LSSV", "LSS", central[1]),
        isd=Participant("ISDA", "ISD", central[2]),
    )


_STREETS = (
    "High Street",
    "Station Road",
    "Church Lane",
    "Mill Road",
    "Park Avenue",
    "Victoria Road",
    "Green Lane",
    "Manor Way",
    "Kings Road",
    "Queens Drive",
)
_TOWNS = (
    "Ashford",
    "Barnet",
    "Crewe",
    "Derby",
    "Exeter",
    "Falkirk",
    "Grimsby",
    "Hull",
    "Ipswich",
    "Jarrow",
    "Kendal",
    "Leeds",
    "Mold",
    "Newport",
)


def _postcode(rng: np.random.Generator) -> str:
    a = string.ascii_uppercase
    area = a[int(rng.integers(0, 26))] + a[int(rng.integers(0, 26))]
    district = int(rng.integers(1, 99))
    sector = int(rng.integers(0, 9))
    unit = a[int(rng.integers(0, 26))] + a[int(rng.integers(0, 26))]
    return f"{area}{district} {sector}{unit}"


def build_meter_points(rng: np.random.Generator, market: Market, n: int, start_ordinal: int) -> list[MeterPoint]:
    """Create ``n`` meter points with valid MPANs and a coherent initial registration."""
    from datetime import date

    dnos = list(DNO_BY_DISTRIBUTOR)
    seen: set[str] = set()
    points: list[MeterPoint] = []
    while len(points) < n:
        dist = (
            dnos[int(rng.integers(0, len(dnos)))]
            if rng.random() < 0.9
            else IDNO_DISTRIBUTORS[int(rng.integers(0, len(IDNO_DISTRIBUTORS)))]
        )
        body = dist + "".join(str(d) for d in rng.integers(0, 10, 10))
        mpan = body + str(mpan_check_digit(body))
        if mpan in seen:
            continue
        seen.add(mpan)
        gsp = (
            DNO_BY_DISTRIBUTOR[dist][1]
            if dist in DNO_BY_DISTRIBUTOR
            else GSP_GROUPS[int(rng.integers(0, len(GSP_GROUPS)))]
        )
        r = rng.random()
        segment = "S" if r < 0.85 else ("A" if r < 0.95 else "U")
        conns = CONNECTION_FOR_SEGMENT[segment]
        domestic = segment == "S" and rng.random() < 0.9
        consent = ("M" if rng.random() < 0.05 else "H") if domestic else "H"
        ds_pool = market.services[DS_FOR_SEGMENT[segment]]
        ms_pool = market.services[MS_FOR_SEGMENT[segment]]
        base = {"S": 0.25 if domestic else 1.2, "A": 18.0, "U": 0.6}[segment]
        meter_ids = () if segment == "U" else (f"{segment}{int(rng.integers(10**9, 10**10 - 1))}",)
        days_before = int(rng.integers(1, 15))  # a migration wave just before the simulated days
        points.append(
            MeterPoint(
                mpan=mpan,
                distributor=dist,
                gsp_group=gsp,
                segment=segment,
                connection_type=conns[int(rng.integers(0, len(conns)))],
                domestic=domestic,
                consent=consent,
                energised=rng.random() > 0.01 and len(points) % 100 != 50,
                supplier=market.suppliers[int(rng.integers(0, len(market.suppliers)))],
                data_service=ds_pool[int(rng.integers(0, len(ds_pool)))],
                metering_service=ms_pool[int(rng.integers(0, len(ms_pool)))],
                meter_ids=meter_ids,
                address_lines=(
                    f"{int(rng.integers(1, 250))} {_STREETS[int(rng.integers(0, len(_STREETS)))]}",
                    _TOWNS[int(rng.integers(0, len(_TOWNS)))],
                ),
                postcode=_postcode(rng),
                base_kwh=float(base * rng.lognormal(0.0, 0.35)),
                solar=domestic and rng.random() < 0.04,
                registered_from=date.fromordinal(start_ordinal - days_before).isoformat(),
            )
        )
    return points
