"""Find one user in a directory by login name, with their stable id and whether they may sign
in: not disabled, and inside ``--group`` (nested).

Disabled accounts and users outside the group are *found* here, with a ``refusal``: the caller
refuses them exactly like unknown users, but ``directory test`` can say why.

Groups: on Active Directory the server resolves nested membership itself
(LDAP_MATCHING_RULE_IN_CHAIN, OID 1.2.840.113556.1.4.1941) in one base search on the user.
OpenLDAP has no such rule (its memberof overlay keeps direct memberships only), so keyfob walks
upwards: the groupOfNames / groupOfUniqueNames under the base DN that list the user, then the
groups that list those, at most :data:`MAX_GROUP_DEPTH` levels, one search a level.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from keyfob.server.directory.config import DirectoryRecord, Kind
from keyfob.server.directory.ldap import Entry, LdapClient, escape

IN_CHAIN = "1.2.840.113556.1.4.1941"
ACCOUNTDISABLE = 0x2  # userAccountControl bit of a disabled AD account
MAX_GROUP_DEPTH = 8
DISABLED = "disabled"
OUTSIDE_GROUP = "outside_group"
AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Found:
    dn: str
    external_id: str  # objectGUID / entryUUID as lower-case UUID text
    login: str  # the login attribute's value, as the directory spells it
    display_name: str
    refusal: str | None = None  # DISABLED, OUTSIDE_GROUP: found, but refused like unknown


def user_filter(record: DirectoryRecord, login: str) -> str:
    return f"(&({record.login_attribute}={escape(login)}){record.search_filter})"


def stable_id(record: DirectoryRecord, entry: Entry) -> str:
    raw = (entry.raw.get(record.stable_id_attribute) or [b""])[0]
    if record.kind is Kind.AD:
        return str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else ""
    return raw.decode("ascii", "replace").strip().lower()


def find_user(client: LdapClient, record: DirectoryRecord, login: str) -> Found | None:
    """The user whose login attribute is ``login``, or None (also for two matches)."""
    attributes = [record.stable_id_attribute, record.login_attribute, "displayName", "cn"]
    if record.kind is Kind.AD:
        attributes.append("userAccountControl")
    entries = client.search(record.base_dn, user_filter(record, login), attributes)
    if len(entries) != 1:
        return None
    entry = entries[0]
    external = stable_id(record, entry)
    if not external:
        return None
    found = Found(
        dn=entry.dn,
        external_id=external,
        login=entry.text(record.login_attribute) or login,
        display_name=entry.text("displayName") or entry.text("cn"),
    )
    refusal = _refusal(client, record, entry)
    return Found(**{**found.__dict__, "refusal": refusal}) if refusal else found


def _refusal(client: LdapClient, record: DirectoryRecord, entry: Entry) -> str | None:
    if record.kind is Kind.AD:
        flags = entry.text("userAccountControl")
        if flags.isdigit() and int(flags) & ACCOUNTDISABLE:
            return DISABLED
    if record.disabled_filter and client.search(
        entry.dn, record.disabled_filter, ["1.1"], subtree=False
    ):
        return DISABLED
    if record.group_dn and not in_group(client, record, entry.dn):
        return OUTSIDE_GROUP
    return None


def _dn_key(dn: str) -> str:
    return ",".join(part.strip() for part in dn.casefold().split(","))


def in_group(client: LdapClient, record: DirectoryRecord, dn: str) -> bool:
    if record.kind is Kind.AD:
        query = f"(memberOf:{IN_CHAIN}:={escape(record.group_dn)})"
        return bool(client.search(dn, query, ["1.1"], subtree=False))
    target = _dn_key(record.group_dn)
    frontier, seen = [dn], {_dn_key(dn)}
    for _ in range(MAX_GROUP_DEPTH):
        members = "".join(f"(member={escape(d)})(uniqueMember={escape(d)})" for d in frontier)
        classes = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
        groups = _all(client, record.base_dn, f"(&{classes}(|{members}))")
        keys = {_dn_key(g): g for g in groups}
        if target in keys:
            return True
        frontier = [g for k, g in keys.items() if k not in seen]
        seen.update(keys)
        if not frontier:
            return False
    return False


def _all(client: LdapClient, base: str, query: str) -> list[str]:
    return [e.dn for e in client.search(base, query, ["1.1"], size_limit=0)]
