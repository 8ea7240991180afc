"""Imports that must not hurt the server: validations keep answering while a large file goes
in, a 20 MB CSV does not take a gigabyte nor a PSKC file its whole tree, a killed import leaves
nothing behind, a racing writer makes the import fail whole, and hostile values are 4xx answers
naming their row."""

from __future__ import annotations

import base64
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from keyfob.otp import hotp
from keyfob.server import inventory
from keyfob.server.errors import Conflict
from keyfob.server.store.schema import tokens, users

from . import pskc_fixtures as fx

RFC_HEX = fx.RFC_SECRET.hex()
ENTRA_HEAD = "upn,serial number,secret key,time interval,manufacturer,model\n"


def _entra(rows: int, upn_every: int = 0) -> bytes:
    """A generated Entra CSV: distinct 160-bit secrets, a UPN on every ``upn_every``-th row."""
    lines = [ENTRA_HEAD]
    for i in range(rows):
        upn = f"user{i}@example.com" if upn_every and i % upn_every == 0 else ""
        secret = base64.b32encode(i.to_bytes(20, "big")).decode()
        lines.append(f"{upn},SN{i:010d},{secret},30,Token2,C202\n")
    return "".join(lines).encode()


def _counts(ctx) -> tuple[int, int]:
    with ctx.engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(tokens)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one(),
        )


# --- item 5: validations answer during an import (SQLite: one writer at a time) -----------


def test_validations_keep_answering_during_a_large_import(sqlite_api, clock) -> None:
    """50 000 rows held SQLite's write lock ~2.5 s in one transaction before (validations wait
    for it to write their audit row); now the transaction only copies prepared rows."""
    api = sqlite_api
    assert api.post("/api/v1/tokens/import", json={"content": f"V1,{RFC_HEX}\n"}).status_code == 200
    assert api.post("/api/v1/users", json={"username": "val@example.com"}).status_code == 201
    resp = api.post("/api/v1/tokens/V1/assign", json={"username": "val@example.com"})
    assert resp.status_code == 200, resp.text
    data = _entra(50_000)
    report: list[inventory.ImportReport] = []
    worker = threading.Thread(
        target=lambda: report.append(inventory.import_seeds(api.ctx, data, actor="test"))
    )
    waits: list[float] = []
    counter = 0
    # The server's process does not carry the test suite's heap: late in the suite, pytest's
    # millions of objects made one full garbage collection, which stops every thread, take
    # 1.75 s (CI). Freezing them leaves the collections the import's own objects cause.
    gc.freeze()
    try:
        worker.start()
        while worker.is_alive():
            code = hotp(fx.RFC_SECRET, counter, 6)
            counter += 1
            started = time.perf_counter()
            assert api.validate("val@example.com", code) == "accept"
            waits.append(time.perf_counter() - started)
        worker.join()
    finally:
        gc.unfreeze()
    assert max(waits) < 1.0, f"a validation waited {max(waits):.2f} s during the import"
    assert len(waits) >= 5, "the import finished before validations could overlap it"
    assert report and report[0].ok and report[0].count("create") == 50_000


# --- item 5: memory of a CLI import ----------------------------------------------------------


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child that Python starts with
# vfork inherits the parent's high-water mark (pytest's own RSS, 600 MB late in the suite);
# VmHWM belongs to the new process image alone.
_PEAK_REPORTING_CLI = (
    "import sys\n"
    "from keyfob.cli.main import run\n"
    "try:\n"
    "    run()\n"
    "finally:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    print('maxrss', hwm.split()[1], file=sys.stderr)\n"
)


