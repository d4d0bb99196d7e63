"""Domain errors of the API's services: each carries a stable ``code``; the HTTP layer picks the status.

The class says what kind of failure it is (the HTTP layer maps it to a status); ``code`` says
which, e.g. ``NotFoundError("no topic 'x'", "unknown_topic")``.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of every service error; ``code`` is stable, ``detail`` is for people."""

    default_code = "service_error"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code


class NotFoundError(ServiceError):
    """The thing asked for does not exist (or is not the caller's to know of)."""

    default_code = "not_found"


class InvalidRequestError(ServiceError):
    """The request cannot be answered as asked (bad combination of parameters, bad values)."""

    default_code = "invalid_request"


class ForbiddenError(ServiceError):
    """The caller is known but its role may not do this."""

    default_code = "forbidden_role"
