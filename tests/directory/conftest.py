"""Directory fixtures: real OpenLDAP servers (Debian slapd, started here on loopback ports with
a throwaway slapd.conf and a test CA: slapdkit.py), a keyfob context on the test's clock, and
a directory of that slapd added the way an administrator adds one.

slapd and ldapadd come through the ``require_tool`` rule: missing, the tests skip with the
reason, or fail under KEYFOB_STRICT=1. Every slapd is stopped by its own PID.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from slapdkit import SERVICE_DN, SERVICE_PW, Slapd, Tree, base_ldif, have_tools, make_tls

from keyfob.server.context import ServerContext, open_context
from keyfob.server.directory import admin
from keyfob.server.directory.config import DirectoryRecord, DirectorySpec, Kind
from keyfob.server.settings import Settings
from keyfob.server.store.schema import metadata
from testkit import Clock, backend_fixture, session_database

STRICT = os.environ.get("KEYFOB_STRICT") == "1"


def _need_slapd() -> None:
    missing = have_tools()
    if missing is None:
        return
    reason = f"{missing} (make test installs it when run as root)"
    if STRICT:
        pytest.fail(f"KEYFOB_STRICT=1: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_slapd()
    path = tmp_path_factory.mktemp("ldap-tls")
    make_tls(path)
    return path


def start_slapd(tls_dir: Path, work: Path) -> Slapd:
    work.mkdir(parents=True, exist_ok=True)
    server = Slapd(work, tls_dir)
    server.start()
    server.ldif(base_ldif())
    return server


@pytest.fixture(scope="session")
def slapd(tls_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One slapd for the suite; each test works in a subtree of its own (``tree``)."""
    server = start_slapd(tls_dir, tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


@pytest.fixture
def tree(slapd: Slapd) -> Tree:
    t = Tree([slapd])
    t.create()
    return t


@pytest.fixture(scope="session")
def directory_pg() -> Iterator[str]:
    """A database of the directory tests' own on the PostgreSQL server, dropped afterwards."""
    yield from session_database("keyfob_dir_test")


def reset_postgres(url: str) -> None:
    """Empty every table (directories included) before a test opens its context."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            tables = [t.name for t in metadata.sorted_tables if t.name in present]
            if tables:
                conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} CASCADE")
    finally:
        engine.dispose()


# Every directory test on both backends, as tests/server/conftest.py does it.
db_url = backend_fixture("directory_pg", reset_postgres)


@pytest.fixture
def ctx(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[ServerContext]:
    settings = Settings(db=db_url, key_file=tmp_path / "k.key")
    context = open_context(settings, clock=clock)
    yield context
    context.engine.dispose()


@dataclass
class Added:
    record: DirectoryRecord
    tree: Tree


AddDirectory = Callable[..., DirectoryRecord]


@pytest.fixture
def add_directory(ctx: ServerContext, tls_dir: Path) -> AddDirectory:
    """Add a directory over ldaps:// for ``tree`` (servers: its slapds, in order)."""

    def add(tree: Tree, *, urls: list[str] | None = None, **kw: object) -> DirectoryRecord:
        spec = DirectorySpec(
            name=kw.pop("name", f"ldap-{uuid.uuid4().hex[:6]}"),  # type: ignore[arg-type]
            urls=tuple(urls or [s.ldaps_url for s in tree.slapd]),
            base_dn=tree.base,
            bind_dn=SERVICE_DN,
            kind=Kind.OPENLDAP,
            ca_file=str(tls_dir / "ca.pem"),
            **kw,  # type: ignore[arg-type]
        )
        return admin.add_directory(ctx, spec, SERVICE_PW, actor="test")

    return add
