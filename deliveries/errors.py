"""Errors of deliveries; each says what to do next."""

from __future__ import annotations


class DeliveryError(Exception):
    """A delivery could not be made or checked."""


class VerificationError(DeliveryError):
    """A delivery does not verify: its manifest, signature, files or counts are not what was signed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
