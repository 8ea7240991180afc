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
    assert run(capsys, "admin", "--db", db, "init")[0] == 0
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
    code, out, _ = run(capsys, "admin", "--db", db, "rotate-key", "--json")
    rotated = json.loads(out)
    assert rotated["reencrypted"] == 2 and len(rotated["dropped_keys"]) == 1
    assert run(capsys, "admin", "--db", db, "user", "disable", "alice@example.com")[0] == 0
    code, out, _ = run(capsys, "admin", "--db", db, "user", "list", "--json")
    assert json.loads(out)["items"][0]["disabled"] is True


def test_bad_seed_file_exit_code_and_lines(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    assert run(capsys, "admin", "--db", db, "init")[0] == 0
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


def test_helpdesk_tickets_from_the_cli(tmp_path, capsys, leak_watch) -> None:
    """Delete a user, reset a password, list a user's methods by id, remove one, disable a
    token; every data-printing command answers --json."""
    db = f"sqlite:///{tmp_path / 'k.db'}"
    admin = ("admin", "--db", db)
    assert run(capsys, *admin, "init")[0] == 0
    for name in ("alice@example.com", "bob@example.com"):
        code, out, _ = run(capsys, *admin, "user", "add", name, "--json")
        leak_watch.secrets.add(json.loads(out)["one_time_password"])
    seeds = tmp_path / "seeds.csv"
    seeds.write_text(
        "T1, 3132333435363738393031323334353637383930\nT2, 3132333435363738393031323334353637383931\n"
    )
    assert run(capsys, *admin, "tokens", "import", str(seeds))[0] == 0
    code, out, _ = run(capsys, *admin, "tokens", "assign", "T1", "alice@example.com", "--json")
    assert code == 0 and json.loads(out)["owner"] == "alice@example.com"
    assert run(capsys, *admin, "tokens", "assign", "T2", "bob@example.com")[0] == 0

    code, out, _ = run(capsys, *admin, "user", "methods", "alice@example.com", "--json")
    (method,) = json.loads(out)
    assert method["serial"] == "T1" and method["id"]
    code, out, _ = run(capsys, *admin, "user", "methods", "alice@example.com")
    assert method["id"] in out and "classic" in out

    code, out, _ = run(capsys, *admin, "tokens", "disable", "T1", "--json")
    assert code == 0 and json.loads(out)["state"] == "disabled"
    code, _, err = run(capsys, *admin, "tokens", "disable", "T1")
    assert code == 1 and "already disabled" in err
    code, out, _ = run(capsys, *admin, "tokens", "enable", "T1")
    assert code == 0 and out == "enabled T1\n"
    for command in ("unlock", "unassign"):
        code, out, _ = run(capsys, *admin, "tokens", command, "T1", "--json")
        assert code == 0 and json.loads(out)["serial"] == "T1"

    code, out, _ = run(capsys, *admin, "user", "reset-password", "alice@example.com", "--json")
    data = json.loads(out)
    leak_watch.secrets.add(data["one_time_password"])
    assert data["must_change_password"] is True
    code, out, _ = run(capsys, *admin, "user", "disable", "alice@example.com", "--json")
    assert json.loads(out)["disabled"] is True

    code, out, _ = run(capsys, *admin, "user", "delete", "bob@example.com", "--yes", "--json")
    assert json.loads(out) == {
        "username": "bob@example.com",
        "deleted_methods": 0,
        "returned_to_inventory": ["T2"],
    }
    code, out, _ = run(capsys, *admin, "tokens", "list", "--unassigned", "--json")
    assert {t["serial"] for t in json.loads(out)["items"]} == {"T1", "T2"}
    code, _, err = run(capsys, *admin, "user", "delete", "admin", "--yes")
    assert code == 1 and "no user" in err  # only serve makes the first admin
    code, out, _ = run(capsys, *admin, "user", "add", "root@example.com", "--role", "admin")
    code, _, err = run(capsys, *admin, "user", "delete", "root@example.com", "--yes")
    assert code == 1 and "only enabled admin" in err
    code, out, _ = run(capsys, *admin, "user", "list", "--json")
    assert "bob@example.com" not in out

    out_csv = tmp_path / "entra.csv"
    code, out, _ = run(capsys, *admin, "tokens", "export", "-o", str(out_csv), "--json")
    assert json.loads(out)["file"] == str(out_csv)
    code, out, _ = run(capsys, *admin, "rotate-key")
    assert code == 0 and out.startswith("new master key ") and "re-encrypted" in out