def _cli_import_peak_mib(
    tmp_path: Path, path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``keyfob admin tokens import`` of ``path`` into a new SQLite store, in a process of its
    own: its output, and the peak resident memory of that process in MiB."""
    where = ["--db", f"sqlite:///{tmp_path / 'k.db'}", "--key-file", str(tmp_path / "k.key")]
    cli = [sys.executable, "-c", "from keyfob.cli.main import run; run()"]
    # A clean environment: nothing another test left in os.environ (config, HOME, KEYFOB_*)
    # reaches the measured process.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    subprocess.run([*cli, "admin", *where, "init"], check=True, capture_output=True, env=env)
    command = ["admin", *where, "tokens", "import", str(path), *options]
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_REPORTING_CLI, *command],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done, int(done.stderr.rsplit("maxrss", 1)[1].split()[0]) / 1024  # Linux: KiB


def test_cli_import_of_a_20_mb_csv_stays_small(tmp_path: Path) -> None:
    """1.19 GB before for 21.6 MB (bytes, text, dicts, records and rows all at once)."""
    path = tmp_path / "big.csv"
    path.write_bytes(_entra(300_000, upn_every=10))
    assert path.stat().st_size > 19_000_000
    done, peak_mb = _cli_import_peak_mib(tmp_path, path)
    assert "imported 300000 token(s)" in done.stdout
    # ~185 MiB measured (1 142 before streaming, 196 before the user.create audit rows were
    # written in chunks); 260 leaves room for the interpreter and its libraries to grow.
    assert peak_mb < 260, f"peak RSS {peak_mb:.0f} MiB"


def test_cli_import_of_a_pskc_file_reads_one_key_package_at_a_time(tmp_path: Path) -> None:
    """python-pskc's own reading holds the tree twice and every key: 200 MiB for these 20 000
    keys (8 MB), 690 MiB for 100 000. Read a package at a time, and the JSON report written a
    row at a time, the import stays near the interpreter's own 80 MiB."""
    path = tmp_path / "bulk.pskc"
    path.write_bytes(fx.plain_keys(20_000))
    done, peak_mb = _cli_import_peak_mib(tmp_path, path, "--json")
    report = json.loads(done.stdout)
    assert (report["ok"], report["created"], len(report["rows"])) == (True, 20_000, 20_000)
    # ~95 MiB measured; 150 is far below what any whole-file reading of the XML takes.
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MiB"


# --- all or nothing, however the import ends -------------------------------------------------

_KILLER = """
import os, signal, sys
from keyfob.server import inventory
from keyfob.server.context import open_context
from keyfob.server.settings import Settings
from keyfob.server.store import repo

where = sys.argv[3]
if where == "staging":  # after some rows are staged, before the last
    add, calls = repo.Staging.add, []
    def dying_add(self, conn, table, rows):
        calls.append(1)
        if len(calls) == 6:
            os.kill(os.getpid(), signal.SIGKILL)
        add(self, conn, table, rows)
    repo.Staging.add = dying_add
else:  # inside the write transaction, after the rows are copied, before the commit
    publish = repo.Staging.publish
    def dying_publish(self, conn):
        publish(self, conn)
        os.kill(os.getpid(), signal.SIGKILL)
    repo.Staging.publish = dying_publish
ctx = open_context(Settings(db=sys.argv[1], key_file=sys.argv[2]))
with open(sys.argv[4], "rb") as f:
    inventory.import_seeds(ctx, f, actor="test")
"""


@pytest.mark.parametrize("where", ["staging", "publishing"])
def test_a_killed_import_leaves_nothing_and_can_be_run_again(ctx, tmp_path, where) -> None:
    path = tmp_path / "seeds.csv"
    path.write_bytes(_entra(3_000, upn_every=7))
    key_file = ctx.settings.resolved_key_file()
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, ctx.settings.db, str(key_file), where, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert _counts(ctx) == (0, 0)
    with path.open("rb") as again:
        report = inventory.import_seeds(ctx, again, actor="test")
    assert report.ok and report.summary()["imported"] == 3_000
    assert _counts(ctx) == (3_000, len(range(0, 3_000, 7)))


def test_a_serial_taken_meanwhile_fails_the_whole_import(ctx, monkeypatch) -> None:
    """Rows are compared with the inventory before the write transaction; a serial another
    writer adds in between must fail the copy, and with it everything."""
    plan = inventory._plan

    def plan_then_race(*args, **kwargs):
        result = plan(*args, **kwargs)
        monkeypatch.setattr(inventory, "_plan", plan)  # the racing import plans normally
        inventory.import_seeds(ctx, f"SN0000000002,{RFC_HEX}\n".encode(), actor="rival")
        return result

    monkeypatch.setattr(inventory, "_plan", plan_then_race)
    with pytest.raises(Conflict, match="nothing was imported") as err:
        inventory.import_seeds(ctx, _entra(10, upn_every=3), actor="test")
    assert err.value.hint and "run the import again" in err.value.hint
    assert _counts(ctx) == (1, 0)  # only the rival's token; no user of the file
    report = inventory.import_seeds(ctx, _entra(10, upn_every=3), actor="test")
    errors = [r for r in report.rows if r.action == "error"]
    assert [r.where for r in errors] == ["line 4"]  # same serial, different seed: refused


def test_a_key_rotation_during_the_import_fails_it_whole(ctx, monkeypatch) -> None:
    """Secrets are sealed before the write transaction; if the sealing key id changed by then,
    nothing sealed with the old one may be stored (a rotation believes it re-encrypted all)."""
    monkeypatch.setattr(type(ctx), "sealing_kid", lambda self, conn: "0badc0de")
    with pytest.raises(Conflict, match="master key was rotated"):
        inventory.import_seeds(ctx, _entra(10, upn_every=3), actor="test")
    assert _counts(ctx) == (0, 0)


def test_upns_differing_only_in_case_make_one_user(ctx) -> None:
    rows = f"Alice@Example.com,S1,{'A' * 32},30,T,M\nalice@example.com,S2,{'B' * 32},30,T,M\n"
    report = inventory.import_seeds(ctx, (ENTRA_HEAD + rows).encode(), actor="test")
    assert report.ok and report.created_users == ["Alice@Example.com"]
    assert _counts(ctx) == (2, 1)


def _live_tables() -> int:
    gc.collect()
    return sum(isinstance(o, sa.Table) for o in gc.get_objects())


def test_repeated_imports_leave_nothing_behind_in_the_process(ctx) -> None:
    """Every import must run the same cached statements. The staging tables were once made
    anew for each import, and SQLAlchemy keys its compiled-statement cache on the Table
    object: each import left its tables and statements in the engine's cache (~200 KB an
    import, up to 50 MB before the LRU pruned them), which the soak saw as a server growing
    ~5 MB a minute. Counted, not timed: the live Table objects and the cache's entries."""

    def import_some(n: int) -> None:
        rows = "".join(f"LEAK{n:03d}{i},{os.urandom(20).hex()}\n" for i in range(3))
        assert inventory.import_seeds(ctx, rows.encode(), actor="test").ok

    import_some(0)  # the first import compiles its statements
    tables, cached = _live_tables(), len(ctx.engine._compiled_cache)
    for n in range(1, 6):
        import_some(n)
    assert (_live_tables(), len(ctx.engine._compiled_cache)) == (tables, cached)
    assert _counts(ctx) == (18, 0)


# --- items 4, 7, 8, 12 through the API: 4xx answers naming the row, never a 500 -------------


def _import(api, content: str | bytes, **extra):
    text = content.decode() if isinstance(content, bytes) else content
    return api.post("/api/v1/tokens/import", json={"content": text} | extra)


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        (f"T1,{RFC_HEX},{2**64}\n", "line 1", "counter 18446744073709551616 is out of range"),
        (f"T1,{RFC_HEX},totp,6,{2**32}\n", "line 1", "time interval 4294967296 s"),
        (
            f"# big\notpauth://totp/x?secret={'A' * 32}&period={2**40}\n",
            "line 2",
            "time interval 1099511627776 s",
        ),
        (
            fx.feitian_style()
            .replace(
                b"TimeDrift><pskc:PlainValue>1<", f"TimeDrift><pskc:PlainValue>{2**33}<".encode()
            )
            .decode(),
            "key 1 (serial 2600215704919)",
            "time drift 8589934592 steps is out of range",
        ),
        (
            fx.feitian_style()
            .replace(b"Counter><pskc:PlainValue>0<", f"Counter><pskc:PlainValue>{2**64}<".encode())
            .decode(),
            "key 2 (serial 1000117803294)",
            "counter 18446744073709551616",
        ),
        (
            f'{ENTRA_HEAD}ok@example.com,S1,{"A" * 32},30,T,M\n"a\tb@example.com",S2,{"B" * 32},30,T,M\n',
            "line 3",
            "upn contains a space or control character",
        ),
        (
            f"{ENTRA_HEAD}{'a' * 300}@example.com,S2,{'B' * 32},30,T,M\n",
            "line 2",
            "upn is longer than 255 characters",
        ),
    ],
    ids=[
        "csv counter past 64 bits",
        "csv interval past 32 bits",
        "uri period past 32 bits",
        "pskc drift past 32 bits",
        "pskc counter past 64 bits",
        "upn with a tab",
        "upn over 255 characters",
    ],
)
def test_out_of_range_values_and_bad_upns_are_row_errors(api, content, where, message) -> None:
    resp = _import(api, content)
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    rows = {r["where"]: r["message"] for r in err["report"]["rows"] if r["action"] == "error"}
    assert message in rows[where], rows
    assert _counts(api.ctx)[0] == 0


