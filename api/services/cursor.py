"""Signed, opaque replay cursors: a page's position, tamper-evident (HMAC-SHA256, truncated)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson

from api.services.errors import InvalidRequestError

_MAC_BYTES = 16


class CursorSigner:
    """Signs cursor documents and verifies them back."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, doc: dict[str, Any]) -> str:
        """An opaque, URL-safe cursor for ``doc``."""
        payload = orjson.dumps(doc)
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def verify(self, cursor: str) -> dict[str, Any]:
        """The document a cursor carries.

        Raises:
            InvalidRequestError: if it is malformed or was tampered with.
        """
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
            if not hmac.compare_digest(mac, self._mac(payload)):
                raise ValueError("signature")
            doc: dict[str, Any] = orjson.loads(payload)
            return doc
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise InvalidRequestError("the cursor is malformed or was tampered with", "invalid_cursor") from exc
