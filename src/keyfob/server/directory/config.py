"""What an administrator says about a directory, checked before it is stored.

A directory is an LDAP server set (failover order) with a search base, a service account, the
attribute users sign in with and optional narrowing: an extra filter, a group (nested), a
"disabled" filter. :class:`DirectoryRecord` is the stored row, the bind password sealed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from keyfob.server.errors import ServiceError
from keyfob.server.inputs import forbidden_at, one_of

DEFAULT_CACHE_TTL = 300
MAX_CACHE_TTL = 86400
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Kind(StrEnum):
    AD = "ad"
    OPENLDAP = "openldap"


LOGIN_ATTRIBUTES = ("userPrincipalName", "sAMAccountName", "uid", "mail")
DEFAULT_LOGIN = {Kind.AD: "userPrincipalName", Kind.OPENLDAP: "uid"}
STABLE_ID = {Kind.AD: "objectGUID", Kind.OPENLDAP: "entryUUID"}
DEFAULT_FILTER = {
    Kind.AD: "(&(objectCategory=person)(objectClass=user))",
    Kind.OPENLDAP: "(objectClass=person)",
}


@dataclass(frozen=True)
class DirectorySpec:
    """The settings of ``directory add`` (everything but the password)."""

    name: str
    urls: tuple[str, ...]
    base_dn: str
    bind_dn: str
    kind: Kind = Kind.AD
    login_attribute: str = ""
    user_filter: str = ""
    group_dn: str = ""
    disabled_filter: str = ""
    ca_file: str = ""
    starttls: bool = False
    cache_ttl: int = DEFAULT_CACHE_TTL

    def columns(self) -> dict[str, Any]:
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values["urls"] = ",".join(self.urls)
        values["kind"] = self.kind.value
        return values


@dataclass(frozen=True)
class DirectoryRecord(DirectorySpec):
    """A ``directories`` row; the bind password stays sealed here."""

    id: str = ""
    created_at: datetime | None = None
    secret_enc: bytes = field(default=b"", repr=False)

    @classmethod
    def from_row(cls, row: Any) -> DirectoryRecord:
        m = dict(row._mapping)
        m["urls"] = tuple(u for u in m["urls"].split(",") if u)
        m["kind"] = Kind(m["kind"])
        m["starttls"] = bool(m["starttls"])
        m["secret_enc"] = bytes(m["secret_enc"])
        return cls(**m)

    @property
    def stable_id_attribute(self) -> str:
        return STABLE_ID[self.kind]

    @property
    def search_filter(self) -> str:
        return self.user_filter or DEFAULT_FILTER[self.kind]


def _bad(message: str, hint: str) -> ServiceError:
    return ServiceError(message, hint=hint)


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise _bad(
            "a directory name is 1 to 64 letters, digits, '.', '-' or '_'",
            "name it after the domain, e.g. corp or ldap-hq",
        )
    return name


def check_urls(urls: str | list[str] | tuple[str, ...], starttls: bool) -> tuple[str, ...]:
    """ldaps:// URLs (or ldap:// with StartTLS): a bind password never crosses in clear."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    parsed = tuple(u.strip() for item in items for u in item.split(",") if u.strip())
    if not parsed or len(parsed) > 8:
        raise _bad("give 1 to 8 server URLs", "e.g. --url ldaps://dc1.example.com,ldaps://dc2")
    for url in parsed:
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname or parts.path not in "/":
            raise _bad(f"{url[:80]!r} is not an LDAP server URL", "use ldaps://HOST[:PORT]")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise _bad(f"{url[:80]!r} has a bad port", "use ldaps://HOST[:PORT]") from None
        if parts.scheme == "ldap" and not starttls:
            raise _bad(
                f"{url[:80]!r} would send passwords in clear",
                "use ldaps://, or add --starttls for a server that upgrades ldap://",
            )
    return parsed


def check_filter(text: str, what: str) -> str:
    """A filter in parentheses that balance; the server checks the rest at ``test``."""
    text = text.strip()
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
    if text and (depth != 0 or not (text.startswith("(") and text.endswith(")"))):
        raise _bad(f"{what} is not an LDAP filter", "write it in parentheses: (employeeType=x)")
    return text


def check_spec(spec: DirectorySpec) -> DirectorySpec:
    """The spec with defaults filled in, or a ServiceError naming the first bad setting."""
    login = spec.login_attribute or DEFAULT_LOGIN[spec.kind]
    if login not in LOGIN_ATTRIBUTES:
        raise _bad(f"login attribute {login[:40]!r} is not supported", "; ".join(LOGIN_ATTRIBUTES))
    for what, value in (("base DN", spec.base_dn), ("bind DN", spec.bind_dn)):
        if not value.strip() or forbidden_at(value) is not None or len(value) > 1024:
            raise _bad(f"the {what} is empty or has control characters", "e.g. DC=corp,DC=com")
    if not 10 <= spec.cache_ttl <= MAX_CACHE_TTL:
        raise _bad("the cache TTL is 10 to 86400 seconds", "the default is 300 (5 minutes)")
    return DirectorySpec(
        name=check_name(spec.name),
        urls=check_urls(spec.urls, spec.starttls),
        base_dn=spec.base_dn.strip(),
        bind_dn=spec.bind_dn.strip(),
        kind=Kind(spec.kind),
        login_attribute=login,
        user_filter=check_filter(spec.user_filter, "--filter"),
        group_dn=spec.group_dn.strip(),
        disabled_filter=check_filter(spec.disabled_filter, "--disabled-filter"),
        ca_file=spec.ca_file.strip(),
        starttls=spec.starttls,
        cache_ttl=spec.cache_ttl,
    )


def check_kind(kind: str) -> Kind:
    hint = "ad for Active Directory, openldap for any other LDAP server"
    return one_of(Kind, kind, "directory kind", hint=hint)


# ``directory add`` option names (the CLI's and the admin page's form) that differ from the
# :class:`DirectorySpec` field they fill.
_OPTION_FIELDS = {"url": "urls", "filter": "user_filter", "group": "group_dn"}


def spec_from_options(options: Mapping[str, Any]) -> DirectorySpec:
    """The :class:`DirectorySpec` of ``directory add``'s options (CLI parameters or form fields):
    the servers comma-separated, the kind checked; options that are not settings are ignored."""
    fields = DirectorySpec.__dataclass_fields__
    values = {_OPTION_FIELDS.get(k, k): v for k, v in options.items()}
    values = {k: v for k, v in values.items() if k in fields}
    values["urls"] = tuple(values["urls"].split(","))
    values["kind"] = check_kind(values["kind"])
    return DirectorySpec(**values)