def test_hostile_pbkdf2_count_is_refused_at_once(api) -> None:
    data = fx.figure7().replace(
        b"<IterationCount>1000</IterationCount>", b"<IterationCount>2000000000</IterationCount>"
    )
    started = time.monotonic()
    resp = _import(api, data, password="qwerty")
    assert time.monotonic() - started < 5
    assert resp.status_code == 400
    assert "2000000000 PBKDF2 iterations" in resp.json()["error"]["message"]


def test_wrong_pskc_password_answer_says_wrong_password_with_its_hint(api) -> None:
    resp = _import(api, fx.figure7(), password="not-qwerty")
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert "wrong password or key, or a damaged file" in err["message"]
    assert "Invalid padding" not in err["message"]
    assert "--password" in err["hint"]


def test_formula_upn_is_exported_harmless_and_reimports_unchanged(api) -> None:
    upn = "=1+2@example.com"  # the API accepts it as a username: the export must not run it
    assert api.post("/api/v1/users", json={"username": upn}).status_code == 201
    secret = "A" * 32
    assert _import(api, f"{ENTRA_HEAD}{upn},-7,{secret},30,@Vendor,C1\n").status_code == 200
    exported = api.post("/api/v1/tokens/export", json={"format": "azure-csv"})
    assert exported.status_code == 200
    line = exported.text.splitlines()[1]
    assert line.startswith("'=1+2@example.com,'-7,") and ",'@Vendor," in line
    again = _import(api, exported.text)
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 1)
    item = api.get("/api/v1/tokens").json()["items"][0]
    assert (item["serial"], item["owner"], item["manufacturer"]) == ("-7", upn, "@Vendor")
