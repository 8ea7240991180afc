"""Who may do what: the one table of operation → roles, for REST, the pages and the CLI.

A user's role (``users.role``: user, helpdesk, admin) and an API key's role (``api_keys.role``:
validate, metrics, helpdesk, admin) are the same stored words where they mean the same thing, so
one table serves both. The REST routes name their operation in their dependency
(``api/auth.allow``), the pages in :data:`PAGES` (read by ``web/common.admin``), and the CLI —
which runs with the key file, so as the server's operator — names it too (``cli/helpdesk.py``)
so that every operation is written down here once. ``tests/helpdesk/test_role_matrix.py``
walks every REST route and every admin page against this table.

The helpdesk (issue 13) may look users and tokens up, read the audit log, issue and revoke
temporary access passcodes, mark tokens lost and found, unlock, resync, view and reset drift,
and assign or unassign stock tokens. It may not import or export seeds, see a secret, manage
users, API keys, directories or RADIUS clients, retire a token, or rotate keys.
"""

from __future__ import annotations

from enum import StrEnum

from keyfob.server.errors import Forbidden


class Op(StrEnum):
    """One operation someone may be allowed to do."""

    VALIDATE = "validate"
    METRICS = "metrics"
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"
    METHODS_READ = "methods.read"  # a user's sign-in methods (the user may, for their own)
    METHODS_MANAGE = "methods.manage"  # enrol, verify, claim, remove (the user, for their own)
    TOKENS_READ = "tokens.read"  # the inventory, a token's drift and history; never a secret
    TOKENS_IMPORT = "tokens.import"
    TOKENS_EXPORT = "tokens.export"  # seeds leave the server
    TOKENS_ASSIGN = "tokens.assign"  # assign, unassign
    TOKENS_REPAIR = "tokens.repair"  # unlock, resync, drift reset
    TOKENS_LOST = "tokens.lost"  # lost, found
    TOKENS_RETIRE = "tokens.retire"  # the secret destroyed for good
    TAP_READ = "tap.read"
    TAP_ISSUE = "tap.issue"  # issue, revoke
    AUDIT_READ = "audit.read"
    APIKEYS = "apikeys"
    DIRECTORIES = "directories"
    RADIUS_CLIENTS = "radius.clients"
    KEYS = "keys"  # rotate, backup, restore
    ADMIN = "admin"  # anything not named otherwise: admins only


ADMIN = "admin"
HELPDESK = "helpdesk"
_STAFF = frozenset({HELPDESK, ADMIN})
_ADMIN = frozenset({ADMIN})

# The table. Role words: user, helpdesk, admin (users); validate, metrics, helpdesk, admin (keys).
PERMISSIONS: dict[Op, frozenset[str]] = {
    Op.VALIDATE: frozenset({"validate", ADMIN}),
    Op.METRICS: frozenset({"metrics", ADMIN}),
    Op.USERS_READ: _STAFF,
    Op.USERS_MANAGE: _ADMIN,
    Op.METHODS_READ: _STAFF,
    Op.METHODS_MANAGE: _ADMIN,
    Op.TOKENS_READ: _STAFF,
    Op.TOKENS_IMPORT: _ADMIN,
    Op.TOKENS_EXPORT: _ADMIN,
    Op.TOKENS_ASSIGN: _STAFF,
    Op.TOKENS_REPAIR: _STAFF,
    Op.TOKENS_LOST: _STAFF,
    Op.TOKENS_RETIRE: _ADMIN,
    Op.TAP_READ: _STAFF,
    Op.TAP_ISSUE: _STAFF,
    Op.AUDIT_READ: _STAFF,
    Op.APIKEYS: _ADMIN,
    Op.DIRECTORIES: _ADMIN,
    Op.RADIUS_CLIENTS: _ADMIN,
    Op.KEYS: _ADMIN,
    Op.ADMIN: _ADMIN,
}

SELF_OPS = frozenset({Op.METHODS_READ, Op.METHODS_MANAGE})
"""Operations a user may do on their own account whatever their role."""


def allowed(role: str, op: Op) -> bool:
    return role in PERMISSIONS[op]


def require(role: str, op: Op) -> None:
    """Refuse (403) a caller whose role the table does not list for ``op``."""
    if not allowed(role, op):
        roles = " or ".join(sorted(PERMISSIONS[op]))
        raise Forbidden(
            f"this needs role {roles}",
            hint=f"ask an admin: '{op}' is for {roles} (keyfob.server.permissions)",
        )


# The admin pages: "METHOD path" (the route's template) → the operation, or for the pages
# whose last segment is an {action}, the operation of each action. A page under /admin that is
# not listed is for admins only (Op.ADMIN), so a new page is never opened by mistake.
PAGES: dict[str, Op | dict[str, Op]] = {
    "GET /admin": Op.TOKENS_READ,
    "GET /admin/users": Op.USERS_READ,
    "POST /admin/users": Op.USERS_MANAGE,
    "GET /admin/users/{username}": Op.USERS_READ,
    "POST /admin/users/{username}/{action}": {
        "disable": Op.USERS_MANAGE,
        "enable": Op.USERS_MANAGE,
        "password": Op.USERS_MANAGE,
    },
    "GET /admin/tokens": Op.TOKENS_READ,
    "POST /admin/tokens/{ref}/{action}": {
        "assign": Op.TOKENS_ASSIGN,
        "unassign": Op.TOKENS_ASSIGN,
        "unlock": Op.TOKENS_REPAIR,
        "resync": Op.TOKENS_REPAIR,
        "drift-reset": Op.TOKENS_REPAIR,
        "lost": Op.TOKENS_LOST,
        "found": Op.TOKENS_LOST,
        "retire": Op.TOKENS_RETIRE,
    },
    "GET /admin/tokens/{ref}/retire": Op.TOKENS_RETIRE,  # the question before it
    "GET /admin/import": Op.TOKENS_IMPORT,
    "POST /admin/import": Op.TOKENS_IMPORT,
    "GET /admin/audit": Op.AUDIT_READ,
    "GET /admin/apikeys": Op.APIKEYS,
    "POST /admin/apikeys": Op.APIKEYS,
    "POST /admin/apikeys/{key_id}/revoke": Op.APIKEYS,
    "GET /admin/tap/{username}": Op.TAP_READ,
    "POST /admin/tap/{username}/issue": Op.TAP_ISSUE,
    "POST /admin/tap/{username}/revoke": Op.TAP_ISSUE,
}


def page_op(method: str, template: str, action: str | None = None) -> Op:
    """The operation of an admin page (by its route template and, where it has one, the
    ``{action}`` asked for); Op.ADMIN for any page or action not in :data:`PAGES`."""
    entry = PAGES.get(f"{method.upper()} {template}", Op.ADMIN)
    if isinstance(entry, dict):
        return entry.get(action or "", Op.ADMIN)
    return entry


def is_staff(role: str) -> bool:
    """May open the admin pages at all (the menu shows them)."""
    return role in _STAFF
