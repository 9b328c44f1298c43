"""Domain errors: what a use case refuses, in its own words. The HTTP edge (`fusion.declare`) maps
each kind to one status, so no flow decides an HTTP answer itself."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal with a machine-readable code and a message naming the problem."""

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field


class Invalid(DomainError):
    """Input that can never be accepted as it is (400)."""

    default_code = "validation_error"

    def __init__(self, field: str, problem: str, *, code: str | None = None):
        super().__init__(f"{field}: {problem}", code=code, field=field)


class NotFound(DomainError):
    """No such resource, or none the caller may see (404)."""

    default_code = "not_found"

    def __init__(self, what: str, ident: object):
        super().__init__(f"{what} {ident} not found")


class Conflict(DomainError):
    """The resource is in a state that does not allow this (409)."""

    default_code = "conflict"


class Refused(DomainError):
    """Well-formed input that a business rule refuses, e.g. a price that is not the catalog's (422)."""

    default_code = "unprocessable"


class Unauthenticated(DomainError):
    """The caller did not prove who it is (401)."""

    default_code = "unauthorized"


class Forbidden(DomainError):
    """The caller is known but lacks the right (403)."""

    default_code = "forbidden"


class ProviderRefused(DomainError):
    """An outside provider (Stripe, the carrier) answered but refused the request (502)."""

    default_code = "provider_refused"


class Unavailable(DomainError):
    """Something this depends on cannot be reached now; trying again after `retry_after` seconds may work (503)."""

    default_code = "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 1):
        super().__init__(message, code=code)
        self.retry_after = retry_after
