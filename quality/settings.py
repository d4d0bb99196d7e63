"""Quality settings (env prefix ``MHHS_QUALITY_``): where the Data Docs go and the rules' parameters."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class QualitySettings(BaseSettings):
    """Frozen quality configuration; build once at the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="MHHS_QUALITY_", frozen=True, extra="ignore")

    docs_dir: Path = Field(default=Path("var/quality/data_docs"), description="the Data Docs site (static, offline)")
    history_days: int = Field(default=28, ge=1, description="rule 9: days of history a half hour is compared with")
    min_history: int = Field(default=5, ge=1, description="rule 9: values of history needed before judging")
    late_after_days: int = Field(default=5, ge=0, description="completeness: landed later than this is late")
    missing_listed: int = Field(default=10_000, ge=0, description="completeness: at most this many missing listed")
