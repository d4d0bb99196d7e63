"""API settings: token verification, masking secret, limits (env prefix ``MHHS_API_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from access.tokens import DEV_MASK_SECRET, DEV_SECRET


class ApiSettings(BaseSettings):
    """Frozen API configuration; build once at the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="MHHS_API_", frozen=True, extra="ignore", populate_by_name=True)

    dev_mode: bool = Field(default=False, description="allow the built-in development secret")
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr = Field(default=SecretStr(DEV_SECRET), description="HS256 signing secret")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for RS256")
    jwt_jwks_url: str | None = Field(
        default=None, description="RS256: the identity provider's JWKS (https:// or file://); keys chosen by `kid`"
    )
    jwks_cache_seconds: int = Field(default=300, ge=0, description="how long fetched JWKS keys are trusted")
    jwt_audience: str = "mhhs-event-store"
    jwt_issuer: str = "mhhs-event-store"
    mask_secret: SecretStr = Field(default=SecretStr(DEV_MASK_SECRET), description="HMAC key for MPAN tokens")
    cursor_secret: SecretStr = Field(default=SecretStr(DEV_SECRET + "-cursor"), description="signs replay cursors")
    policy_file: Path | None = Field(default=None, description="masking policy (default: the shipped one)")
    max_page_size: int = Field(default=10_000, ge=1)
    batch_rows: int = Field(default=2_000, ge=1, description="rows per streamed Arrow batch")
    quality_docs_dir: Path = Field(
        default=Path("var/quality/data_docs"),
        validation_alias=AliasChoices("MHHS_QUALITY_DOCS_DIR", "MHHS_API_QUALITY_DOCS_DIR"),
        description="the Data Docs site `mhhs quality run` builds (MHHS_QUALITY_DOCS_DIR), served to auditors",
    )
    deliveries_jwks_file: Path = Field(
        default=Path("var/deliveries/jwks.json"),
        validation_alias=AliasChoices("MHHS_DELIVERIES_JWKS_FILE", "MHHS_API_DELIVERIES_JWKS_FILE"),
        description="the public keys deliveries are signed with (MHHS_DELIVERIES_JWKS_FILE)",
    )
    audit_journal_dir: Path | None = Field(
        default=Path("var/api/audit-journal"),
        description="local directory where each access is noted before it is served, until its access log row "
        "is committed (what a killed process left is committed at the next start-up); empty: no journal "
        "(an access of a process killed mid-stream is then not logged)",
    )
    aggregate_min_mpans: int = Field(
        default=5, ge=1, description="consumption aggregates over fewer MPANs than this are left out"
    )

    @field_validator("audit_journal_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ApiSettings:
        if not self.dev_mode:
            names = (("jwt_secret",) if self.jwt_algorithm == "HS256" else ()) + ("mask_secret", "cursor_secret")
            for name in names:
                if getattr(self, name).get_secret_value().startswith(DEV_SECRET):
                    raise ValueError(f"MHHS_API_{name.upper()} must be set (or MHHS_API_DEV_MODE=true)")
        if self.jwt_algorithm == "RS256" and (self.jwt_public_key_file is None) == (self.jwt_jwks_url is None):
            raise ValueError("RS256 needs exactly one of MHHS_API_JWT_PUBLIC_KEY_FILE and MHHS_API_JWT_JWKS_URL")
        return self
