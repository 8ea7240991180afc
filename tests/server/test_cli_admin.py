"""`keyfob admin …` and `keyfob serve` as an administrator uses them."""

from __future__ import annotations

import json

import httpx

from keyfob.cli.main import main
from testkit import apikey_create, http_enrol, serve


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_admin_commands(tmp_path, capsys, leak_watch) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    code, out, _ = run(capsys, "admin", "--db", db, "user", "add", "alice@example.com")
    assert code == 0 and "one-time password:" in out
    leak_watch.secrets.add(out.split("one-time password: ")[1].strip())
    code, out, _ = run(
        capsys,
        "admin",
        "--db",
        db,
        "apikey",
        "create",
        "--role",
        "validate",
        "--name",
        "vpn",
        "--json",
    )
    data = json.loads(out)
    assert set(data) == {"name", "role", "key"} and data["role"] == "validate"
    leak_watch.secrets.add(data["key"])
    seeds = tmp_path / "seeds.csv"
    seeds.write_text(
        "T1, 3132333435363738393031323334353637383930, totp\n"
        "T2, 31323334353637383930313233343536373839\n"
    )
    code, out, _ = run(capsys, "admin", "--db", db, "tokens", "import", str(seeds), "--dry-run")
    assert code == 0 and "dry run: nothing imported; 2 new" in out
    code, out, _ = run(capsys, "admin", "--db", db, "tokens", "import", str(seeds), "--json")
    assert json.loads(out)["created"] == 2
    assert run(capsys, "admin", "--db", db, "tokens", "assign", "T1", "alice@example.com")[0] == 0
    code, out, _ = run(capsys, "admin", "--db", db, "tokens", "list", "--json")
    owners = {t["serial"]: t["owner"] for t in json.loads(out)["items"]}
    assert owners == {"T1": "alice@example.com", "T2": None}
    assert run(capsys, "admin", "--db", db, "tokens", "unassign", "T1")[0] == 0
    assert run(capsys, "admin", "--db", db, "tokens", "unlock", "T1")[0] == 0
    code, _, err = run(capsys, "admin", "--db", db, "tokens", "assign", "NOPE", "alice@example.com")
    assert code == 1 and err.startswith("keyfob: error: no token with serial 'NOPE' — check")
    out_csv = tmp_path / "entra.csv"
    assert run(capsys, "admin", "--db", db, "tokens", "export", "-o", str(out_csv))[0] == 0
    assert out_csv.read_text().startswith("upn,serial number,secret key")
    assert oct(out_csv.stat().st_mode & 0o777) == "0o600"
    code, out, _ = run(capsys, "admin", "--db", db, "rotate-key")
    rotated = json.loads(out)
    assert rotated["reencrypted"] == 2 and len(rotated["dropped_keys"]) == 1
    assert run(capsys, "admin", "--db", db, "user", "disable", "alice@example.com")[0] == 0
    code, out, _ = run(capsys, "admin", "--db", db, "user", "list", "--json")
    assert json.loads(out)[0]["disabled"] is True


def test_bad_seed_file_exit_code_and_lines(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    seeds = tmp_path / "bad.csv"
    seeds.write_text("T1, 3132333435363738393031323334353637383930\nT2, nothex\n")
    code, out, _ = run(capsys, "admin", "--db", db, "tokens", "import", str(seeds))
    assert code == 1
    assert "line 2" in out and "not valid hex" in out and "nothing imported" in out


def test_serve_first_start_prints_admin_password_and_works(tmp_path, capsys, leak_watch) -> None:
    db = f"sqlite:///{tmp_path / 'srv.db'}"
    with serve(db, cwd=tmp_path) as server:
        lines = []
        while not lines or "keyfob serving on" not in lines[-1]:
            line = server.proc.stdout.readline()
            assert line, "serve stopped printing before 'keyfob serving on':\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert "first start: admin user 'admin', one-time password: " in text
        password = text.split("one-time password: ")[1].split()[0]
        leak_watch.secrets.add(password)
        assert server.url in text
        assert (tmp_path / "srv.key").exists()
        # The one-time password is for the web page only: over HTTP Basic it opens neither the
        # admin API nor the admin's own methods, whose set-up it would otherwise allow.
        one_time = ("admin", password)
        resp = httpx.post(
            f"{server.url}/api/v1/users", auth=one_time, json={"username": "evil@example.com"}
        )
        assert resp.status_code == 403
        resp = httpx.get(f"{server.url}/api/v1/users/admin/tokens", auth=one_time)
        assert resp.status_code == 401
        # The admin API takes an admin API key, made on the server's machine.
        status, out, _ = run(capsys, *apikey_create(db, tmp_path / "srv.key", "admin"))
        assert status == 0
        key = json.loads(out)["key"]
        leak_watch.secrets.add(key)
        auth = {"Authorization": f"Bearer {key}"}
        resp = httpx.post(
            f"{server.url}/api/v1/users", headers=auth, json={"username": "carol@example.com"}
        )
        assert resp.status_code == 201
        http_enrol(server.url, auth, "carol@example.com", leak_watch)
    leak_watch.log.write(server.output)
