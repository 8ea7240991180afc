"""SM4 (GB/T 32907) as the tokens use it: ECB for payloads and the auth answer, CBC-MAC with a
zero IV for command MACs (docs/token-protocol.md §3). Backed by ``cryptography``'s OpenSSL SM4."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16

SINGLE_PROFILE_KEY = bytes.fromhex("8AD206883CA369482AB27182B6E83224")
"""The fixed key of every single-profile token; Token2 publishes it (§3.2)."""

MOLTO2_DEFAULT_CUSTOMER_KEY = b"TOKEN2MOLTO1-KEY"


def molto2_key(customer_key: bytes) -> bytes:
    """A Molto2 SM4 key is the first 16 bytes of SHA-1 of the customer key (any length)."""
    return hashlib.sha1(customer_key).digest()[:16]


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    if len(data) % BLOCK:
        raise ValueError("SM4-ECB input must be whole 16-byte blocks")
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    if len(data) % BLOCK:
        raise ValueError("SM4-ECB input must be whole 16-byte blocks")
    dec = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    return dec.update(data) + dec.finalize()


def mac_pad(data: bytes) -> bytes:
    """MAC padding: ``80`` then zeros to a block boundary, but nothing if already aligned
    (every source does this, though ISO 9797-1 method 2 would always pad; §3.4)."""
    if len(data) % BLOCK == 0:
        return data
    data += b"\x80"
    return data + b"\x00" * (-len(data) % BLOCK)


def cbc_mac(key: bytes, data: bytes) -> bytes:
    """First 4 bytes of the last SM4-CBC block over the padded input, zero IV."""
    enc = Cipher(algorithms.SM4(key), modes.CBC(b"\x00" * BLOCK)).encryptor()
    out = enc.update(mac_pad(data)) + enc.finalize()
    return out[-BLOCK:][:4]


def payload_pad(data: bytes) -> bytes:
    """Seed and title padding: ALWAYS ``80`` then zeros, so block-aligned inputs gain a block —
    Token2's current rule, which the devices require (§4.4, §11)."""
    data += b"\x80"
    return data + b"\x00" * (-len(data) % BLOCK)


def payload_unpad(data: bytes) -> bytes | None:
    """The inverse, as the device checks it: the last ``80`` followed only by zeros."""
    body = data.rstrip(b"\x00")
    if not body or body[-1] != 0x80:
        return None
    return body[:-1]
