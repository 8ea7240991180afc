"""OTP core: pure maths and parsing, no I/O — everything else in keyfob builds on it."""

from keyfob.otp.credential import Credential, OtpType
from keyfob.otp.hotp import Algorithm, hotp, match_counter, time_step, totp
from keyfob.otp.migration import MigrationBatch, decode_migration, merge_batches
from keyfob.otp.payload import PayloadKind, classify, parse_payload, pick_credential
from keyfob.otp.secret import (
    SecretEncoding,
    generate_secret,
    group_key,
    parse_secret,
    to_base32,
)
from keyfob.otp.uri import build_otpauth, parse_otpauth

__all__ = [
    "Algorithm",
    "Credential",
    "MigrationBatch",
    "OtpType",
    "PayloadKind",
    "SecretEncoding",
    "build_otpauth",
    "classify",
    "decode_migration",
    "generate_secret",
    "group_key",
    "hotp",
    "match_counter",
    "merge_batches",
    "parse_otpauth",
    "parse_payload",
    "parse_secret",
    "pick_credential",
    "time_step",
    "to_base32",
    "totp",
]
