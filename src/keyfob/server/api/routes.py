"""REST routes (docs/design.md §6.2). Each authorises, calls a service and shapes the records
it returns (keyfob.server.views); the pages call the same services.

What API clients read in the OpenAPI description is each route's ``summary`` and
``description``; notes for developers stay in comments (tests/server/test_openapi.py).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from keyfob.server import accounts, auditlog, enrolment, inventory
from keyfob.server.api.auth import Principal, allow, require_validate
from keyfob.server.api.blocking import run_db
from keyfob.server.api.helpdesk_routes import helpdesk_api
from keyfob.server.api.lean import LeanRoute
from keyfob.server.api.models import (
    AssignBody,
    BeginBody,
    ExportBody,
    ImportBody,
    ResyncBody,
    SelfAssignBody,
    UserBody,
    ValidateAnswer,
    ValidateBody,
    VerifyBody,
)
from keyfob.server.api.tap_routes import tap_api
from keyfob.server.api.token_actions import token_action
from keyfob.server.auditlog import Caller
from keyfob.server.context import ServerContext
from keyfob.server.errors import ServiceError
from keyfob.server.inputs import MAX_LIMIT, MAX_OFFSET
from keyfob.server.permissions import Op
from keyfob.server.store.records import AuditFilter, TokenFilter, TokenRecord, UserFilter
from keyfob.server.validation import validate
from keyfob.server.views import (
    api_key_view,
    audit_view,
    enrolment_view,
    page_view,
    token_view,
    tokens_view,
    user_view,
    users_view,
)

# One router per part of the API: its tag (the section of /docs) is said once.
validation_api = APIRouter(prefix="/api/v1", tags=["validate"], route_class=LeanRoute)
users_api = APIRouter(prefix="/api/v1", tags=["users"])
methods_api = APIRouter(prefix="/api/v1", tags=["methods"])
inventory_api = APIRouter(prefix="/api/v1", tags=["inventory"])
audit_api = APIRouter(prefix="/api/v1", tags=["audit"])
apikeys_api = APIRouter(prefix="/api/v1", tags=["apikeys"])
# Each route's caller, allowed by the one permission table (keyfob.server.permissions).
UsersRead = Annotated[Principal, allow(Op.USERS_READ)]
UsersManage = Annotated[Principal, allow(Op.USERS_MANAGE)]
MethodsRead = Annotated[Principal, allow(Op.METHODS_READ)]
MethodsManage = Annotated[Principal, allow(Op.METHODS_MANAGE)]
TokensRead = Annotated[Principal, allow(Op.TOKENS_READ)]
TokensImport = Annotated[Principal, allow(Op.TOKENS_IMPORT)]
TokensExport = Annotated[Principal, allow(Op.TOKENS_EXPORT)]
TokensAssign = Annotated[Principal, allow(Op.TOKENS_ASSIGN)]
TokensRepair = Annotated[Principal, allow(Op.TOKENS_REPAIR)]
AuditRead = Annotated[Principal, allow(Op.AUDIT_READ)]
ApiKeys = Annotated[Principal, allow(Op.APIKEYS)]
# Bounded: an OFFSET past PostgreSQL's bigint is a database error, not an empty page.
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip (at most 10^9)")]
Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"rows in one page (1 to {MAX_LIMIT})")
]
# The sections of /docs, each with what every route in it needs.
TAGS = [
    {"name": "validate", "description": "Needs an API key with role validate or admin."},
    {
        "name": "users",
        "description": "Listing needs a helpdesk or admin API key; creating and deleting, an "
        "admin key.",
    },
    {
        "name": "methods",
        "description": "A user's sign-in methods. With an admin API key, or with the user's own "
        "password (HTTP Basic) while the user has no active method yet.",
    },
    {
        "name": "inventory",
        "description": "Every token, in stock or not. Listing, assigning, unlocking and "
        "resyncing need a helpdesk or admin API key; import and export, an admin key.",
    },
    {"name": "audit", "description": "Needs a helpdesk or admin API key."},
    {"name": "apikeys", "description": "Needs an admin API key."},
    {
        "name": "helpdesk",
        "description": "Temporary access passcodes. Needs a helpdesk or admin API key.",
    },
    {"name": "ops", "description": "For load balancers and Prometheus."},
]


def _ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def _shown(request: Request, token: TokenRecord) -> dict[str, Any]:
    return token_view(token, _ctx(request).now())


def _by(who: Principal, request: Request) -> Caller:
    return {"actor": who.actor, "client": request.client.host if request.client else None}


# ``async``, with the blocking part placed by run_db: on the event loop for SQLite (a thread hop
# costs about what the validation does), in a capped worker thread for PostgreSQL (where it
# mostly waits on round trips and the commit's flush). The answer is one of two fixed bodies.
@validation_api.post(
    "/validate",
    summary="Check a user's code",
    description="The answer is accept or reject and nothing more: an unknown or disabled user, "
    "a locked token and a wrong code are all a reject.",
    response_model=None,
    responses={200: {"model": ValidateAnswer, "description": "The answer"}},
)
async def post_validate(
    body: ValidateBody, request: Request, who: Annotated[Principal, Depends(require_validate)]
) -> Response:
    started = time.perf_counter()
    ctx = _ctx(request)
    result = await run_db(request, validate, ctx, body.username, body.code, **_by(who, request))
    metrics = request.app.state.metrics
    metrics.validations.labels("accept" if result.accepted else "reject").inc()
    metrics.validate_seconds.observe(time.perf_counter() - started)
    return Response(_ANSWERS[result.accepted], media_type="application/json")


_ANSWERS = {True: b'{"result":"accept"}', False: b'{"result":"reject"}'}


# --- users -------------------------------------------------------------------------------


@users_api.post(
    "/users",
    status_code=201,
    summary="Create a user",
    description="A password given here is one-time: the user sets their own at first sign-in.",
)
def post_user(body: UserBody, request: Request, who: UsersManage) -> dict[str, Any]:
    user = accounts.create_user(
        _ctx(request),
        body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        **_by(who, request),
    )
    return user_view(user)


@users_api.get(
    "/users",
    summary="List users",
    description="By username, a page at a time: total counts every user the filters match, "
    "and offset + limit is where the next page starts. prefix matches the start of the "
    "username in any case, with % and _ as plain characters; role keeps the users of one role.",
)
def get_users(
    request: Request,
    who: UsersRead,
    where: Annotated[UserFilter, Depends()],  # the admin page's search, as query parameters
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    page = accounts.list_users(_ctx(request), where, limit=limit, offset=offset)
    return users_view(page, limit=limit, offset=offset)


@users_api.delete(
    "/users/{username}",
    summary="Delete a user",
    description="Their app and programmable tokens are deleted, tokens from stock go back to "
    "stock and their sessions end. The answer says what was done. The only enabled admin "
    "cannot be deleted (409).",
)
def delete_user(username: str, request: Request, who: UsersManage) -> dict[str, Any]:
    return accounts.delete_user(_ctx(request), username, **_by(who, request))


@methods_api.get(
    "/users/{username}/tokens",
    summary="List a user's sign-in methods",
)
def get_methods(username: str, request: Request, who: MethodsRead) -> dict[str, Any]:
    ctx = _ctx(request)
    return {"items": [token_view(t, ctx.now()) for t in enrolment.list_methods(ctx, username)]}


@methods_api.post(
    "/users/{username}/tokens",
    status_code=201,
    summary="Begin adding an app or a programmable token",
    description="Makes a new TOTP secret and answers it once, as an otpauth URI, a base32 key "
    "and a QR code. The method becomes active after one correct code (verify) and expires "
    "unverified after KEYFOB_ENROL_TTL seconds.",
)
def post_begin(
    username: str, body: BeginBody, request: Request, who: MethodsManage
) -> dict[str, Any]:
    options = body.model_dump(include={"label", "algorithm", "digits", "period"})
    begun = enrolment.begin(_ctx(request), username, body.kind, **options, **_by(who, request))
    return enrolment_view(begun)


@methods_api.post(
    "/users/{username}/tokens/assign",
    summary="Claim a token from stock",
    description="With the serial on the token and a code it shows now; a token whose clock is "
    "off needs its next code too. Every refusal is the same 422; failed claims are limited per "
    "user and per address (429 with Retry-After).",
)
def post_self_assign(
    username: str, body: SelfAssignBody, request: Request, who: MethodsManage
) -> dict[str, Any]:
    token = enrolment.self_assign(
        _ctx(request), username, body.serial, body.code, label=body.label, **_by(who, request)
    )
    return {"id": token.id, "serial": token.serial, "state": token.state}


@methods_api.post(
    "/users/{username}/tokens/{token_id}/verify",
    summary="Activate a method with its first code",
    description="One correct code activates the method and records how far its clock is off. "
    "A programmable token's printed serial may be given, as a label.",
)
def post_verify(
    username: str, token_id: str, body: VerifyBody, request: Request, who: MethodsManage
) -> dict[str, Any]:
    token = enrolment.verify_enrolment(
        _ctx(request), username, token_id, body.code, serial=body.serial, **_by(who, request)
    )
    view = token_view(token, _ctx(request).now())
    return {k: view[k] for k in ("id", "state", "serial", "reported_serial", "drift_steps")}


@methods_api.delete(
    "/users/{username}/tokens/{token_id}",
    status_code=204,
    summary="Remove a sign-in method",
    description="An app or programmable token is deleted; a token from stock goes back to stock.",
)
def delete_method(username: str, token_id: str, request: Request, who: MethodsManage) -> Response:
    enrolment.remove(_ctx(request), username, token_id, **_by(who, request))
    return Response(status_code=204)


# --- inventory ---------------------------------------------------------------------------


@inventory_api.post(
    "/tokens/import",
    summary="Import a seed file",
    description="PSKC, Entra/Azure CSV, OATH CSV or a list of otpauth URIs. All or nothing: a "
    "file with a bad row imports nothing (422, with every row's result). Importing again is "
    "harmless: known serials stay unchanged. With dry_run, every row is checked and nothing "
    "is imported.",
)
def post_import(body: ImportBody, request: Request, who: TokensImport) -> dict[str, Any]:
    options = body.model_dump(include={"password", "key", "mac_check", "dry_run", "allow_retired"})
    data, source = _file_bytes(body), body.filename
    report = inventory.import_seeds(
        _ctx(request), data, fmt=body.format, source=source, **options, **_by(who, request)
    )
    result = report.as_dict()
    if not report.ok and not body.dry_run:
        raise _ImportFailed(result)
    return result


def _file_bytes(body: ImportBody) -> bytes:
    if (body.content is None) == (body.content_base64 is None):
        raise ServiceError(
            "give the file as exactly one of content or content_base64",
            hint="send text files (CSV, URIs, PSKC XML) as content, anything else as "
            "content_base64",
        )
    if body.content is not None:
        try:
            return body.content.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate (\udXXX) survives JSON decoding
            raise ServiceError(
                f"content is not text: position {exc.start} holds an unpaired surrogate",
                hint="send the file as UTF-8 text in content, or as content_base64",
            ) from None
    try:
        return base64.b64decode(body.content_base64 or "", validate=True)
    except (binascii.Error, ValueError):  # ValueError: a character outside ASCII
        raise ServiceError(
            "content_base64 is not valid base64",
            hint="encode the file with standard base64 on one line (base64 -w0 FILE)",
        ) from None


class _ImportFailed(ServiceError, status=422, code="import_rejected"):
    def __init__(self, report: dict[str, Any]) -> None:
        first = next(r for r in report["rows"] if r["action"] == "error")
        super().__init__(
            f"{report['errors']} row(s) have errors; nothing was imported "
            f"(first: {first['where']}: {first['message']})",
            hint=first.get("hint") or "fix the file, or run with dry_run to see every row",
        )
        self.report = report


@inventory_api.get(
    "/tokens",
    summary="List tokens",
    description="The stock and every user's methods, filtered and a page at a time. serial "
    "matches the start of the serial, or of the serial a user reported, in any case, with % and "
    "_ as plain characters.",
)
def get_tokens(
    request: Request,
    who: TokensRead,
    where: Annotated[TokenFilter, Depends()],  # the admin page's filter, as query parameters
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    ctx = _ctx(request)
    return tokens_view(inventory.list_inventory(ctx, where, limit=limit, offset=offset), ctx.now())


@inventory_api.post(
    "/tokens/export",
    summary="Export tokens",
    description="The factory-seeded tokens (assigned or not), as an Entra/Azure CSV of the TOTP "
    "ones or as a password-encrypted PSKC file.",
)
def post_export(body: ExportBody, request: Request, who: TokensExport) -> Response:
    data = inventory.export(
        _ctx(request),
        body.format,
        password=body.password,
        assigned_only=body.assigned_only,
        **_by(who, request),
    )
    media = "text/csv" if body.format == "azure-csv" else "application/pskc+xml"
    name = "keyfob-tokens.csv" if body.format == "azure-csv" else "keyfob-tokens.pskcxml"
    return Response(
        data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@inventory_api.post("/tokens/{serial}/assign", summary="Assign a token to a user")
def post_assign(
    serial: str, body: AssignBody, request: Request, who: TokensAssign
) -> dict[str, Any]:
    caller = _by(who, request)
    token = inventory.assign(_ctx(request), serial, body.username, label=body.label, **caller)
    return _shown(request, token)


token_action(
    inventory_api,
    "unassign",
    inventory.unassign,
    Op.TOKENS_ASSIGN,
    name="post_unassign",
    summary="Return a token to stock",
)
token_action(
    inventory_api,
    "unlock",
    inventory.unlock_token,
    Op.TOKENS_REPAIR,
    name="post_unlock",
    summary="Unlock a token",
    description="Clears the wrong-code count and the lock; the learned clock drift stays.",
)
token_action(
    inventory_api,
    "disable",
    inventory.set_token_disabled,
    Op.ADMIN,
    True,
    name="post_disable",
    summary="Disable a token",
    description="Every code of the token (or app method, by its id) is refused until it is "
    "enabled again; its owner and clock drift stay.",
)
token_action(
    inventory_api,
    "enable",
    inventory.set_token_disabled,
    Op.ADMIN,
    False,
    name="post_enable",
    summary="Enable a disabled token",
    description="Its codes are accepted again.",
)


@inventory_api.post(
    "/tokens/{serial}/resync",
    summary="Resynchronise a token",
    description="With two codes the token shows one after the other; also clears a lock.",
)
def post_resync(
    serial: str, body: ResyncBody, request: Request, who: TokensRepair
) -> dict[str, Any]:
    caller = _by(who, request)
    token = inventory.resync_token(_ctx(request), serial, body.code1, body.code2, **caller)
    return _shown(request, token)


# --- audit -------------------------------------------------------------------------------


@audit_api.get(
    "/audit",
    summary="Read the audit log",
    description="Newest first. user matches the actor or the target user; action matches a "
    "prefix (token. is every token action) in any case, with % and _ as plain characters.",
)
def get_audit(
    request: Request,
    who: AuditRead,
    where: Annotated[AuditFilter, Depends()],  # the admin page's filter, as query parameters
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    page = auditlog.query(_ctx(request), where, limit=limit, offset=offset)
    return page_view(page, audit_view, limit=limit, offset=offset)


# --- API keys ----------------------------------------------------------------------------


@apikeys_api.get(
    "/apikeys",
    summary="List API keys",
    description="Every key with its role and dates, revoked ones included; never a key or its "
    "hash.",
)
def get_apikeys(request: Request, who: ApiKeys) -> dict[str, Any]:
    return {"items": [api_key_view(k) for k in accounts.list_api_keys(_ctx(request))]}


@apikeys_api.delete(
    "/apikeys/{key}",
    summary="Revoke an API key",
    description="By its id or its name. Every server refuses the key from its next request.",
)
def delete_apikey(key: str, request: Request, who: ApiKeys) -> dict[str, Any]:
    revoked = accounts.revoke_api_key(_ctx(request), key, **_by(who, request))
    return api_key_view(revoked)


router = APIRouter()  # all of them, for the app
for group in (validation_api, users_api, methods_api, inventory_api, audit_api, apikeys_api):
    router.include_router(group)
router.include_router(tap_api)  # api/tap_routes.py: the helpdesk's passcodes (issue 13)
router.include_router(helpdesk_api)  # api/helpdesk_routes.py: lost, found, retire, drift
