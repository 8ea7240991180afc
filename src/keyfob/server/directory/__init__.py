"""Directory users: LDAP and Active Directory as a user source beside keyfob's own users
(docs/design.md §7). The services call :func:`admit` before they act on a named user and
:func:`password_check` to check a password; ``admin`` holds add / list / test / remove."""

from keyfob.server.directory.errors import DirectoryUnavailable
from keyfob.server.directory.hub import (
    Admission,
    admit,
    is_directory_user,
    password_check,
    require,
)

__all__ = [
    "Admission",
    "DirectoryUnavailable",
    "admit",
    "is_directory_user",
    "password_check",
    "require",
]
