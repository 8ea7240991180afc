"""Writers for the seed-file formats that keyfob so far only read: OATH/vendor CSV and lists of
``otpauth://`` URIs (docs/formats.md §7.3 and §8), and the mapping between a seed-file row and
an app credential that the URI list and the Google Authenticator export share.

Each writer writes exactly what its reader reads back unchanged, and refuses (``KeyfobError``
naming the serial, never the secret) a row the format has no room for, so that ``keyfob
convert`` can report or skip it instead of writing a file that silently lost something.
"""

from __future__ import annotations

import csv
import dataclasses
import io

from keyfob.errors import KeyfobError
from keyfob.formats.seeds import SeedRecord
from keyfob.otp import Algorithm, Credential, OtpType, build_otpauth

_COMMENT = "#"


def record_to_credential(rec: SeedRecord) -> Credential:
    """The app credential of a row: its label (``Issuer:account``) if it has one, else the
    serial as the account name, so that reading it back gives the same serial."""
    issuer, account = "", rec.serial
    if rec.label:
        issuer, _, account = rec.label.partition(":")
        if not account:  # no colon: the label is the account
            issuer, account = "", issuer
    return Credential(
        secret=rec.secret,
        type=rec.type,
        issuer=issuer.strip(),
        account=account.strip(),
        algorithm=rec.algorithm,
        digits=rec.digits,
        period=rec.period,
        counter=rec.counter if rec.type is OtpType.HOTP else 0,
    )


def credential_to_record(cred: Credential, where: str) -> SeedRecord:
    """A row from an app credential, named as a URI list names it (docs/formats.md §8): the
    ``serial`` parameter when there is one, else the label."""
    serial = dict(cred.extra).get("serial") or cred.label
    if not serial:
        raise KeyfobError("the account has no name to use as its serial")
    return SeedRecord(
        serial=serial,
        secret=cred.secret,
        type=cred.type,
        algorithm=cred.algorithm,
        digits=cred.digits,
        period=cred.period,
        counter=cred.counter if cred.type is OtpType.HOTP else 0,
        label=cred.label or None,
        manufacturer=cred.issuer or None,
        where=where,
    ).checked()


def otpauth_line(rec: SeedRecord) -> str:
    """One URI; a ``serial`` parameter only when the label alone would read back as another
    serial."""
    cred = record_to_credential(rec)
    if cred.label != rec.serial:
        cred = dataclasses.replace(cred, extra=(("serial", rec.serial),))
    return build_otpauth(cred)


def write_otpauth_list(records: list[SeedRecord]) -> str:
    """One ``otpauth://`` URI per line; every row fits (the URI holds every OATH parameter)."""
    return "".join(otpauth_line(rec) + "\n" for rec in records)


def check_oath_csv(rec: SeedRecord) -> None:
    """Why a row cannot go into an OATH CSV (docs/formats.md §7.3), or nothing."""
    if rec.algorithm is not Algorithm.SHA1:
        raise KeyfobError(f"{rec.algorithm.value}: an OATH CSV has no algorithm column (SHA1 only)")
    if rec.type is OtpType.HOTP and rec.counter and rec.digits != 6:
        raise KeyfobError(
            f"HOTP counter {rec.counter} with {rec.digits} digits: an OATH CSV holds a counter "
            "only in the 6-digit PingID layout"
        )
    if rec.serial.startswith(_COMMENT):
        raise KeyfobError("a serial starting with '#' would be read back as a comment")


def write_oath_csv(records: list[SeedRecord]) -> str:
    """``serial,hexkey,totp,digits,period`` / ``serial,hexkey,hotp,digits`` and, for a HOTP row
    with a counter, PingID's ``serial,hexkey,counter``; a row that does not fit raises."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for rec in records:
        try:
            check_oath_csv(rec)
        except KeyfobError as exc:
            raise KeyfobError(f"token {rec.serial}: {exc.message}") from None
        key = rec.secret.hex()
        if rec.type is OtpType.TOTP:
            writer.writerow([rec.serial, key, "totp", rec.digits, rec.period])
        elif rec.counter:
            writer.writerow([rec.serial, key, rec.counter])
        else:
            writer.writerow([rec.serial, key, "hotp", rec.digits])
    return out.getvalue()
