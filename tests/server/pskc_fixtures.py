"""PSKC test files built here from RFC 6030's published parameters (docs/formats.md §6.3), with
`cryptography` directly — not with python-pskc, the library under test, and not copied from
any (L)GPL test suite."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

RFC_SECRET = b"12345678901234567890"
PRESHARED_KEY = bytes.fromhex("12345678901234567890123456789012")
FIG6_MAC_KEY = bytes.fromhex("1122334455667788990011223344556677889900")
FIG7_PASSWORD = "qwerty"
FIG7_SALT = base64.b64decode("Ej7/PEpyEpw=")
FIG7_DERIVED = bytes.fromhex("651e63cd57008476af1ff6422cd02e41")  # published in RFC 6030
FIG7_MAC_KEY = bytes.fromhex("bdaab8d648e850d25a3289364f7d7eaaf53ce581")


def aes_cbc(key: bytes, plaintext: bytes, iv: bytes | None = None) -> bytes:
    iv = iv or os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(data) + enc.finalize()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _enc(cipher: bytes, prefix: str = "") -> str:
    return (
        f'<{prefix}EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        f"<{prefix}CipherData><{prefix}CipherValue>{b64(cipher)}</{prefix}CipherValue>"
        f"</{prefix}CipherData>"
    )


def figure6(*, tamper_mac: bool = False) -> bytes:
    """Pre-shared AES-128 key; MAC key encrypted with it; HOTP, 8 digits, serial 987654321."""
    mac_key_ct = aes_cbc(PRESHARED_KEY, FIG6_MAC_KEY)
    secret_ct = aes_cbc(PRESHARED_KEY, RFC_SECRET)
    mac = hmac.new(FIG6_MAC_KEY, secret_ct, hashlib.sha1).digest()
    if tamper_mac:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
  <EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>
  <MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">
    <MACKey>{_enc(mac_key_ct, "xenc:")}</MACKey>
  </MACMethod>
  <KeyPackage>
    <DeviceInfo><Manufacturer>Manufacturer</Manufacturer><SerialNo>987654321</SerialNo></DeviceInfo>
    <CryptoModuleInfo><Id>CM_ID_001</Id></CryptoModuleInfo>
    <Key Id="12345678" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
      <Issuer>Issuer</Issuer>
      <AlgorithmParameters><ResponseFormat Length="8" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret>
          <EncryptedValue>{_enc(secret_ct, "xenc:")}</EncryptedValue>
          <ValueMAC>{b64(mac)}</ValueMAC>
        </Secret>
        <Counter><PlainValue>0</PlainValue></Counter>
      </Data>
    </Key>
  </KeyPackage>
</KeyContainer>
""".encode()


def figure7() -> bytes:
    """PBKDF2 ("qwerty", 1000 iterations) derived key; HOTP, 8 digits."""
    key = hashlib.pbkdf2_hmac("sha1", FIG7_PASSWORD.encode(), FIG7_SALT, 1000, 16)
    mac_key_ct = aes_cbc(key, FIG7_MAC_KEY)
    secret_ct = aes_cbc(key, RFC_SECRET)
    mac = hmac.new(FIG7_MAC_KEY, secret_ct, hashlib.sha1).digest()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<pskc:KeyContainer xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:xenc11="http://www.w3.org/2009/xmlenc11#"
    xmlns:pkcs5="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#"
    xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Version="1.0">
  <pskc:EncryptionKey>
    <xenc11:DerivedKey>
      <xenc11:KeyDerivationMethod
          Algorithm="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2">
        <pkcs5:PBKDF2-params>
          <Salt><Specified>{b64(FIG7_SALT)}</Specified></Salt>
          <IterationCount>1000</IterationCount>
          <KeyLength>16</KeyLength>
          <PRF/>
        </pkcs5:PBKDF2-params>
      </xenc11:KeyDerivationMethod>
      <xenc:ReferenceList><xenc:DataReference URI="#ED"/></xenc:ReferenceList>
      <xenc11:MasterKeyName>My Password 1</xenc11:MasterKeyName>
    </xenc11:DerivedKey>
  </pskc:EncryptionKey>
  <pskc:MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">
    <pskc:MACKey>{_enc(mac_key_ct, "xenc:")}</pskc:MACKey>
  </pskc:MACMethod>
  <pskc:KeyPackage>
    <pskc:DeviceInfo>
      <pskc:Manufacturer>TokenVendorAcme</pskc:Manufacturer><pskc:SerialNo>987654321</pskc:SerialNo>
    </pskc:DeviceInfo>
    <pskc:CryptoModuleInfo><pskc:Id>CM_ID_001</pskc:Id></pskc:CryptoModuleInfo>
    <pskc:Key Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp" Id="123456">
      <pskc:Issuer>Example-Issuer</pskc:Issuer>
      <pskc:AlgorithmParameters><pskc:ResponseFormat Length="8" Encoding="DECIMAL"/>
      </pskc:AlgorithmParameters>
      <pskc:Data>
        <pskc:Secret>
          <pskc:EncryptedValue Id="ED">{_enc(secret_ct, "xenc:")}</pskc:EncryptedValue>
          <pskc:ValueMAC>{b64(mac)}</pskc:ValueMAC>
        </pskc:Secret>
        <pskc:Counter><pskc:PlainValue>0</pskc:PlainValue></pskc:Counter>
      </pskc:Data>
    </pskc:Key>
  </pskc:KeyPackage>
