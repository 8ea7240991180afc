"""The words the server stores and answers with, each list once.

Every value is the very string the columns have always held (``StrEnum``: a member *is* its
string), so no migration goes with them, a row written before reads back as a member, and JSON,
templates and f-strings show the plain word. Members are listed in the order the pages offer
them. The class docstrings are what the OpenAPI description shows API clients; notes for
developers are comments.
"""

from __future__ import annotations

from enum import StrEnum


# tokens.kind (docs/design.md §5)
class TokenKind(StrEnum):
    """How a token's secret came to be: classic (factory-seeded, from the vendor's seed file),
    programmable (a token burned with a secret the server made) or app (an authenticator
    app)."""

    CLASSIC = "classic"
    PROGRAMMABLE = "programmable"
    APP = "app"


ENROLLABLE = (TokenKind.APP, TokenKind.PROGRAMMABLE)
"""The kinds a user can enrol; classic tokens are imported and then assigned or claimed."""


# tokens.state; not the verification counters, which are otp.verify.TokenState
class TokenStatus(StrEnum):
    """Where a token is in its life: active, pending (set up, waiting for its first code),
    disabled, lost (every code refused until it is found) or retired (its secret destroyed,
    for good)."""

    ACTIVE = "active"
    PENDING = "pending"  # an enrolment waiting for its first code
    DISABLED = "disabled"
    LOST = "lost"  # tokens.lost_at; server/helpdesk.py
    RETIRED = "retired"  # tokens.retired_at; secret_enc overwritten


# users.role
class Role(StrEnum):
    """What a user may do: manage their own methods (user), answer helpdesk tickets (helpdesk:
    look users and tokens up, temporary passcodes, lost/found, unlock, resync, drift, assign —
    never a secret, a seed export, API keys, directories, RADIUS clients or keys), or everything
    (admin)."""

    USER = "user"
    HELPDESK = "helpdesk"
    ADMIN = "admin"


# api_keys.role
class ApiRole(StrEnum):
    """What an API key may do."""

    VALIDATE = "validate"  # check codes (an app server, a VPN, RADIUS)
    METRICS = "metrics"  # read /metrics, nothing else
    HELPDESK = "helpdesk"  # the helpdesk's operations (keyfob.server.permissions)
    ADMIN = "admin"  # everything


class ImportAction(StrEnum):
    """What an import did, or would do, with one row of a seed file."""

    CREATE = "create"
    UNCHANGED = "unchanged"
    ERROR = "error"
    WARNING = "warning"
