"""Users and TOTP tokens for the privacyIDEA side of the comparison (issue 16), in bulk.

Run by ``setup_privacyidea.py`` with the privacyIDEA virtualenv's Python (it imports
privacyIDEA, never keyfob): ``python privacyidea_enroll.py PI_CFG REALM RESOLVER PREFIX:COUNT…``.

Users go into the SQL resolver's table (``users_<RESOLVER>``, made by ``pi-manage config resolver
create_internal``) with one INSERT; each token is made through privacyIDEA's own
``init_token`` (its encryption of the seed, its token-owner and realm rows), with the seed
known to the bench: ``seed(name)`` below, the same function as in ``bench_compare.py``.
"""

from __future__ import annotations

import hashlib
import sys
import time


def seed(name: str) -> bytes:
    """The TOTP secret of bench user ``name`` (20 bytes): known to both sides, made up here."""
    return hashlib.sha1(b"keyfob-bench:" + name.encode()).digest()


def main() -> None:
    config, realm, resolver, *pools = sys.argv[1:]
    import sqlalchemy as sa
    from privacyidea.app import create_app
    from privacyidea.lib.token import init_token
    from privacyidea.lib.user import User
    from privacyidea.models import db

    app = create_app(config_name="production", config_file=config, silent=True)
    with app.app_context():
        # Setup only: every init_token commits, and an fsync per token would make this take
        # minutes. The server later runs on privacyIDEA's own settings (this engine is gone).
        sa.event.listen(
            db.engine, "connect", lambda conn, _rec: conn.execute("PRAGMA synchronous=OFF")
        )
        db.engine.dispose()
        names = [
            f"{prefix}{i}"
            for prefix, count in (p.split(":") for p in pools)
            for i in range(int(count))
        ]
        table = sa.table(f"users_{resolver}", sa.column("username"))
        db.session.execute(sa.insert(table), [{"username": n} for n in names])
        db.session.commit()
        started = time.time()
        for k, name in enumerate(names):
            init_token(
                {
                    "type": "totp",
                    "otpkey": seed(name).hex(),
                    "genkey": 0,
                    "serial": f"BENCH-{name}",
                    "description": "keyfob bench",
                },
                user=User(name, realm=realm),
            )
            if (k + 1) % 1000 == 0:
                rate = (k + 1) / (time.time() - started)
                print(f"  {k + 1}/{len(names)} tokens ({rate:.0f}/s)", flush=True)


if __name__ == "__main__":
    main()
