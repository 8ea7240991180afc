"""Service errors, each with the HTTP status (and headers) that the API and the pages answer.

Both front ends map an error through :func:`http_status` and :func:`http_headers`, so the same
refusal is the same status whether it came from a REST route or a form.
"""

from __future__ import annotations

from typing import Any, ClassVar

from keyfob.errors import KeyfobError


class ServiceError(KeyfobError):
    """A service refuses its input. A subclass names its status and code in its class line:
    ``class NotFound(ServiceError, status=404, code="not_found")``."""

    status: ClassVar[int] = 400
    code = "bad_request"

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def headers(self) -> dict[str, str]:
        """Headers the answer must carry besides the body."""
        return {}


class NotFound(ServiceError, status=404, code="not_found"):
    """No such user, method, token or API key."""


class Conflict(ServiceError, status=409, code="conflict"):
    """The request does not fit the current state (exists already, assigned elsewhere…)."""


class Forbidden(ServiceError, status=403, code="forbidden"):
    """The caller is known but may not do this."""


class Unauthorized(ServiceError, status=401, code="unauthorized"):
    """No credential, or one that is not valid."""

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer, Basic realm="keyfob"'}


class CodeRejected(ServiceError, status=422, code="code_rejected"):
    """A verification code was not accepted (enrolment, assignment, resync)."""


class Gone(ServiceError, status=410, code="expired"):
    """Something that existed has expired (an enrolment left unverified too long)."""


class TooManyAttempts(ServiceError, status=429, code="rate_limited"):
    """Too many failed password attempts from one address (or for one user from it): the
    answer carries ``Retry-After`` and no word on whether this attempt's password was right."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many attempts",
            hint=f"wait {retry_after} seconds and try again",
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def http_status(exc: KeyfobError) -> int:
    """A service error's own status; any other bad input (a bad file, a bad parameter) is 400."""
    return exc.status if isinstance(exc, ServiceError) else 400


def http_headers(exc: KeyfobError) -> dict[str, str]:
    return exc.headers() if isinstance(exc, ServiceError) else {}
