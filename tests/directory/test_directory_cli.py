"""`keyfob admin directory add|list|test|remove` against the real slapd, and the sign-in page
with a directory password."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from slapdkit import SERVICE_DN, SERVICE_PW, Slapd, Tree

from conftest import AddDirectory
from keyfob.cli.main import main
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext
from keyfob.server.web.common import LOGIN_CSRF_COOKIE


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, _ = capsys.readouterr()
    return code, out


def test_directory_commands(
    tmp_path: Path,
    db_url: str,
    ctx: ServerContext,  # the database made (and migrated), with its key file tmp_path/k.key
    capsys: pytest.CaptureFixture[str],
    slapd: Slapd,
    tree: Tree,
    tls_dir: Path,
) -> None:
    tree.add_user("lena", "lena-directory-pw")
    db = ["admin", "--db", db_url, "--key-file", str(tmp_path / "k.key"), "directory"]
    pw_file = tmp_path / "bind.pw"
    pw_file.write_text(SERVICE_PW + "\n")
    add = [
        "add", "corp", "--kind", "openldap", "--url", slapd.ldaps_url, "--base-dn", tree.base,
        "--bind-dn", SERVICE_DN, "--bind-password-file", str(pw_file),
        "--ca-file", str(tls_dir / "ca.pem"),
    ]  # fmt: skip
    code, out = run(capsys, *db, *add)
    assert code == 0 and "added directory 'corp'" in out
    code, out = run(capsys, *db, "list", "--json")
    listed = json.loads(out)
    assert listed[0]["name"] == "corp" and listed[0]["users"] == 0
    assert SERVICE_PW not in out
    code, out = run(capsys, *db, "test", "corp", "lena", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert report["user"]["username"] == "lena" and len(report["user"]["entryUUID"]) == 36
    assert [s["result"] for s in report["steps"]] == ["ok", "found"]
    code, out = run(capsys, *db, "test", "corp", "*")
    assert code == 1 and "not found" in out
    # set: a wrong bind password makes the test fail; the right one again, and it passes
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-service-pw\n")
    code, out = run(capsys, *db, "set", "corp", "--bind-password-file", str(wrong))
    assert code == 0 and "changed directory 'corp'" in out
    code, out = run(capsys, *db, "test", "corp", "--json")
    assert code == 1 and json.loads(out)["steps"][0]["result"] == "bind refused"
    code, out = run(
        capsys, *db, "set", "corp", "--bind-password-file", str(pw_file), "--cache-ttl", "60",
        "--group", tree.base, "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["cache_ttl"] == 60 and json.loads(out)["group"]
    code, out = run(capsys, *db, "set", "corp", "--cache-ttl", "5")
    assert code == 1
    code, out = run(capsys, *db, "set", "corp", "--group", "", "--json")
    assert code == 0 and json.loads(out)["group"] == "" and json.loads(out)["cache_ttl"] == 60
    code, out = run(capsys, *db, "test", "corp", "lena")
    assert code == 0 and "found" in out
    code, out = run(capsys, *db, "remove", "corp")
    assert code == 0 and "removed directory 'corp'" in out


def test_web_sign_in_with_the_directory_password(
    ctx: ServerContext, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("mona", "mona-directory-pw")
    add_directory(tree)
    with TestClient(create_app(ctx)) as web:
        web.get("/login")
        csrf = web.cookies.get(LOGIN_CSRF_COOKIE)
        form = {"username": "mona", "password": "wrong-password", "csrf": csrf}
        assert web.post("/login", data=form, follow_redirects=False).status_code == 401
        form["password"] = "mona-directory-pw"
        resp = web.post("/login", data=form, follow_redirects=False)
    assert resp.status_code == 303 and re.fullmatch(r"/(login/code)?", resp.headers["location"])
