"""Half-hourly consumption profiles by segment and season, vectorised over meter points."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

LONDON = ZoneInfo("Europe/London")
HOURS = np.arange(48) / 2.0 + 0.25  # mid-point of each local half hour


def _bump(centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((HOURS - centre) / width) ** 2)


# Shapes over 48 local half hours, normalised to mean 1.
_SHAPES = {
    "domestic": 0.45 + 0.6 * _bump(7.5, 1.2) + 1.3 * _bump(18.5, 2.0) + 0.3 * _bump(13, 3),
    "business": 0.35 + 1.4 * ((HOURS > 8) & (HOURS < 18)),
    "advanced": 0.55 + 0.9 * ((HOURS > 7) & (HOURS < 19)),
    "unmetered": 1.0 * ((HOURS < 7) | (HOURS > 17)) + 0.02,
    "solar": np.clip(np.sin((HOURS - 6.0) / 12.0 * np.pi), 0, None),
}
SHAPES = {k: v / v.mean() for k, v in _SHAPES.items()}


def period_ends(day: date) -> list[str]:
    """The 48 UTC period end times of a UTC settlement date, as ISO 8601 strings."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return [(start + timedelta(minutes=30 * (i + 1))).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(48)]


def local_shift(day: date) -> int:
    """How many half hours local time is ahead of UTC on ``day`` (0 in GMT, 2 in BST)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).astimezone(LONDON)
    offset = noon.utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 1800)


def season_factor(day: date) -> float:
    """Higher demand in winter: 1.35 in mid-January, 0.75 in mid-July."""
    doy = day.timetuple().tm_yday
    return float(1.05 + 0.3 * np.cos(2 * np.pi * (doy - 15) / 365.25))


def daily_values(rng: np.random.Generator, kinds: np.ndarray, base: np.ndarray, day: date) -> np.ndarray:
    """kWh per UTC half hour, shape (n, 48), rounded to 3 decimals and never negative."""
    shift = local_shift(day)
    out = np.empty((len(kinds), 48))
    for name, shape in SHAPES.items():
        mask = kinds == name
        if not mask.any():
            continue
        utc_shape = np.roll(shape, -shift)  # local half hour h is UTC half hour h - shift
        factor = 1.0 if name == "solar" else season_factor(day)
        if name == "solar":
            factor = 2.1 - season_factor(day)
        noise = rng.lognormal(0.0, 0.25, size=(int(mask.sum()), 48))
        out[mask] = base[mask, None] * utc_shape[None, :] * factor * noise
    return np.round(np.clip(out, 0.0, None), 3)
