"""Directory-user benchmark (issue 12): validations per second for local users, cached
directory users and uncached ones (each validation a lookup on a real slapd), in process
through ``validation.validate`` on SQLite. The target: a cached directory user costs within
10 % of a local one (the cache hit is a dictionary look-up; no LDAP round trip).

slapd (Debian slapd) is started on loopback ports with a throwaway config, as the tests do
(tests/directory/slapdkit.py), and stopped by its PID. Results: bench/results/directory.md.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp

sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "directory"))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from slapdkit import SERVICE_DN, SERVICE_PW, Slapd, Tree, base_ldif, have_tools, make_tls

from keyfob.server import accounts, enrolment
from keyfob.server.context import ServerContext, open_context
from keyfob.server.directory import admin
from keyfob.server.directory.config import DirectorySpec, Kind
from keyfob.server.directory.hub import hub_of
from keyfob.server.settings import Settings
from keyfob.server.validation import validate
from testkit import Clock

USERS = 200
ROUNDS = 5
RESULTS = Path(__file__).parent / "results"


def enrol(ctx: ServerContext, clock: Clock, name: str) -> pyotp.TOTP:
    begun: Any = enrolment.begin(ctx, name, "app", actor="bench")
    app: pyotp.TOTP = pyotp.parse_uri(begun.otpauth_uri)
    enrolment.verify_enrolment(ctx, name, begun.id, app.at(clock.now), actor="bench")
    return app


def rate(ctx: ServerContext, clock: Clock, apps: dict[str, pyotp.TOTP], cold: bool) -> float:
    """Accepted validations per second: every user once per 30 s step, ROUNDS steps."""
    spent, count = 0.0, 0
    for _ in range(ROUNDS):
        clock.advance(30)
        if cold:
            hub_of(ctx).users.clear()
        codes = [(name, app.at(clock.now)) for name, app in apps.items()]
        started = time.perf_counter()
        for name, code in codes:
            assert validate(ctx, name, code).accepted, name
        spent += time.perf_counter() - started
        count += len(codes)
    return count / spent


def main() -> int:
    missing = have_tools()
    if missing:
        print(f"skipped: {missing}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_tls(work)
        slapd = Slapd(work / "slapd", work)
        slapd.work.mkdir()
        slapd.start()
        try:
            return run(work, slapd)
        finally:
            slapd.stop()


def run(work: Path, slapd: Slapd) -> int:
    slapd.ldif(base_ldif())
    tree = Tree([slapd])
    tree.create()
    tree.apply(
        "\n".join(
            f"dn: {tree.user_dn(f'd{i}')}\nobjectClass: inetOrgPerson\nuid: d{i}\ncn: d{i}\n"
            f"sn: d{i}\nuserPassword: pw-{i}-directory\n"
            for i in range(USERS)
        )
    )
    clock = Clock()
    ctx = open_context(
        Settings(db=f"sqlite:///{work / 'k.db'}", key_file=work / "k.key"), clock=clock
    )
    spec = DirectorySpec(
        name="bench", urls=(slapd.ldaps_url,), base_dn=tree.base, bind_dn=SERVICE_DN,
        kind=Kind.OPENLDAP, ca_file=str(work / "ca.pem"), cache_ttl=86400,
    )  # fmt: skip
    local, directory = {}, {}
    for i in range(USERS):
        accounts.create_user(ctx, f"l{i}@example.com")
        local[f"l{i}@example.com"] = enrol(ctx, clock, f"l{i}@example.com")
    rate(ctx, clock, local, cold=False)  # warm-up: pools, statement caches, the hub
    baseline = rate(ctx, clock, local, cold=False)
    admin.add_directory(ctx, spec, SERVICE_PW, actor="bench")
    for i in range(USERS):
        directory[f"d{i}"] = enrol(ctx, clock, f"d{i}")
    results = {
        "local users, no directory configured": baseline,
        "local users, a directory configured": rate(ctx, clock, local, cold=False),
        "directory users, cached": rate(ctx, clock, directory, cold=False),
        "directory users, uncached (a slapd lookup each)": rate(ctx, clock, directory, cold=True),
    }
    write(results)
    return 0


def write(results: dict[str, float]) -> None:
    base = results["local users, no directory configured"]
    lines = [
        "# Directory users: validations per second",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}; SQLite, in process "
        f"(`validation.validate`), {USERS} users of each kind, each validating its current code "
        f"once per step for {ROUNDS} steps; slapd 2.5 on loopback over ldaps:// "
        "(`bench/bench_directory.py`).",
        "",
        "| users | validations/s | vs local |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v:,.0f} | {v / base:.0%} |" for k, v in results.items()]
    lines += [
        "",
        "Target (issue 12): a cached directory user within 10 % of a local one.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "directory.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