</pskc:KeyContainer>
""".encode()


FEITIAN_TOTP_SECRET = base64.b64decode("zSK3gP/9LVNpaAfs039ATa45MnA=")


def _feitian_package(serial: str, model: str, kind: str, secret: bytes, data: str) -> str:
    """One Feitian KeyPackage: a 6-digit ``kind`` (totp or hotp) key and its ``data`` elements."""
    return f"""  <pskc:KeyPackage>
    <pskc:DeviceInfo><pskc:Manufacturer>Feitian Technology Co.,Ltd</pskc:Manufacturer>
      <pskc:SerialNo>{serial}</pskc:SerialNo><pskc:Model>{model}</pskc:Model></pskc:DeviceInfo>
    <pskc:Key Id="{serial}" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:{kind}">
      <pskc:AlgorithmParameters><pskc:ResponseFormat Length="6" Encoding="DECIMAL"/>
      </pskc:AlgorithmParameters>
      <pskc:Data>
        <pskc:Secret><pskc:PlainValue>{b64(secret)}</pskc:PlainValue></pskc:Secret>
{data}
      </pskc:Data>{"" if kind == "hotp" else _FEITIAN_POLICY}
    </pskc:Key>
  </pskc:KeyPackage>
"""


_FEITIAN_POLICY = """
      <pskc:Policy><pskc:StartDate>2012-09-19T00:00:00Z</pskc:StartDate>
        <pskc:ExpiryDate>2032-09-01T00:00:00Z</pskc:ExpiryDate></pskc:Policy>"""


def feitian_style() -> bytes:
    """A plain (unencrypted) vendor file in the Feitian c100/c200 shape: a 60-second TOTP key
    using the ``pskc:totp`` algorithm URI, and an HOTP key, each in its own KeyPackage."""
    totp = _feitian_package(
        "2600215704919",
        "c200",
        "totp",
        FEITIAN_TOTP_SECRET,
        "        <pskc:Time><pskc:PlainValue>0</pskc:PlainValue></pskc:Time>\n"
        "        <pskc:TimeInterval><pskc:PlainValue>60</pskc:PlainValue></pskc:TimeInterval>\n"
        "        <pskc:TimeDrift><pskc:PlainValue>1</pskc:PlainValue></pskc:TimeDrift>",
    )
    hotp = _feitian_package(
        "1000117803294",
        "c100",
        "hotp",
        RFC_SECRET,
        "        <pskc:Counter><pskc:PlainValue>0</pskc:PlainValue></pskc:Counter>",
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<pskc:KeyContainer xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0">\n'
        f"{totp}{hotp}</pskc:KeyContainer>\n"
    ).encode()


def plain_keys(count: int) -> bytes:
    """A plain file of ``count`` TOTP keys, one per KeyPackage, as a bulk order comes: serials
    P00000000…, distinct secrets (the key's number in 20 bytes), 6 digits, 30 s."""
    packages = "".join(
        f"<KeyPackage><DeviceInfo><Manufacturer>Bulk</Manufacturer><SerialNo>P{i:08d}"
        f'</SerialNo></DeviceInfo><Key Id="P{i:08d}" '
        'Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><AlgorithmParameters>'
        '<ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters><Data><Secret>'
        f"<PlainValue>{b64(i.to_bytes(20, 'big'))}</PlainValue></Secret><TimeInterval>"
        "<PlainValue>30</PlainValue></TimeInterval></Data></Key></KeyPackage>\n"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<KeyContainer Version="1.0" '
        f'xmlns="urn:ietf:params:xml:ns:keyprov:pskc">\n{packages}</KeyContainer>\n'
    ).encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage><Key Id="&lol9;" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"/></KeyPackage>
</KeyContainer>
"""
