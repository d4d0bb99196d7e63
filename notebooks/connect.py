"""What the notebooks connect to, from the same ``MHHS_*`` settings as the ``mhhs`` command.

The store comes from ``LakehouseSettings``; the broker from ``MHHS_KAFKA_BOOTSTRAP`` (else the local
development broker, as ``mhhs broker status`` reports it); the API from ``MHHS_NOTEBOOK_API_URL``
with the bearer token in ``MHHS_NOTEBOOK_API_TOKEN`` (else a development token from
``mhhs token issue``, which needs ``MHHS_API_DEV_MODE=true`` or the API's secret).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.settings import IngestSettings


class NotebookSettings(BaseSettings):
    """Where the API is and how to call it (env prefix ``MHHS_NOTEBOOK_``)."""

    model_config = SettingsConfigDict(env_prefix="MHHS_NOTEBOOK_", frozen=True, extra="ignore")

    api_url: str = Field(default="http://127.0.0.1:8000", description="the API's base URL (`mhhs serve`)")
    api_token: SecretStr | None = Field(default=None, description="a bearer token; unset: a development token")


def _mhhs(*args: str) -> str:
    """Run an ``mhhs`` command of this environment; its stdout, or a RuntimeError saying what failed."""
    proc = subprocess.run([sys.executable, "-m", "mhhs", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mhhs {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def kafka_bootstrap() -> str:
    """The broker: ``MHHS_KAFKA_BOOTSTRAP``, else the running local broker (``make kafka-up``)."""
    return IngestSettings().kafka_bootstrap or _mhhs("broker", "status")


def api_token(subject: str, role: str, scopes: tuple[str, ...] = ("replay",)) -> str:
    """``MHHS_NOTEBOOK_API_TOKEN``, else a development token for ``subject`` in ``role``."""
    configured = NotebookSettings().api_token
    if configured is not None:
        return configured.get_secret_value()
    return _mhhs("token", "issue", "--subject", subject, "--role", role, *(a for s in scopes for a in ("--scope", s)))


@dataclass
class Replay:
    """A replay paged to its end: event and quarantined lines, the end lines, where to resume Kafka."""

    events: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    resume_offsets: dict[int, int] = field(default_factory=dict)


class ApiClient:
    """The replay API for a consumer recovering what it missed (``GET /v1/replays/{topic}``)."""

    def __init__(self, token: str, base_url: str | None = None, timeout_s: float = 120.0) -> None:
        self._http = httpx.Client(
            base_url=base_url or NotebookSettings().api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def pages(self, topic: str, from_offsets: dict[int, int], limit: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """Each page's lines, following ``next_cursor`` until the replay has caught up.

        Raises:
            httpx.HTTPStatusError: with the problem+json body when the API refuses.
            RuntimeError: when nothing answers at the API's URL.
        """
        params: dict[str, Any] = {"limit": limit}
        if from_offsets:
            params["from_offsets"] = ",".join(f"{p}:{o}" for p, o in sorted(from_offsets.items()))
        while True:
            try:
                with self._http.stream("GET", f"/v1/replays/{topic}", params=params) as resp:
                    if resp.status_code != 200:
                        resp.read()
                        raise httpx.HTTPStatusError(resp.text, request=resp.request, response=resp)
                    lines = [orjson.loads(line) for line in resp.iter_lines() if line]
            except httpx.TransportError as exc:
                raise RuntimeError(
                    f"the API at {self._http.base_url} does not answer ({exc}): start it with `mhhs serve`, "
                    "or set MHHS_NOTEBOOK_API_URL"
                ) from exc
            yield lines
            cursor = lines[-1].get("next_cursor") if lines else None
            if not cursor:
                return
            params = {"cursor": cursor}

    def replay(self, topic: str, from_offsets: dict[int, int], limit: int = 10_000) -> Replay:
        """The whole replay from ``from_offsets`` (partition -> next offset to read)."""
        out = Replay()
        for lines in self.pages(topic, from_offsets, limit):
            out.events += [d for d in lines if d["type"] == "event"]
            out.quarantined += [d for d in lines if d["type"] == "quarantined"]
            end = lines[-1]
            out.pages.append(end)
            out.resume_offsets = {int(p): int(n) for p, n in end["resume_offsets"].items()}
        return out

    def close(self) -> None:
        self._http.close()
