"""``keyfob admin rotate-key``: re-encrypt every stored secret under a new master key.

Order matters for crash safety: the new key is written to ``<key file>.new`` (fsynced) first,
then every row is re-encrypted in ONE transaction, then the new file replaces the old. A crash
before the commit leaves the old rows and the old key; after it, the server loads both keys
(the ``.new`` file is honoured on start) until the rename completes.
"""

from __future__ import annotations

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.errors import ServiceError
from keyfob.server.store import repo
from keyfob.server.store.keys import KeyRing, commit_new_key, parse_key_text, stage_new_key
from keyfob.server.store.schema import radius_clients


def rotate_key(ctx: ServerContext, *, new_env_key: str | None = None, actor: str = "cli") -> int:
    """Returns the number of secrets re-encrypted."""
    path = ctx.settings.resolved_key_file()
    if ctx.settings.master_key is not None:
        if not new_env_key:
            raise ServiceError(
                "the master key comes from KEYFOB_MASTER_KEY",
                hint="set KEYFOB_NEW_MASTER_KEY to the new key and run again",
            )
        new_key = parse_key_text(new_env_key, "KEYFOB_NEW_MASTER_KEY")
    else:
        new_key = stage_new_key(path)
    ring = KeyRing(new_key, ctx.ring.current)
    count = 0
    with ctx.begin() as conn:
        for token_id, blob in repo.all_sealed(conn):
            repo.reseal(conn, token_id, ring.seal(ctx.ring.open(blob, token_id), token_id))
            count += 1
        for row in conn.execute(radius_clients.select()):
            blob = ring.seal(ctx.ring.open(bytes(row.secret_enc), row.id), row.id)
            conn.execute(
                radius_clients.update().where(radius_clients.c.id == row.id).values(secret_enc=blob)
            )
            count += 1
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="key.rotate",
            outcome="success",
            details={"secrets": count},
        )
    if ctx.settings.master_key is None:
        commit_new_key(path)
    ctx.ring = KeyRing(new_key)
    return count
