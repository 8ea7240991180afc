"""The directory's own refusals, as service errors with their HTTP status."""

from __future__ import annotations

from keyfob.server.errors import ServiceError


class DirectoryUnavailable(ServiceError, status=503, code="directory_unavailable"):
    """No server of a directory answered, so keyfob cannot tell whether a user exists: never
    "wrong code" (that would lock the user out of nothing), but 503 over REST and no answer over
    RADIUS, so the client tries another server."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            f"directory unavailable: no server of {', '.join(names)} answers",
            hint="check the directory servers and the network; users looked up in the last "
            "minutes can still sign in with their codes",
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


class DirectoryRefused(ServiceError, status=502, code="directory_error"):
    """The directory answered, but not as configured (the service bind was refused, a filter
    is wrong): an administrator's problem, reported by ``directory test``."""
