"""The helpdesk tests use the server's fixtures (a context on SQLite and PostgreSQL, the API
client, the leak watch)."""

from server.conftest import (  # noqa: F401  (fixtures)
    Api,
    api,
    ctx,
    db_url,
    leak_watch,
    pg_database,
    sqlite_api,
    sqlite_ctx,
)
