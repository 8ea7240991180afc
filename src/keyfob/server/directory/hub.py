"""The directory side of every service that names a user: :func:`admit` before a validation,
an enrolment or an assignment, :func:`password_check` for a sign-in.

One :class:`DirectoryHub` per database engine (so per server process and context) holds the
directories (re-read every :data:`REFRESH` seconds, so a ``directory add`` from the CLI reaches
running servers), one :class:`LdapClient` each, and two bounded caches of admissions:

- ``users``: names found in a directory (admitted or refused), for the directory's
  ``cache_ttl``. A hit costs no SQL and no LDAP round trip. When every server is down, an
  expired entry still serves for up to :data:`STALE_LIMIT` seconds: a user who was known keeps
  signing in during an outage.
- ``others``: local users and names no directory knows, for :data:`NEGATIVE_TTL` seconds, in a
  cache of their own so that a flood of made-up names cannot evict the real users.

Without any directory, :func:`admit` costs one dictionary look-up.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from keyfob.server.context import ServerContext
from keyfob.server.directory import store, sync
from keyfob.server.directory.cache import Hit, TtlCache
from keyfob.server.directory.config import DirectoryRecord
from keyfob.server.directory.errors import DirectoryUnavailable
from keyfob.server.directory.ldap import LdapClient
from keyfob.server.directory.lookup import find_user
from keyfob.server.errors import NotFound
from keyfob.server.store import repo
from keyfob.server.store.records import UserRecord

REFRESH = 10.0
NEGATIVE_TTL = 60.0
STALE_LIMIT = 3600.0
USERS_CACHED = 10_000
OTHERS_CACHED = 2_000
UNKNOWN = "unknown_user"


@dataclass(frozen=True)
class Admission:
    """What the directories say of a name. ``refusal`` set: refuse like an unknown user (the
    audit reason, ``unknown_user`` or ``unknown_user:<why>``); None: go on as usual."""

    refusal: str | None = None
    user_id: str | None = None
    directory_id: str | None = None
    dn: str = ""

    @property
    def directory_user(self) -> bool:
        return self.directory_id is not None


PROCEED = Admission()


class DirectoryHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[DirectoryRecord] = []
        self._loaded = -REFRESH
        self._clients: dict[str, LdapClient] = {}
        self.users: TtlCache[Admission] = TtlCache(USERS_CACHED)
        self.others: TtlCache[Admission] = TtlCache(OTHERS_CACHED)

    def records(self, ctx: ServerContext) -> list[DirectoryRecord]:
        now = time.monotonic()
        if now - self._loaded >= REFRESH:
            with ctx.autocommit() as conn:
                records = store.all_directories(conn)
            with self._lock:
                if records != self._records:
                    self._reset_locked()
                self._records, self._loaded = records, now
        return self._records

    def record(self, ctx: ServerContext, directory_id: str) -> DirectoryRecord | None:
        return next((r for r in self.records(ctx) if r.id == directory_id), None)

    def client(self, ctx: ServerContext, record: DirectoryRecord) -> LdapClient:
        with self._lock:
            found = self._clients.get(record.id)
            if found is None or found.record != record:
                password = ctx.ring.open(record.secret_enc, record.id).decode()
                found = self._clients[record.id] = LdapClient(record, password)
            return found

    def reload(self) -> None:
        """Forget directories, connections and caches (after an add or a remove here)."""
        with self._lock:
            self._loaded = -REFRESH
            self._reset_locked()

    def _reset_locked(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self.users.clear()
        self.others.clear()

    def cached(self, key: str, now: float) -> Hit[Admission] | None:
        return self.users.get(key, now) or self.others.get(key, now)

    def remember(self, key: str, admission: Admission, now: float, ttl: float) -> None:
        cache = self.users if admission.directory_user else self.others
        cache.put(key, admission, now, ttl)


_HUBS: weakref.WeakKeyDictionary[Engine, DirectoryHub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def hub_of(ctx: ServerContext) -> DirectoryHub:
    with _HUBS_LOCK:
        hub = _HUBS.get(ctx.engine)
        if hub is None:
            hub = _HUBS[ctx.engine] = DirectoryHub()
        return hub


def admit(ctx: ServerContext, username: str) -> Admission:
    """Look ``username`` up in the directories, unless the cache knows it. Raises
    :class:`DirectoryUnavailable` when a directory that might hold it does not answer."""
    hub = hub_of(ctx)
    records = hub.records(ctx)
    key = repo.user_key(username)
    if not records or not key or len(key) > 255:
        return PROCEED
    now = ctx.now()
    hit = hub.cached(key, now)
    if hit is not None and hit.fresh:
        return hit.value
    try:
        admission, ttl = _look_up(ctx, hub, records, username.strip())
    except DirectoryUnavailable:
        if hit is not None and hit.value.directory_user and hit.age < STALE_LIMIT:
            return hit.value
        raise
    hub.remember(key, admission, now, ttl)
    return admission


def _look_up(
    ctx: ServerContext, hub: DirectoryHub, records: list[DirectoryRecord], username: str
) -> tuple[Admission, float]:
    """Local users first; then each directory in turn; a name held by a directory user's row
    that no directory knows now is set aside and refused."""
    with ctx.engine.connect() as conn:
        local = store.local_row(conn, username)
    if local is not None and local.directory_id is None:
        return PROCEED, NEGATIVE_TTL
    down: list[str] = []
    for record in records:
        try:
            found = find_user(hub.client(ctx, record), record, username)
        except DirectoryUnavailable:
            down.append(record.name)
            continue
        if found is None:
            continue
        user_id = sync.link(ctx, record, found)
        if user_id is None:
            return PROCEED, NEGATIVE_TTL
        refusal = f"{UNKNOWN}:{found.refusal}" if found.refusal else None
        return Admission(refusal, user_id, record.id, found.dn), float(record.cache_ttl)
    if down:
        raise DirectoryUnavailable(down)
    if local is None:
        return PROCEED, NEGATIVE_TTL
    with ctx.begin() as conn:
        sync.set_aside(ctx, conn, local)
    return Admission(UNKNOWN, local.user_id, local.directory_id), NEGATIVE_TTL


Eligible = Callable[[Connection, UserRecord], bool]


def password_check(
    ctx: ServerContext, username: str, password: str, eligible: Eligible | None = None
) -> tuple[bool, UserRecord | None]:
    """(handled, user). Not a directory user: (False, None), keyfob checks its own hash.
    Otherwise the directory decides, by a bind as the user's DN; nothing keeps the password."""
    admission = admit(ctx, username)
    if not admission.directory_user:
        return False, None
    if admission.refusal or admission.directory_id is None:
        return True, None
    with ctx.engine.connect() as conn:
        user = repo.get_user(conn, username)
        if user is None or user.id != admission.user_id or user.disabled:
            return True, None
        if eligible is not None and not eligible(conn, user):
            return True, None
    record = hub_of(ctx).record(ctx, admission.directory_id)
    if record is None or not hub_of(ctx).client(ctx, record).check_password(admission.dn, password):
        return True, None
    return True, user


def is_directory_user(ctx: ServerContext, username: str) -> bool:
    return admit(ctx, username).directory_user


def require(ctx: ServerContext, username: str) -> None:
    """Before an enrolment or an assignment names a user: a directory user gets their local
    row now; one the directory refuses gets the 404 of a name that is not there."""
    if admit(ctx, username).refusal is not None:
        raise NotFound(
            f"no user {username.strip()[:255]!r}",
            hint="check the user name (the UPN, e.g. alice@example.com) against the user list",
        )
