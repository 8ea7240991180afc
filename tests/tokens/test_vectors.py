"""Every vector of docs/token-protocol.md §10.1 and §10.2, byte for byte."""

from __future__ import annotations

from keyfob.otp import Algorithm, parse_secret, totp
from keyfob.token import protocol as p
from keyfob.token.crypto import (
    MOLTO2_DEFAULT_CUSTOMER_KEY,
    SINGLE_PROFILE_KEY,
    cbc_mac,
    ecb_encrypt,
    molto2_key,
)

H = bytes.fromhex
M2 = molto2_key(MOLTO2_DEFAULT_CUSTOMER_KEY)
T = 1700000000


# --- §10.1 published -----------------------------------------------------------------------


def test_sm4_known_answer() -> None:
    k = H("0123456789ABCDEFFEDCBA9876543210")
    assert ecb_encrypt(k, k) == H("681EDF34D206965E86B3E94F536E4246")


def test_molto2_key_derivation() -> None:
    assert H("099250FDB017F442DA429ECBBEE17F79") == M2


def test_molto2_mac_primitive() -> None:
    assert cbc_mac(M2, b"hello world test!!") == H("2CF7C205")


def test_molto2_auth_answer() -> None:
    assert p.auth_answer(H("1122334455667788"), M2) == H("550EC1328F963EB02972BB141E1CF521")


def test_molto2_seed_kr_framing() -> None:
    # KR frames 20 zero bytes as data (+80 +11x00), not as the clear sentinel.
    framed = b"\x00" * 20 + b"\x80" + b"\x00" * 11
    ct = ecb_encrypt(M2, framed)
    assert ct == H("14CC24B0CC984DA7612C0799D350E38C2C6DDD4F3D6531076ED6B99875607D58")
    apdu = p.secure(p.Ins.WRITE_SEED, 0x01, 7, ct, M2).to_bytes()
    assert apdu[:5] == H("84C5010724")
    assert apdu[-4:] == H("CC52B85C")
    # keyfob's own builder always pads the same way, so it gives the same bytes
    assert p.write_seed(b"\x00" * 20, M2, profile=7).to_bytes() == apdu


def test_molto2_sync() -> None:
    assert p.molto2_sync_tlv(0x66123456) == H("81060F0466123456")
    apdu = p.sync_molto2_time(0, 0x66123456, M2).to_bytes()
    assert apdu == H("84D401000C") + H("81060F0466123456") + H("42304790")


def test_molto2_title() -> None:
    apdu = p.write_title(3, "hello", M2).to_bytes()
    assert apdu == H("84D5000314") + H("AA6492E824DF9E2BE60917D1226AE896") + H("5AF94611")


def test_molto2_config_tlv() -> None:
    tlv = p.molto2_config_tlv(T, p.HmacAlgorithm.SHA1, 6, 30, p.DisplayTimeout.S60)
    assert tlv == H("81141F01020F046553F10086090A01010B01060D011E")


def test_single_auth_answer() -> None:
    assert p.auth_answer(H("1122334455667788"), SINGLE_PROFILE_KEY) == H(
        "8B7450F22721BC29985C2C460B65045D"
    )


def test_single_seed_20_bytes() -> None:
    apdu = p.write_seed(bytes(range(1, 21)), SINGLE_PROFILE_KEY).to_bytes()
    assert apdu == H(
        "84C50100246EEAD21474BBF3A0A2B4C18F489E543CF48725A71EE9C3A65963E88BE9405E3D5F6EA0C1"
    )


def test_single_seed_32_bytes_gets_a_full_padding_block() -> None:
    apdu = p.write_seed(bytes(range(0x10, 0x30)), SINGLE_PROFILE_KEY).to_bytes()
    assert apdu == H(
        "84C5010034B830899CFE9DE292CD26D3C7439215CE18503D57AC31735AFA60EBA20F64D6F7D219EFC997"
        "2FED9191DF027FD36A80B0880D59FA"
    )


