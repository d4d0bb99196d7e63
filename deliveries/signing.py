"""Ed25519 signing of manifests as detached JWS (RFC 7515 appendix F, with RFC 7797's unencoded payload).

The signature travels in ``manifest.json.jws`` as ``<header>..<signature>``; the header names the
key (``kid``, the SHA-256 of the public key). Recipients verify with the public key or the JWKS
the API publishes at ``/v1/deliveries/keys``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from deliveries.errors import DeliveryError

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class SigningKey:
    """A private key and the ID its public half is published under."""

    private: Ed25519PrivateKey
    kid: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def key_id(public: Ed25519PublicKey) -> str:
    """The key's ID: the first 16 hex digits of the SHA-256 of its raw public bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_key(key_file: Path, jwks_file: Path) -> SigningKey:
    """The signing key at ``key_file`` (made, with its JWKS, when missing).

    Raises:
        DeliveryError: if the file is not an Ed25519 private key.
    """
    if key_file.exists():
        try:
            private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        except ValueError as exc:
            raise DeliveryError(f"{key_file} is not a PEM private key: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise DeliveryError(f"{key_file} is not an Ed25519 key")
    else:
        private = Ed25519PrivateKey.generate()
        key_file.parent.mkdir(parents=True, exist_ok=True)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    key = SigningKey(private, key_id(private.public_key()))
    publish_jwks(jwks_file, [key.public])
    return key


def jwk(public: Ed25519PublicKey) -> dict[str, Any]:
    """The public key as a JWK (OKP, Ed25519) with its ``kid``."""
    doc: dict[str, Any] = orjson.loads(OKPAlgorithm.to_jwk(public))
    return {**doc, "kid": key_id(public), "alg": ALGORITHM, "use": "sig"}


def publish_jwks(jwks_file: Path, keys: list[Ed25519PublicKey]) -> None:
    """Write the JWKS (merging with the keys already there, so older deliveries still verify)."""
    known: dict[str, dict[str, Any]] = {}
    if jwks_file.exists():
        known = {k["kid"]: k for k in orjson.loads(jwks_file.read_bytes()).get("keys", [])}
    for key in keys:
        known[key_id(key)] = jwk(key)
    jwks_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = jwks_file.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"keys": list(known.values())}, option=orjson.OPT_INDENT_2))
    tmp.replace(jwks_file)


def sign_detached(payload: bytes, key: SigningKey) -> str:
    """A detached JWS over ``payload`` (``header..signature``)."""
    return jwt.api_jws.PyJWS().encode(
        payload, key.private, algorithm=ALGORITHM, headers={"kid": key.kid}, is_payload_detached=True
    )


def public_keys_from_jwks(doc: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """kid -> public key of every Ed25519 key in a JWKS document."""
    out: dict[str, Ed25519PublicKey] = {}
    for k in doc.get("keys", []):
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519":
            key = jwt.PyJWK(k).key
            if isinstance(key, Ed25519PublicKey):
                out[k.get("kid") or key_id(key)] = key
    return out


def verify_detached(token: str, payload: bytes, keys: dict[str, Ed25519PublicKey]) -> str:
    """Check a detached JWS over ``payload`` with the key its header names; return that kid.

    Raises:
        DeliveryError: if no key matches or the signature is not valid for these bytes.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise DeliveryError(f"the signature file is not a JWS: {exc}") from exc
    kid = header.get("kid")
    key = keys.get(kid) if kid else (next(iter(keys.values())) if len(keys) == 1 else None)
    if key is None:
        raise DeliveryError(f"no public key for kid {kid!r} (known: {', '.join(keys) or 'none'})")
    try:
        jwt.api_jws.PyJWS().decode_complete(token, key=key, algorithms=[ALGORITHM], detached_payload=payload)
    except jwt.InvalidSignatureError as exc:
        raise DeliveryError("the signature does not match the manifest's bytes (changed, or another key)") from exc
    except jwt.InvalidTokenError as exc:
        raise DeliveryError(f"the signature is not valid: {exc}") from exc
    return str(kid)
