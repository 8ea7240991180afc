"""A real OpenLDAP for the directory tests: ``slapd -f`` with a throwaway slapd.conf (back_mdb)
on two loopback ports (ldaps:// with a test CA made here, and ldap:// for ldapadd), its access
log (``-d stats`` on stderr, to a file) for counting what keyfob asks it, and helpers that load
users and groups with ``ldapadd`` / ``ldapmodify``.

Each slapd is started as a child process and stopped by its own PID, never by name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = Path("/usr/sbin/slapd")
SUFFIX = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret-pw"
SERVICE_DN = f"cn=keyfob,{SUFFIX}"
SERVICE_PW = "service-secret-pw"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls(directory: Path) -> Path:
    """A test CA and a server certificate for 127.0.0.1 / localhost; returns the CA file."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("keyfob test CA"))
        .issuer_name(_name("keyfob test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory / "ca.pem"


def _config(work: Path, tls: Path) -> str:
    includes = "\n".join(f"include /etc/ldap/schema/{s}.schema" for s in SCHEMAS)
    return f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {work}/slapd.pid
argsfile {work}/slapd.args
TLSCACertificateFile {tls}/ca.pem
TLSCertificateFile {tls}/server.pem
TLSCertificateKeyFile {tls}/server.key
sizelimit 500
access to attrs=userPassword by self read by anonymous auth by * none
access to * by * read
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {work}/db
index objectClass eq
index uid,mail,cn eq
index member eq
"""


@dataclass
class Slapd:
    """One slapd process: ``ldaps_url`` for keyfob, ``ldap_url`` for the loading tools."""

    work: Path
    tls: Path
    ldaps_port: int = field(default_factory=free_tcp_port)
    ldap_port: int = field(default_factory=free_tcp_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def log_path(self) -> Path:
        return self.work / "slapd.log"

    def start(self) -> None:
        (self.work / "db").mkdir(parents=True, exist_ok=True)
        conf = self.work / "slapd.conf"
        conf.write_text(_config(self.work, self.tls))
        urls = f"{self.ldaps_url}/ {self.ldap_url}/"
        log = self.log_path.open("ab")
        # -d stats: stay in the foreground (so the PID is ours) and log every operation.
        self.proc = subprocess.Popen(
            [str(SLAPD), "-f", str(conf), "-h", urls, "-d", "stats"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.log_path.read_text()[-2000:]}")
            if _answers(self.ldap_port) and _answers(self.ldaps_port):
                return
            time.sleep(0.05)
        raise RuntimeError("slapd did not start in 10 s")

    def stop(self) -> None:
        """Stop this slapd, by its own PID."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_mark(self) -> int:
        """Where the access log ends now: count operations after it with :meth:`ops_since`."""
        return self.log_path.stat().st_size

    def ops_since(self, mark: int, op: str) -> list[str]:
        """Access-log lines of operation ``op`` (BIND, SRCH…) written after ``mark``."""
        time.sleep(0.15)  # slapd writes its log lines as it goes; let the last ones land
        with self.log_path.open("rb") as f:
            f.seek(mark)
            text = f.read().decode(errors="replace")
        # slapd logs some operations on two lines (a BIND's DN, then its mechanism; a SRCH's
        # filter, then its attributes): count each (connection, operation) once.
        found = (re.search(rf"\b(conn=\d+ op=\d+) {op}\b", line) for line in text.splitlines())
        return sorted({m.group(1) for m in found if m})

    def ldif(self, text: str, *, modify: bool = False) -> None:
        tool = "ldapmodify" if modify else "ldapadd"
        subprocess.run(
            [tool, "-x", "-H", self.ldap_url, "-D", ROOT_DN, "-w", ROOT_PW],
            input=text.encode(),
            check=True,
            capture_output=True,
        )


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def base_ldif() -> str:
    return f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: {SERVICE_DN}
objectClass: person
cn: keyfob
sn: service
userPassword: {SERVICE_PW}
"""


@dataclass
class Tree:
    """A subtree of one test (``ou=<random>``), so tests never see each other's users."""

    slapd: list[Slapd]
    ou: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:10])

    @property
    def base(self) -> str:
        return f"ou={self.ou},{SUFFIX}"

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},{self.base}"

    def group_dn(self, name: str) -> str:
        return f"cn={name},{self.base}"

    def apply(self, text: str, *, modify: bool = False) -> None:
        for s in self.slapd:
            if s.proc is not None:
                s.ldif(text, modify=modify)

    def create(self) -> None:
        self.apply(f"dn: {self.base}\nobjectClass: organizationalUnit\nou: {self.ou}\n")

    def add_user(self, uid: str, password: str, *, disabled: bool = False) -> None:
        extra = "employeeType: disabled\n" if disabled else ""
        self.apply(
            f"dn: {self.user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
            f"sn: {uid}\ndisplayName: {uid.title()} Example\nmail: {uid}@example.com\n"
            f"userPassword: {password}\n{extra}"
        )

    def add_group(self, name: str, members: list[str]) -> None:
        lines = "".join(f"member: {m}\n" for m in members)
        self.apply(f"dn: {self.group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n{lines}")

    def rename_user(self, uid: str, new_uid: str) -> None:
        self.apply(
            f"dn: {self.user_dn(uid)}\nchangetype: modrdn\nnewrdn: uid={new_uid}\n"
            "deleteoldrdn: 1\n",
            modify=True,
        )

    def delete_user(self, uid: str) -> None:
        self.apply(f"dn: {self.user_dn(uid)}\nchangetype: delete\n", modify=True)


def have_tools() -> str | None:
    """None when slapd and ldapadd are here, else what is missing."""
    if not SLAPD.exists():
        return "OpenLDAP slapd (Debian slapd) is not installed"
    if shutil.which("ldapadd") is None:
        return "ldapadd (Debian ldap-utils) is not installed"
    return None
