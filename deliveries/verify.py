"""What a recipient runs on a delivery: the signature, then every file's bytes, hash and row count.

Works on a local directory with nothing of the store: the manifest, its detached signature and
the public key (a PEM file, or a JWKS file or URL). Every problem found is reported, not just the first.
"""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deliveries.errors import DeliveryError, VerificationError
from deliveries.manifest import MANIFEST, SIGNATURE, Manifest, sha256_of
from deliveries.signing import key_id, public_keys_from_jwks, verify_detached


def load_public_keys(public_key: Path | None = None, jwks: str | None = None) -> dict[str, Ed25519PublicKey]:
    """kid -> key, from a PEM public key file or a JWKS (a path, file:// or https:// URL).

    Raises:
        DeliveryError: if neither is given or they hold no Ed25519 key.
    """
    if (public_key is None) == (jwks is None):
        raise DeliveryError("give exactly one of --public-key FILE and --jwks URL")
    if public_key is not None:
        try:
            key = serialization.load_pem_public_key(public_key.read_bytes())
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"cannot read a public key from {public_key}: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise DeliveryError(f"{public_key} is not an Ed25519 public key")
        return {key_id(key): key}
    assert jwks is not None
    try:
        if "://" in jwks:
            with urllib.request.urlopen(jwks, timeout=10) as resp:
                doc = orjson.loads(resp.read())
        else:
            doc = orjson.loads(Path(jwks).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DeliveryError(f"cannot read the JWKS at {jwks}: {exc}") from exc
    keys = public_keys_from_jwks(doc)
    if not keys:
        raise DeliveryError(f"the JWKS at {jwks} holds no Ed25519 key")
    return keys


def count_rows(data: bytes, fmt: str) -> int:
    """Rows in a delivered file: Parquet's metadata, lines of NDJSON, lines of CSV after its header."""
    if fmt == "parquet":
        return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    lines = data.count(b"\n")
    return lines if fmt == "ndjson" else max(0, lines - 1)


def verify_delivery(directory: Path, keys: dict[str, Ed25519PublicKey]) -> Manifest:
    """Check a delivery directory against its signed manifest.

    Raises:
        VerificationError: listing every problem (signature, missing, changed or unlisted files, counts).
    """
    manifest_path, signature_path = directory / MANIFEST, directory / SIGNATURE
    if not manifest_path.is_file():
        raise VerificationError([f"{manifest_path} is missing: the delivery is incomplete or not a delivery"])
    body = manifest_path.read_bytes()
    problems: list[str] = []
    if not signature_path.is_file():
        problems.append(f"{SIGNATURE} is missing: the manifest is not signed")
    else:
        try:
            verify_detached(signature_path.read_text().strip(), body, keys)
        except DeliveryError as exc:
            problems.append(f"signature: {exc}")
    try:
        manifest = Manifest.from_bytes(body)
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise VerificationError([*problems, f"the manifest is not readable: {exc}"]) from exc
    listed = {f.name for f in manifest.files}
    for entry in manifest.files:
        path = directory / entry.name
        if not path.is_file():
            problems.append(f"{entry.name}: missing")
            continue
        data = path.read_bytes()
        if len(data) != entry.bytes:
            problems.append(f"{entry.name}: {len(data)} bytes, the manifest says {entry.bytes}")
        if sha256_of(data) != entry.sha256:
            problems.append(f"{entry.name}: sha256 {sha256_of(data)[:16]}..., the manifest says {entry.sha256[:16]}...")
            continue
        try:
            rows = count_rows(data, manifest.format)
        except Exception as exc:  # a file that hashes right but does not parse: report, keep going
            problems.append(f"{entry.name}: not a readable {manifest.format} file ({exc})")
            continue
        if rows != entry.rows:
            problems.append(f"{entry.name}: {rows} rows, the manifest says {entry.rows}")
    extra = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name not in listed | {MANIFEST, SIGNATURE})
    problems += [f"{name}: not in the manifest" for name in extra]
    if problems:
        raise VerificationError(problems)
    return manifest
