"""Typed rows: what the service layer sees of the tables (secrets stay sealed here), and what
its operations return. The routes, the pages and the CLI shape them (keyfob.server.views)."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Generic, Self, TypeVar

from keyfob.otp import Algorithm, Credential, OtpType, build_otpauth
from keyfob.otp.verify import TokenParams, TokenState
from keyfob.server.store.vocab import ApiRole, Role, TokenKind, TokenStatus

T = TypeVar("T")

STATE_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TokenState))
"""The verification state's columns of ``tokens``, named as the fields of TokenState: the one
list that reading a row, writing a state and the compare-and-set all go by."""


Field = tuple[str, Any, Callable[[Any], Any] | None]


_FIELDS: dict[type, tuple[Field, ...]] = {}


def _fields(cls: type) -> tuple[Field, ...]:
    """Each field's name, default, and the type a column's value is made into: a stored word
    into its enum, SQLite's 0/1 into a bool, a driver's buffer into bytes (None: as it comes).
    Worked out once per record class: every validation reads rows through it."""
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        _FIELDS[cls] = tuple(
            (f.name, f.default, _made_into(hints[f.name])) for f in dataclasses.fields(cls)
        )
    return _FIELDS[cls]


def _made_into(hint: Any) -> Callable[[Any], Any] | None:
    if isinstance(hint, type) and (issubclass(hint, Enum) or hint in (bool, bytes)):
        return hint
    return None


class Record:
    """A typed row: each field read from the column of its name and made into the field's
    type. A column a query did not select leaves a field that has a default at its default."""

    @classmethod
    def from_row(cls, row: Any) -> Self:
        mapping = row._mapping
        values = cls._computed(mapping)
        for name, default, made_into in _fields(cls):
            if name not in values:
                missing = default is dataclasses.MISSING
                value = mapping[name] if missing else mapping.get(name, default)
                values[name] = value if made_into is None or value is None else made_into(value)
        return cls(**values)

    @classmethod
    def _computed(cls, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """The fields that are no column of their own."""
        return {}


OTP_SHAPE = ("type", "algorithm", "digits", "period")
"""What, with the secret, makes a token's codes; named alike in a seed file's record, a token
row and a credential."""


def otp_shape(source: object) -> dict[str, Any]:
    """The :data:`OTP_SHAPE` of a record, a seed or a credential, by name."""
    return {name: getattr(source, name) for name in OTP_SHAPE}


def state_values(state: TokenState) -> dict[str, Any]:
    """Column values of a verification state, for INSERT and UPDATE."""
    return {name: getattr(state, name) for name in STATE_COLUMNS}


@dataclass(frozen=True)
class UserRecord(Record):
    id: str
    username: str
    display_name: str
    role: Role
    disabled: bool
    must_change_password: bool
    has_password: bool
    created_at: datetime

    @classmethod
    def _computed(cls, mapping: Mapping[str, Any]) -> dict[str, Any]:
        return {"has_password": mapping["password_hash"] is not None}


@dataclass(frozen=True)
class TokenRecord(Record):
    id: str
    serial: str | None
    kind: TokenKind
    type: OtpType
    algorithm: Algorithm
    digits: int
    period: int
    secret_enc: bytes = field(repr=False)
    owner_id: str | None
    label: str
    state: TokenStatus
    verification: TokenState
    version: int
    imported_drift: int
    manufacturer: str | None
    model: str | None
    source: str
    created_at: datetime
    activated_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    owner: str | None = None  # the owner's username, where the query joined it
    reported_serial: str | None = None  # a user's word, never an inventory serial
    lost_at: datetime | None = None
    retired_at: datetime | None = None
    drift_history: str | None = None  # store/driftlog.py

    @classmethod
    def _computed(cls, mapping: Mapping[str, Any]) -> dict[str, Any]:
        return {"verification": TokenState(**{name: mapping[name] for name in STATE_COLUMNS})}

    def params(self, secret: bytes) -> TokenParams:
        return TokenParams(secret, self.type, self.algorithm, self.digits, self.period)


@dataclass(frozen=True)
class ApiKeyRecord(Record):
    id: str
    name: str
    role: ApiRole
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    hash: str = field(default="", repr=False)  # read only where a presented key is checked


@dataclass(frozen=True)
class AuditRecord(Record):
    id: int
    at: datetime
    actor: str
    action: str
    target_user: str | None
    target_serial: str | None
    outcome: str
    reason: str | None
    client: str | None
    details: dict[str, Any] | None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, and how many rows the whole listing holds."""

    items: list[T]
    total: int


@dataclass(frozen=True)
class TokenFilter:
    """Which tokens a listing shows; None (or False) leaves a property unfiltered."""

    state: TokenStatus | None = None
    kind: TokenKind | None = None
    owner: str | None = None  # a username, any case
    assigned: bool | None = None
    # a prefix of the serial, or of the serial a user reported; % and _ are plain characters
    serial: str | None = None
    locked: bool = False  # only tokens locked now
    drift_over: int | None = None  # only tokens whose learned drift is beyond this many seconds


@dataclass(frozen=True)
class UserFilter:
    """Which users a listing shows; None leaves a property unfiltered."""

    prefix: str | None = None  # the start of the username, any case; % and _ are plain characters
    role: Role | None = None


@dataclass(frozen=True)
class AuditFilter:
    """Which audit rows a listing shows; None leaves a property unfiltered."""

    user: str | None = None  # the actor or the target user, any case
    serial: str | None = None
    action: str | None = None  # a prefix ("token." is every token action), % and _ literal
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Enrolment:
    """A pending enrolment as its owner sees it: the credential to scan or burn (with its
    secret), handed out until the enrolment expires."""

    id: str
    kind: TokenKind
    label: str
    credential: Credential  # labelled with the server's issuer and the user's name
    expires_at: datetime

    @property
    def otpauth_uri(self) -> str:
        """The ``otpauth://`` URI an authenticator app scans (it holds the secret)."""
        return build_otpauth(self.credential)