def test_single_config() -> None:
    apdu = p.write_single_config(
        0x65432100, p.HmacAlgorithm.SHA256, 60, p.DisplayTimeout.S60, SINGLE_PROFILE_KEY
    ).to_bytes()
    assert apdu == H("84D400001781111F01020F046543210086060A01020D013C37A18BF9")


def test_rfc6238_totp_kat() -> None:
    assert totp(b"12345678901234567890", 59, digits=8) == "94287082"


# --- §10.2 computed ------------------------------------------------------------------------

CHAL = H("0102030405060708")


def test_single_profile_session_vectors() -> None:
    assert p.answer_challenge(CHAL, SINGLE_PROFILE_KEY).to_bytes() == H(
        "80CE000010C1CD2CF40D508CEDC1274FF1AE4C19F1"
    )
    assert p.write_single_config(
        T, p.HmacAlgorithm.SHA1, 30, p.DisplayTimeout.S30, SINGLE_PROFILE_KEY
    ).to_bytes() == H("84D400001781111F01010F046553F10086060A01010D011E4FFDC288")
    seed = parse_secret("JBSWY3DPEHPK3PXP", allow_short=True)
    assert seed == H("48656C6C6F21DEADBEEF")
    extended = seed.ljust(20, b"\x00")
    assert p.write_seed(extended, SINGLE_PROFILE_KEY).to_bytes() == H(
        "84C50100243162105FC9B67095C804B1D4FE05EFCF8BEA5767D1DF80AE794C819D4F7C843CD7C9E128"
    )
    assert totp(extended, T) == totp(seed, T) == "324550"
    assert totp(seed, T, algorithm=Algorithm.SHA256, period=60) == "205722"


def test_molto2_session_vectors() -> None:
    assert p.answer_challenge(CHAL, M2).to_bytes() == H(
        "80CE000010A01BA116091E6FBFDB95936C9A2E3F48"
    )
    assert p.write_seed(H("DEADBEEFDEADBEEF"), M2, profile=2).to_bytes() == H(
        "84C501021407DD72E1C1FC63C9B5513D1762838E2A9D9D863A"
    )
    assert p.write_title(2, "Google", M2).to_bytes() == H(
        "84D5000214934363A4A0B27FE53AC3FBDBDC50A2706D031C44"
    )
    assert p.write_molto2_config(
        2, T, p.HmacAlgorithm.SHA1, 6, 30, p.DisplayTimeout.S60, M2
    ).to_bytes() == H("84D401021A81141F01020F046553F10086090A01010B01060D011E1D87EC54")
    assert p.sync_molto2_time(2, T, M2).to_bytes() == H("84D401020C81060F046553F100D57026B2")


def test_molto2_set_key_to_sixteen_zero_bytes() -> None:
    # "Set key to 16x00": the plaintext carries SHA1(new key)[0:16] of the 16 zero bytes.
    assert p.set_customer_key(b"\x00" * 16, M2).to_bytes() == H(
        "84D7000024D42E83EC1BB82944A85FCE676BD0FD22E7577A25916244DCC4EC7412D665AF4B67821C80"
    )


def test_plain_command_framing() -> None:
    assert p.get_info().to_bytes() == H("80410000020211")
    assert p.get_info(molto2=True).to_bytes() == H("8041000000")
    assert p.get_challenge().to_bytes() == H("804B08000100")
    assert p.get_challenge(short=True).to_bytes() == H("804B080000")
    assert p.read_public_block(0x31).to_bytes() == H("804100310170")
    assert p.delete_seed(0x63).to_bytes() == H("80E6006300")
    assert p.factory_reset().to_bytes() == H("8056000000")
    assert p.screen_lock(True).to_bytes() == H("80D80C0200")  # M2T §5.5: molto2.py --lock
    assert p.screen_lock(False).to_bytes() == H("80D80C020101")  # --unlock
