"""Service errors, each with the HTTP status the API answers with."""

from __future__ import annotations

from keyfob.errors import KeyfobError


class ServiceError(KeyfobError):
    status = 400
    code = "bad_request"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class CodeRejected(ServiceError):
    """A verification code was not accepted (enrolment, assignment, resync)."""

    status = 422
    code = "code_rejected"


class Gone(ServiceError):
    """Something that existed has expired (an enrolment left unverified too long)."""

    status = 410
    code = "expired"


class TooManyAttempts(ServiceError):
    """Too many failed password attempts from one address (or for one user from it): the
    answer carries ``Retry-After`` and no word on whether this attempt's password was right."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many attempts",
            hint=f"wait {retry_after} seconds and try again",
        )
        self.retry_after = retry_after
