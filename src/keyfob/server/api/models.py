"""Request bodies: bounded, typed, and strict about unknown fields.

Every text field is no longer than the column it reaches, and holds no control character (the
base class checks every string field, so a field added later is covered too): a bad value is a
422 naming the field, never a database error. ``ImportBody.content`` alone is free text: it is a
whole file, parsed and never stored as such.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from keyfob.server.enrolment import PERIODS
from keyfob.server.inputs import SERIAL_MAX, refuse_forbidden
from keyfob.server.store.vocab import Role, TokenKind
from keyfob.server.tap import MAX_USES as TAP_MAX_USES


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    free_text: ClassVar[frozenset[str]] = frozenset()  # fields that may span lines

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and info.field_name not in cls.free_text:
            refuse_forbidden(value)
        return value


class ValidateBody(_Body):
    username: str = Field(min_length=1, max_length=255)
    code: str = Field(min_length=1, max_length=32)


class ValidateAnswer(BaseModel):
    result: Literal["accept", "reject"] = Field(
        description="accept: the code is right and has not been used; reject: anything else"
    )


class UserBody(_Body):
    username: str = Field(min_length=1, max_length=255)
    password: str | None = Field(default=None, max_length=1024)
    display_name: str = Field(default="", max_length=255)
    role: Role = Role.USER


class BeginBody(_Body):
    kind: Literal[TokenKind.APP, TokenKind.PROGRAMMABLE]
    label: str | None = Field(default=None, max_length=255)
    algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1"
    digits: int = Field(default=6, ge=6, le=10)
    # Checked by the service, so that a bad period is the same 400 here and on the page.
    period: int = Field(
        default=30,
        description="seconds each code lasts: 30 or 60",
        json_schema_extra={"enum": list(PERIODS)},
    )


class VerifyBody(_Body):
    code: str = Field(min_length=1, max_length=32)
    serial: str | None = Field(default=None, min_length=1, max_length=SERIAL_MAX)


class SelfAssignBody(_Body):
    serial: str = Field(min_length=1, max_length=SERIAL_MAX)
    code: str = Field(min_length=1, max_length=32)
    label: str | None = Field(default=None, max_length=255)


class AssignBody(_Body):
    username: str = Field(min_length=1, max_length=255)
    label: str | None = Field(default=None, max_length=255)


class ResyncBody(_Body):
    code1: str = Field(min_length=1, max_length=32)
    code2: str = Field(min_length=1, max_length=32)


class ImportBody(_Body):
    free_text: ClassVar[frozenset[str]] = frozenset({"content"})

    content: str | None = Field(default=None, description="the file as text (PSKC, CSV, URIs)")
    content_base64: str | None = Field(default=None, description="or the file as base64")
    format: Literal["pskc", "azure-csv", "oath-csv", "vendor-csv", "otpauth"] | None = None
    filename: str = Field(default="upload", max_length=255)
    password: str | None = Field(default=None, max_length=1024)
    key: str | None = Field(default=None, max_length=128, description="pre-shared key, hex")
    mac_check: Literal["strict", "soft", "none"] = "strict"
    dry_run: bool = False
    allow_retired: bool = Field(
        default=False, description="import a retired serial again (its old row is replaced)"
    )


class TapBody(_Body):  # a temporary access passcode to issue (server/tap.py)
    hours: float = Field(8.0, ge=1 / 6, le=168, description="10 minutes to 7 days")
    uses: int = Field(1, ge=1, le=TAP_MAX_USES)
    reason: str = Field("", max_length=255, description="a ticket reference, for the audit log")


class LostBody(_Body):  # a token marked lost (server/helpdesk.py)
    issue_tap: bool = Field(
        False, description="also issue the owner a temporary access passcode, answered once"
    )


class ExportBody(_Body):
    format: Literal["azure-csv", "pskc"]
    password: str | None = Field(default=None, max_length=1024)
    assigned_only: bool = False
