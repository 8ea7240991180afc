"""``keyfob admin rotate-key``: re-encrypt every stored secret under a new master key — token
secrets and RADIUS clients' shared secrets alike (``keystate.sealed_rows`` lists both).

The one rule: no key that sealed anything ever leaves the ring. The steps, each safe to be
killed (``kill -9``) and simply run again:

1. **add** a new key to the key file (old keys stay; see :mod:`keyfob.server.store.keys`), or,
   with ``KEYFOB_MASTER_KEY``, take it from ``KEYFOB_NEW_MASTER_KEY``. Killed here: an unused
   key sits in the file; the next rotation drops it.
2. **wait** until every live server (``server_nodes``) reports holding the new key — servers
   on the same key file re-read it by themselves; a server that cannot learn it (its own copy
   of the file, or keys from the environment) makes the command refuse, naming the server.
3. **switch** in ONE transaction: lock the sealing key id exclusively, make the new key the
   sealing key, re-encrypt every row sealed with another key, audit. Killed before the commit:
   nothing changed. Servers that seal wait for this lock, then use the new key.
4. **prune**: under the key file's lock, drop the keys no row uses any more. Killed before:
   the old key just stays until the next rotation.

A server that meets a key id it does not hold re-reads its key file, so a running server goes
on validating and enrolling through a rotation without a restart.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.errors import ServiceError
from keyfob.server.store import keystate
from keyfob.server.store.keys import (
    add_key,
    blob_kid,
    file_lock,
    key_id,
    parse_key_text,
    prune,
)


@dataclass
class RotationReport:
    new_kid: str
    reencrypted: int
    dropped: list[str] = field(default_factory=list)  # key ids removed from the key file
    still_in_env: list[str] = field(default_factory=list)  # env keys no row needs any more

    def as_dict(self) -> dict[str, object]:
        return {
            "key_id": self.new_kid,
            "reencrypted": self.reencrypted,
            "dropped_keys": self.dropped,
            "unused_env_keys": self.still_in_env,
        }


def _crashpoint(step: str) -> None:
    """Failpoint for the crash tests: ``KEYFOB_CRASHPOINT=<step>`` kills this process with
    SIGKILL right there, exactly like a power cut (nothing is flushed, no handler runs)."""
    if os.environ.get("KEYFOB_CRASHPOINT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def rotate_key(
    ctx: ServerContext,
    *,
    new_env_key: str | None = None,
    actor: str = "cli",
    wait: float = 30.0,
) -> RotationReport:
    """Add a key, wait for the servers to hold it, re-encrypt everything, drop unused keys."""
    if ctx.settings.master_key is not None:
        return _rotate_env(ctx, new_env_key, actor, wait)
    path = ctx.settings.resolved_key_file()
    with file_lock(path, "rotate"):  # one rotation at a time on this key file
        kid = add_key(path)
        _crashpoint("key-added")
        ctx.ring.reload()
        _wait_for_servers(ctx, kid, wait)
        count = _switch(ctx, kid, actor)
        _crashpoint("switched")
        dropped = prune(path, lambda: _kids_in_use(ctx))
        _crashpoint("pruned")
    return RotationReport(kid, count, dropped)


def _rotate_env(
    ctx: ServerContext, new_env_key: str | None, actor: str, wait: float
) -> RotationReport:
    if not new_env_key:
        raise ServiceError(
            "the master key comes from KEYFOB_MASTER_KEY",
            hint="set KEYFOB_NEW_MASTER_KEY to the new key and run again",
        )
    key = parse_key_text(new_env_key, "KEYFOB_NEW_MASTER_KEY")
    kid = key_id(key)
    ctx.ring.add(key)
    _wait_for_servers(ctx, kid, wait)
    count = _switch(ctx, kid, actor)
    unused = sorted(set(ctx.ring.kids()) - _kids_in_use(ctx))
    return RotationReport(kid, count, still_in_env=unused)


def _wait_for_servers(ctx: ServerContext, kid: str, wait: float) -> None:
    """Until every live server holds ``kid``; refuse (changing nothing) after ``wait`` s."""
    stale_after = 3 * ctx.settings.node_heartbeat
    deadline = time.monotonic() + wait
    while True:
        with ctx.engine.connect() as conn:
            nodes = keystate.live_nodes(conn, datetime.now(UTC), stale_after)
        lacking = [name for name, kids in nodes if kid not in kids]
        if not lacking:
            return
        if time.monotonic() >= deadline:
            raise ServiceError(
                f"{len(lacking)} running server(s) do not hold the new master key {kid}: "
                f"{', '.join(lacking)}; nothing was re-encrypted",
                hint="give those servers the new key (the same key file, or "
                "KEYFOB_MASTER_KEY=<new>,<old>) and restart them, then run rotate-key again",
            )
        time.sleep(min(0.2, stale_after / 3))


def _switch(ctx: ServerContext, kid: str, actor: str) -> int:
    """Step 3: one transaction that makes ``kid`` the sealing key and re-encrypts the rest."""
    count = 0
    with ctx.begin() as conn:
        if keystate.lock_current_kid(conn, exclusive=True) is None:
            keystate.init_current_kid(conn, kid, ctx.now_dt())
        keystate.set_current_kid(conn, kid, ctx.now_dt())
        for table, row_id, blob in keystate.sealed_rows(conn):
            if blob_kid(blob) == kid:
                continue
            sealed = ctx.ring.seal(ctx.ring.open(blob, row_id), row_id, kid)
            keystate.reseal(conn, table, row_id, sealed)
            count += 1
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="key.rotate",
            outcome="success",
            details={"secrets": count, "key_id": kid},
        )
        _crashpoint("resealed")  # the transaction is open: a kill here rolls it back
    ctx.ring.preferred = kid
    return count


def _kids_in_use(ctx: ServerContext) -> set[str]:
    """Every key id some row is sealed with, plus the sealing one."""
    with ctx.engine.connect() as conn:
        used = {blob_kid(blob) for _, _, blob in keystate.sealed_rows(conn)}
        current = keystate.current_kid(conn)
    return used | ({current} if current else set())
