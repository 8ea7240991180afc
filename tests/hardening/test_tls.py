"""``keyfob serve --tls-cert/--tls-key``: a real server process answering HTTPS with a
certificate made here, verified by httpx against that certificate; cookies ``Secure`` and HSTS
on every answer; plain HTTP on that port gets nothing; bad TLS options refused before start."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyfob.server import accounts
from keyfob.server.context import open_context
from keyfob.server.settings import Settings
from testkit import KEYFOB, free_port, healthy, running


def _self_signed(folder: Path, name: str = "keyfob-test") -> tuple[Path, Path]:
    """A P-256 certificate for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def _https_server(db: str, cert: Path, key: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    port = free_port()
    argv = [*KEYFOB, "serve", "--db", db, "--port", str(port), "--log-level", "warning"]
    argv += ["--tls-cert", str(cert), "--tls-key", str(key)]
    trust = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    with running(
        argv,
        lambda: healthy(url, verify=trust),
        what="keyfob serve over HTTPS",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ):
        yield url, trust


def test_serve_over_tls_with_secure_cookies_and_hsts(tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    db = f"sqlite:///{tmp_path / 'keyfob.db'}"
    ctx = open_context(Settings(db=db))
    accounts.create_user(ctx, "alice@example.com", password="a one-time password 1")
    ctx.engine.dispose()
    with _https_server(db, cert, key) as (url, trust):
        with httpx.Client(base_url=url, verify=trust, timeout=10) as client:
            health = client.get("/healthz")
            assert health.headers["strict-transport-security"] == "max-age=31536000"
            page = client.get("/login")
            assert page.status_code == 200
            assert re.search(r"(?i);\s*secure", page.headers["set-cookie"]), page.headers
            csrf = client.cookies["kf_login_csrf"]
            signed = client.post(
                "/login",
                data={
                    "username": "alice@example.com",
                    "password": "a one-time password 1",
                    "csrf": csrf,
                },
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            session_cookies = signed.headers.get_list("set-cookie")
            assert session_cookies and all(
                re.search(r"(?i);\s*secure", c) for c in session_cookies if "Max-Age=0" not in c
            ), session_cookies
            assert "strict-transport-security" in signed.headers
        with pytest.raises(httpx.HTTPError):  # another certificate is not trusted
            httpx.get(f"{url}/healthz", verify=ssl.create_default_context(), timeout=5)
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port: no answer
            httpx.get(url.replace("https", "http") + "/healthz", timeout=5)


def test_plain_http_has_no_hsts(sqlite_api) -> None:
    resp = sqlite_api.client.get("/healthz")
    assert resp.status_code == 200 and "strict-transport-security" not in resp.headers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "{cert}"], "go together"),
        (["--tls-cert", "{tmp}/missing.crt", "--tls-key", "{key}"], "does not exist"),
        (["--tls-cert", "{other}", "--tls-key", "{key}"], "cannot use"),
    ],
    ids=["cert-without-key", "missing-file", "key-of-another-cert"],
)
def test_bad_tls_options_are_refused_before_start(tmp_path, args, message) -> None:
    cert, key = _self_signed(tmp_path)
    other, _ = _self_signed(tmp_path, "other")
    values = {"cert": cert, "key": key, "other": other, "tmp": tmp_path}
    argv = [a.format(**values) for a in args]
    db = f"sqlite:///{tmp_path / 'keyfob.db'}"
    done = subprocess.run(
        [*KEYFOB, "serve", "--db", db, "--port", str(free_port()), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_TLS")},
    )
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
