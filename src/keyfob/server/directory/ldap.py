"""One directory's LDAP connections (ldap3): failover across its servers, a small pool of bound
service connections, searches and password binds.

Why so: a dead domain controller must cost one connect timeout (3 s) once, not on every login
(multiOTP #66): a server that fails to connect is skipped for 30 s. A user lookup is one search
on a connection already bound as the service account (privacyIDEA #664: several binds a check).
A password is checked by binding as the user's DN on a fresh connection, never on a pooled one,
so a pooled connection never changes identity.

Filters are built only with :func:`escape` (RFC 4515): a ``*`` in a user name is a ``\\2a``, not
a wildcard. ``CONNECTION_FACTORY`` is looked up at each connect so that a test can count what
goes over the wire with a wrapper around the real ``ldap3.Connection``.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from keyfob.server.directory.config import DirectoryRecord
from keyfob.server.directory.errors import DirectoryRefused, DirectoryUnavailable

log = logging.getLogger("keyfob.directory")

CONNECT_TIMEOUT = 3.0
DEAD_FOR = 30.0
RECEIVE_TIMEOUT = 5
POOL_SIZE = 4
INVALID_CREDENTIALS = 49
NO_SUCH_OBJECT = 32

CONNECTION_FACTORY: Callable[..., ldap3.Connection] = ldap3.Connection


def escape(value: str) -> str:
    """RFC 4515 escaping of an assertion value: ``* ( ) \\ NUL`` (and non-ASCII) as ``\\XX``."""
    return str(escape_filter_chars(value))


@dataclass(frozen=True)
class Entry:
    dn: str
    raw: dict[str, list[bytes]]

    def text(self, attribute: str) -> str:
        values = self.raw.get(attribute) or []
        return values[0].decode("utf-8", "replace") if values else ""


def _server(url: str, record: DirectoryRecord) -> ldap3.Server:
    parts = urlsplit(url)
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=record.ca_file or None,
        version=ssl.PROTOCOL_TLS_CLIENT,
    )
    return ldap3.Server(
        parts.hostname or "",
        port=parts.port,
        use_ssl=parts.scheme == "ldaps",
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=CONNECT_TIMEOUT,
    )


class LdapClient:
    """The connections to one directory; shared by every thread of the process."""

    def __init__(
        self, record: DirectoryRecord, password: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.record = record
        self._password = password
        self._clock = clock
        self._servers = [_server(u, record) for u in record.urls]
        self._dead_until = [0.0] * len(self._servers)
        self._idle: list[ldap3.Connection] = []
        self._lock = threading.Lock()

    def _alive(self) -> list[int]:
        now = self._clock()
        with self._lock:
            return [i for i, until in enumerate(self._dead_until) if until <= now]

    def _mark_dead(self, index: int, exc: BaseException) -> None:
        with self._lock:
            self._dead_until[index] = self._clock() + DEAD_FOR
        log.warning(
            "directory %s: %s does not answer (%s); skipped for %.0f s",
            self.record.name,
            self.record.urls[index],
            type(exc).__name__,
            DEAD_FOR,
        )

    def connect(self, user: str, password: str) -> ldap3.Connection | None:
        """A connection bound as ``user`` on the first live server; None if the bind is
        refused (wrong password). No live server: :class:`DirectoryUnavailable`."""
        for index in self._alive():
            conn = CONNECTION_FACTORY(
                self._servers[index],
                user=user,
                password=password,
                auto_bind=ldap3.AUTO_BIND_NONE,
                receive_timeout=RECEIVE_TIMEOUT,
                raise_exceptions=False,
            )
            try:
                conn.open()
                if self.record.starttls and not conn.start_tls():
                    raise DirectoryRefused(
                        f"directory {self.record.name}: StartTLS refused",
                        hint="check the CA file, or use ldaps://",
                    )
                bound = conn.bind()
            except LDAPException as exc:
                _close(conn)
                self._mark_dead(index, exc)
                continue
            if bound:
                return conn
            _close(conn)
            return None
        raise DirectoryUnavailable([self.record.name])

    @contextmanager
    def _service(self) -> Iterator[ldap3.Connection]:
        """A pooled connection bound as the service account; a broken one is dropped."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self.connect(self.record.bind_dn, self._password)
            if conn is None:
                raise DirectoryRefused(
                    f"directory {self.record.name}: the service account's bind was refused",
                    hint="check --bind-dn and the bind password (keyfob admin directory test NAME)",
                )
        try:
            yield conn
        except LDAPException:
            _close(conn)
            raise
        with self._lock:
            keep = len(self._idle) < POOL_SIZE
            if keep:
                self._idle.append(conn)
        if not keep:
            _close(conn)

    def search(
        self,
        base: str,
        query: str,
        attributes: list[str],
        *,
        subtree: bool = True,
        size_limit: int = 2,
    ) -> list[Entry]:
        """Entries of one search (a user search stops at 2: two matches are ambiguous); a
        connection that broke is retried once, on the next live server."""
        scope = ldap3.SUBTREE if subtree else ldap3.BASE
        for attempt in range(2):
            try:
                with self._service() as conn:
                    conn.search(
                        base,
                        query,
                        scope,
                        attributes=attributes,
                        size_limit=size_limit,
                        time_limit=RECEIVE_TIMEOUT,
                    )
                    return self._entries(conn)
            except LDAPException as exc:
                if attempt:
                    raise DirectoryUnavailable([self.record.name]) from exc
                self._mark_broken(exc)
        raise AssertionError("unreachable")

    def _mark_broken(self, exc: LDAPException) -> None:
        """A pooled connection broke mid-operation: drop the pool, its server may be gone."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)
        log.warning("directory %s: connection lost (%s)", self.record.name, type(exc).__name__)

    def _entries(self, conn: ldap3.Connection) -> list[Entry]:
        code = int(conn.result.get("result", 0)) if conn.result else 0
        if code not in (0, 4, NO_SUCH_OBJECT):  # 4: size limit (two or more matches)
            raise DirectoryRefused(
                f"directory {self.record.name}: search refused ({conn.result.get('description')})",
                hint="check --base-dn and --filter with keyfob admin directory test",
            )
        response: list[dict[str, Any]] = conn.response or []
        return [
            Entry(r["dn"], dict(r.get("raw_attributes") or {}))
            for r in response
            if r.get("type") == "searchResEntry"
        ]

    def check_password(self, dn: str, password: str) -> bool:
        """Bind as ``dn``. An empty password is refused here: LDAP would take it for an
        unauthenticated bind and answer success (RFC 4513 §5.1.2)."""
        if not password or not dn:
            return False
        conn = self.connect(dn, password)
        if conn is None:
            return False
        _close(conn)
        return True

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)


def _close(conn: ldap3.Connection) -> None:
    with suppress(LDAPException, OSError):
        conn.unbind()
