"""MPAN tokens and keyed hashes: stable, joinable pseudonyms (DOMAIN.md).

A token keeps the two distributor digits, takes ten digits from an HMAC of the MPAN and
recomputes the check digit, so it still passes quality rule 1 and joins across tables.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from contract.identifiers import mpan_check_digit

DEV_SECRET = "dev-only-insecure-secret-change-me-0123456789"
"""The development default of every secret; refused outside development mode."""
DEV_MASK_SECRET = DEV_SECRET + "-mask"


@lru_cache(maxsize=1 << 20)
def mpan_token(mpan: str, secret: bytes) -> str:
    """Format-preserving MPAN token: distributor digits + 10 keyed-hash digits + check digit (memoised)."""
    digest = hmac.new(secret, mpan.encode(), hashlib.sha256).digest()
    middle = f"{int.from_bytes(digest[:8], 'big') % 10**10:010d}"
    body = mpan[:2] + middle
    return body + str(mpan_check_digit(body))


def keyed_hash(value: str, secret: bytes) -> str:
    """A 16-hex-digit keyed hash of ``value`` (meter IDs and other identifiers under token)."""
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:16]


def token_array(values: pa.Array | pa.ChunkedArray, secret: bytes) -> pa.Array:
    """``mpan_token`` over a column (string or binary), computed once per distinct MPAN."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    is_binary = pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)
    text = arr.cast(pa.large_string()) if is_binary else arr
    encoded = pc.dictionary_encode(text)
    uniques = [
        mpan_token(v, secret) if v is not None and len(v) == 13 else None for v in encoded.dictionary.to_pylist()
    ]
    out = pc.take(pa.array(uniques, pa.large_string()), encoded.indices)
    return out.cast(arr.type)
