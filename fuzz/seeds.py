"""Starting inputs for each fuzz target: real, valid examples built with keyfob's own writers
(and one hand-written sample per vendor quirk), so a fuzzer starts inside each grammar instead
of spending its time discovering ``otpauth://``. Used by ``fuzz/run.py`` (atheris corpus) and by
the property tests (``tests/property/``) as explicit examples."""

from __future__ import annotations

import hashlib
import hmac
import struct

from keyfob.formats.csvseeds import write_entra_csv
from keyfob.formats.gauth import encode_migration
from keyfob.formats.pskc import write_plain_pskc
from keyfob.formats.seeds import SeedRecord
from keyfob.otp import Algorithm, OtpType
from keyfob.token import protocol as p
from keyfob.token.crypto import SINGLE_PROFILE_KEY

SECRET = b"12345678901234567890"
RECORDS = [
    SeedRecord(serial="GALT10000001", secret=SECRET, upn="alice@example.com"),
    SeedRecord(
        serial="GALT10000002",
        secret=SECRET[::-1],
        type=OtpType.HOTP,
        algorithm=Algorithm.SHA256,
        digits=8,
        counter=7,
    ),
]

URIS = [
    b"otpauth://totp/ACME%20Co:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    b"&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60",
    b"otpauth://hotp/bob?secret=JBSWY3DPEHPK3PXP&counter=5",
    b"OTPAUTH://TOTP/x?SECRET=jbsw y3dp ehpk 3pxp&image=https%3A%2F%2Fx&digits=6",
]


def _migration() -> list[bytes]:
    return [u.encode() for u in encode_migration(RECORDS)]


def _radius() -> bytes:
    """An Access-Request with User-Name and a Message-Authenticator under the fuzz secret."""
    attrs = bytes([1, 7]) + b"alice" + bytes([80, 18]) + bytes(16)
    packet = bytes([1, 42]) + struct.pack("!H", 20 + len(attrs)) + bytes(16) + attrs
    mac = hmac.new(b"fuzz-shared-secret", packet, hashlib.md5).digest()
    return packet[:-16] + mac


def _apdus() -> list[bytes]:
    config = p.WireConfig(clock=1_800_000_000)
    return [
        p.get_info().to_bytes(),
        p.get_challenge().to_bytes(),
        p.write_seed(SECRET, SINGLE_PROFILE_KEY).to_bytes(),
        p.read_public_block(3).to_bytes(),
        p.build_info("8659622000123", 1_800_000_000) + b"\x90\x00",
        config.encode(),
    ]


SEEDS: dict[str, list[bytes]] = {
    "otpauth": URIS,
    "migration_uri": _migration(),
    "migration_wire": [],
    "payload": [*URIS, *_migration(), b"phonefactor://activate_account?code=1&url=x"],
    "secret": [b"JBSWY3DPEHPK3PXP", b"hex:3132333435363738393031323334353637383930", b"0x00ff"],
    "seed_any": [write_plain_pskc(RECORDS), write_entra_csv(RECORDS[:1]).encode(), *URIS],
    "pskc": [write_plain_pskc(RECORDS)],
    "entra_csv": [write_entra_csv(RECORDS[:1]).encode()],
    "oath_csv": [
        b"GALT10000001,3132333435363738393031323334353637383930,totp,6,30\n"
        b"GALT10000002,3132333435363738393031323334353637383930,12\n"
    ],
    "otpauth_list": [b"\n".join(URIS) + b"\n# comment\n"],
    "apdu_client": _apdus(),
    "emulator_raw": _apdus(),
    "emulator_secure": [bytes([0xD0, 0, 0]) + SECRET],
    "radius": [_radius()],
    "radius_signed": [bytes([1, 7]) + b"alice" + bytes([2, 18]) + bytes(16)],
}
