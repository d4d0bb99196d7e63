"""The access policy as data: what each role may see of each kind of column and payload field.

Loaded from ``access/policy.json`` (DOMAIN.md's matrix); nothing of it is written in code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import orjson

from access.errors import PolicyError

ACTIONS = frozenset({"keep", "token", "outward", "remove", "aggregate"})
NON_DOMESTIC = {"consumption": "consumption_non_domestic"}
"""Kinds whose rows of non-domestic premises have a kind of their own."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What each role may see of each kind of field.

    ``columns`` and ``payload`` map a table column / a personal payload path (dotted, lists
    transparent) to its kind; ``roles`` map each kind to an action per role. ``safe_paths`` are
    payload paths that are not personal, ``safe_subtrees`` whole subtrees that are not;
    ``payload_parents`` every proper prefix of a known path (walked into when masking).
    """

    roles: dict[str, dict[str, str]]
    columns: dict[str, str]
    payload: dict[str, str]
    safe_paths: frozenset[str] = frozenset()
    safe_subtrees: tuple[str, ...] = ()
    payload_parents: frozenset[str] = frozenset()
    version: str = ""
    aggregate_min_mpans: int = 5  # aggregates over fewer MPANs than this are left out

    def action(self, role: str, kind: str) -> str:
        """The action for ``role`` on fields of ``kind``; unknown roles and kinds are removed."""
        return self.roles.get(role, {}).get(kind, "remove")

    def is_raw(self, role: str) -> bool:
        """True when the role sees everything as published (payloads stay byte-identical)."""
        actions = self.roles.get(role)
        return bool(actions) and all(a == "keep" for a in actions.values())  # type: ignore[union-attr]

    def kind_for(self, kind: str, domestic: bool) -> str:
        """The kind a field of ``kind`` counts as on a row of (non-)domestic premises."""
        return NON_DOMESTIC.get(kind, kind) if not domestic else kind

    def splits_domestic(self, role: str) -> bool:
        """True when ``role`` sees the consumption of domestic and non-domestic premises differently."""
        return any(self.action(role, k) != self.action(role, nd) for k, nd in NON_DOMESTIC.items())

    def is_safe_path(self, path: str) -> bool:
        """True when a payload path is not personal (or leads to known fields): walk into it, keep its values."""
        if path in self.safe_paths or path in self.payload_parents:
            return True
        return any(path == s or path.startswith(s + ".") for s in self.safe_subtrees)

    def at_most(self, stricter: str, looser: str) -> bool:
        """True when role ``stricter`` sees nothing that role ``looser`` does not (per kind of field)."""
        order = {"keep": 3, "outward": 2, "token": 2, "aggregate": 1, "remove": 0}
        kinds = set(self.roles.get(looser, {})) | set(self.roles.get(stricter, {}))
        return all(order[self.action(stricter, k)] <= order[self.action(looser, k)] for k in kinds)


def load_policy(path: Path | None = None) -> Policy:
    """The policy at ``path`` (default: the one shipped in ``access``).

    Raises:
        PolicyError: if the file is not a valid policy (unknown action, kind without roles, ...).
    """
    raw = path.read_bytes() if path else _shipped()
    try:
        doc = orjson.loads(raw)
        roles: dict[str, dict[str, str]] = doc["roles"]
        columns: dict[str, str] = doc["columns"]
        payload: dict[str, str] = doc["payload"]
        safe: list[str] = doc.get("safe_payload", [])
        min_mpans = int(doc.get("aggregate_min_mpans", 5))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise PolicyError(f"not an access policy: {exc}") from exc
    bad = sorted({a for actions in roles.values() for a in actions.values()} - ACTIONS)
    if bad:
        raise PolicyError(f"unknown actions in the policy: {', '.join(bad)}")
    subtrees = tuple(s.removesuffix(".*") for s in safe if s.endswith(".*"))
    paths = frozenset(s for s in safe if not s.endswith(".*"))
    known = [*payload, *paths]
    parents = frozenset(p[:i] for p in known for i, ch in enumerate(p) if ch == ".")
    version = hashlib.sha256(raw).hexdigest()[:12]
    return Policy(roles, columns, payload, paths, subtrees, parents, version, min_mpans)


@cache
def _shipped() -> bytes:
    return resources.files("access").joinpath("policy.json").read_bytes()
