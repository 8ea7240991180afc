"""`keyfob admin …` and `keyfob serve` as an administrator uses them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pyotp

from keyfob.cli.main import main


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_first_start_prints_admin_password_and_works(tmp_path, capsys, leak_watch) -> None:
    port = _free_port()
    db = f"sqlite:///{tmp_path / 'srv.db'}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from keyfob.cli.main import run; run()",
            "serve",
            "--db",
            db,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "keyfob serving on" in line:
                break
        text = "".join(lines)
        assert "first start: admin user 'admin', one-time password: " in text
        password = text.split("one-time password: ")[1].split()[0]
        leak_watch.secrets.add(password)
        assert f"http://127.0.0.1:{port}" in text
        assert (tmp_path / "srv.key").exists()
        base = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # The one-time password is for the web page only: over HTTP Basic it opens neither the
        # admin API nor the admin's own methods, whose set-up it would otherwise allow.
        one_time = ("admin", password)
        resp = httpx.post(
            f"{base}/api/v1/users", auth=one_time, json={"username": "evil@example.com"}
        )
        assert resp.status_code == 403
        resp = httpx.get(f"{base}/api/v1/users/admin/tokens", auth=one_time)
        assert resp.status_code == 401
        # The admin API takes an admin API key, made on the server's machine.
        status, out, _ = run(
            capsys,
            "admin",
            "--db",
            db,
            "--key-file",
            str(tmp_path / "srv.key"),
            "apikey",
            "create",
            "--role",
            "admin",
            "--json",
        )
        assert status == 0
        key = json.loads(out)["key"]
        leak_watch.secrets.add(key)
        auth = {"Authorization": f"Bearer {key}"}
        assert (
            httpx.post(
                f"{base}/api/v1/users", headers=auth, json={"username": "carol@example.com"}
            ).status_code
            == 201
        )
        begun = httpx.post(
            f"{base}/api/v1/users/carol@example.com/tokens", headers=auth, json={"kind": "app"}
        ).json()
        leak_watch.secrets.add(begun["secret"])
        totp = pyotp.parse_uri(begun["otpauth_uri"])
        code = totp.at(time.time() - 30)
        leak_watch.codes.add(code)
        resp = httpx.post(
            f"{base}/api/v1/users/carol@example.com/tokens/{begun['id']}/verify",
            headers=auth,
            json={"code": code},
        )
        assert resp.status_code == 200 and resp.json()["state"] == "active"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
        leak_watch.log.write(out or "")
