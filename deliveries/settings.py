"""Delivery settings (env prefix ``MHHS_DELIVERIES_``): the signing key, its public JWKS, the scheduler lease."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from access.tokens import DEV_MASK_SECRET


class DeliveriesSettings(BaseSettings):
    """Frozen delivery configuration; build once at the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="MHHS_DELIVERIES_", frozen=True, extra="ignore", populate_by_name=True)

    signing_key_file: Path = Field(
        default=Path("var/deliveries/signing-key.pem"), description="Ed25519 private key (PEM); made on first use"
    )
    jwks_file: Path = Field(
        default=Path("var/deliveries/jwks.json"), description="the public keys recipients verify with (JWKS)"
    )
    mask_secret: SecretStr = Field(
        default=SecretStr(DEV_MASK_SECRET),
        validation_alias=AliasChoices("MHHS_DELIVERIES_MASK_SECRET", "MHHS_API_MASK_SECRET"),
        description="HMAC key for MPAN tokens: the API's (MHHS_API_MASK_SECRET), so tokens join",
    )
    batch_rows: int = Field(default=50_000, ge=1, description="rows per batch read and written")
    file_rows: int = Field(default=2_000_000, ge=1, description="rows per delivered file at most")
    lease_seconds: float = Field(default=60.0, gt=1, description="how long a scheduler's lease lasts unrenewed")
