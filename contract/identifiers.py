"""Market identifiers: MPAN check digits, distributor IDs and GSP groups."""

from __future__ import annotations

MPAN_WEIGHTS = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)

# Distributor ID -> (DNO MPID, home GSP group), for the 14 DNOs.
DNO_BY_DISTRIBUTOR: dict[str, tuple[str, str]] = {
    "10": ("EELC", "_A"),
    "11": ("EMEB", "_B"),
    "12": ("LOND", "_C"),
    "13": ("MANW", "_D"),
    "14": ("MIDE", "_E"),
    "15": ("NEEB", "_F"),
    "16": ("NORW", "_G"),
    "17": ("HYDE", "_P"),
    "18": ("SPOW", "_N"),
    "19": ("SEEB", "_J"),
    "20": ("SOUT", "_H"),
    "21": ("SWAE", "_K"),
    "22": ("SWEB", "_L"),
    "23": ("YELG", "_M"),
}
IDNO_DISTRIBUTORS: tuple[str, ...] = tuple(str(i) for i in range(24, 39))
KNOWN_DISTRIBUTORS: frozenset[str] = frozenset(DNO_BY_DISTRIBUTOR) | frozenset(IDNO_DISTRIBUTORS)
GSP_GROUPS: tuple[str, ...] = tuple(f"_{c}" for c in "ABCDEFGHJKLMNP")


def is_ascii_digits(text: str) -> bool:
    """True when ``text`` is made of the ASCII digits 0-9 only (``str.isdigit`` also takes other scripts)."""
    return text.isascii() and text.isdigit()


def mpan_check_digit(first12: str) -> int:
    """Return the check digit for the first 12 digits of an MPAN core.

    Raises:
        ValueError: if ``first12`` is not exactly 12 decimal digits.
    """
    if len(first12) != 12 or not is_ascii_digits(first12):
        raise ValueError(f"expected 12 digits, got {first12!r}")
    total = sum(w * int(d) for w, d in zip(MPAN_WEIGHTS, first12, strict=True))
    return (total % 11) % 10


def is_valid_mpan(mpan: str) -> bool:
    """True when ``mpan`` is 13 digits, passes the check digit and has a known distributor."""
    if len(mpan) != 13 or not is_ascii_digits(mpan):
        return False
    return mpan[:2] in KNOWN_DISTRIBUTORS and mpan_check_digit(mpan[:12]) == int(mpan[12])
