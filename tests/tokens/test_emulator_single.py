"""The single-profile emulator, row by row of docs/token-protocol.md §6.1."""

from __future__ import annotations

import subprocess

import pytest

from keyfob.otp import Algorithm, hotp, to_base32
from keyfob.token import protocol as p
from keyfob.token.crypto import SINGLE_PROFILE_KEY as K
from keyfob.token.crypto import ecb_encrypt
from keyfob.token.emulator import SingleProfileToken, create
from keyfob.token.models import by_name
from testkit import T0, Clock

H = bytes.fromhex


def token(model: str = "OTPC-P2", clock: Clock | None = None) -> SingleProfileToken:
    card = create(by_name(model), serial=None, host_clock=clock or Clock())
    assert isinstance(card, SingleProfileToken)
    return card


def sw(resp: bytes) -> int:
    return int.from_bytes(resp[-2:], "big")


def auth(card: SingleProfileToken) -> None:
    chal = card.transmit(p.get_challenge().to_bytes())[:-2]
    assert sw(card.transmit(p.answer_challenge(chal, K).to_bytes())) == 0x9000


def test_info_any_p1_p2_and_data() -> None:
    card = token()
    for apdu in (p.get_info().to_bytes(), H("8041000000"), H("80410102")):
        resp = card.transmit(apdu)
        assert sw(resp) == 0x9000
        info = p.parse_info(resp[:-2])
        assert info.serial == card.serial and info.clock == T0
        assert resp[:3] == b"\x00\x00\x00"


def test_challenge_both_framings_and_deauth() -> None:
    card = token()
    auth(card)
    assert card.authenticated
    for apdu in (H("804B080000"), H("804B08000100")):
        resp = card.transmit(apdu)
        assert sw(resp) == 0x9000 and len(resp) == 10
        assert not card.authenticated


def test_answer_rows() -> None:
    card = token()
    # no pending challenge
    assert sw(card.transmit(p.answer_challenge(b"\x00" * 8, K).to_bytes())) == 0x6A80
    chal = card.transmit(p.get_challenge().to_bytes())[:-2]
    # Lc != 16
    assert sw(card.transmit(H("80CE000008") + b"\x00" * 8)) == 0x6A80
    # wrong answer consumes the challenge, no retry counter
    assert sw(card.transmit(p.answer_challenge(chal, b"\x01" * 16).to_bytes())) == 0x6983
    assert sw(card.transmit(p.answer_challenge(chal, K).to_bytes())) == 0x6A80
    # key locked
    card.key_locked = True
    chal = card.transmit(p.get_challenge().to_bytes())[:-2]
    assert sw(card.transmit(p.answer_challenge(chal, K).to_bytes())) == 0x6983
    card.key_locked = False
    auth(card)


def test_unknown_plain_ins_and_cla() -> None:
    card = token()
    assert sw(card.transmit(H("80B0000000"))) == 0x6D00
    assert sw(card.transmit(H("00A4040000"))) == 0x6E00


def test_length_errors() -> None:
    card = token()
    assert sw(card.transmit(H("8041"))) == 0x6700
    assert sw(card.transmit(H("8041000005") + b"\x01")) == 0x6700  # fewer than 5+Lc
    assert sw(card.transmit(H("84C50100") + b"\x03" + b"abc")) == 0x6700  # Lc < 4


def test_mac_checked_before_auth_state() -> None:
    card = token()
    apdu = bytearray(p.write_seed(b"A" * 20, K).to_bytes())
    apdu[-1] ^= 1
    assert sw(card.transmit(bytes(apdu))) == 0x6983
    auth(card)
    assert sw(card.transmit(bytes(apdu))) == 0x6983


def test_secure_commands_need_authentication() -> None:
    card = token()
    assert sw(card.transmit(p.write_seed(b"A" * 20, K).to_bytes())) == 0x6983
    assert (
        sw(
            card.transmit(
                p.write_single_config(
                    T0, p.HmacAlgorithm.SHA1, 30, p.DisplayTimeout.S30, K
                ).to_bytes()
            )
        )
        == 0x6983
    )
    assert card.seed is None


@pytest.mark.parametrize(
    ("plain", "why"),
    [
        (b"A" * 20 + b"\x00" * 12, "no 80 marker"),
        (b"A" * 16, "aligned seed without the extra 80 block"),
        (b"A" * 64 + b"\x80" + b"\x00" * 15, "body longer than 64"),
        (b"\x80" + b"\x00" * 15, "empty seed"),
    ],
    ids=["no 80 marker", "aligned seed, no 80 block", "over 64 bytes", "empty seed"],
)
def test_bad_seed_bodies(plain: bytes, why: str) -> None:
    card = token()
    auth(card)
    body = ecb_encrypt(K, plain)
    assert sw(card.transmit(p.secure(p.Ins.WRITE_SEED, 1, 0, body, K).to_bytes())) == 0x6A80, why


def test_seed_written_and_old_one_wiped() -> None:
    card = token()
    auth(card)
    for seed in (b"A" * 63, b"12345678901234567890"):
        assert sw(card.transmit(p.write_seed(seed, K).to_bytes())) == 0x9000
        assert card.seed == seed
    assert card.press() == hotp(b"12345678901234567890", T0 // 30)


def test_config_must_be_the_exact_layout() -> None:
    card = token()
    auth(card)
    good = p.single_config_tlv(T0, p.HmacAlgorithm.SHA1, 30)
    bad_variants = [
        good[:-1],
        good + b"\x00",
        good.replace(b"\x0d\x01\x1e", b"\x0d\x01\x2d"),
        good[:4] + b"\x07" + good[5:],
        good[:15] + b"\x03" + good[16:],
    ]
    for body in bad_variants:
        assert sw(card.transmit(p.secure(p.Ins.WRITE_CONFIG, 0, 0, body, K).to_bytes())) == 0x6A80


def test_restricted_model_erases_seed_on_config_write() -> None:
    card = token("OTPC-P2")
    auth(card)
    card.transmit(p.write_seed(b"B" * 20, K).to_bytes())
    assert card.seed == b"B" * 20
    resp = card.transmit(
        p.write_single_config(
            T0 + 100, p.HmacAlgorithm.SHA1, 30, p.DisplayTimeout.S30, K
        ).to_bytes()
    )
    assert sw(resp) == 0x9000 and card.seed is None
    assert card.press() == "no seed"


def test_unrestricted_model_keeps_seed_and_sets_clock() -> None:
    clock = Clock()
    card = token("C302", clock)
    auth(card)
    card.transmit(p.write_seed(b"B" * 20, K).to_bytes())
    card.transmit(
        p.write_single_config(
            T0 + 300, p.HmacAlgorithm.SHA256, 60, p.DisplayTimeout.S120, K
        ).to_bytes()
    )
    assert card.seed == b"B" * 20
    assert int(card.device_time()) == T0 + 300
    assert card.press() == hotp(b"B" * 20, (T0 + 300) // 60, 6, Algorithm.SHA256)


def test_state_file_survives_restart_and_hides_nothing_it_should_show(tmp_path) -> None:
    clock = Clock()
    state = tmp_path / "token.json"
    card = create(by_name("C302"), serial="8659632000042", state_file=state, host_clock=clock)
    auth(card)
    card.transmit(p.write_seed(b"C" * 20, K).to_bytes())
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    again = create(by_name("OTPC-P2"), state_file=state, host_clock=clock)
    assert (again.serial, again.model.name, again.seed) == ("8659632000042", "C302-i", b"C" * 20)
    assert not again.authenticated  # volatile
    assert "seed" not in again.status() and b"C".hex() * 20 not in str(again.status())


@pytest.mark.parametrize(
    ("alg", "period", "flag"),
    [(Algorithm.SHA1, 30, "--totp"), (Algorithm.SHA256, 60, "--totp=SHA256")],
)
def test_display_matches_oathtool(oathtool, alg: Algorithm, period: int, flag: str) -> None:
    clock = Clock(T0 + 1234)
    card = token("C302", clock)
    auth(card)
    hmac_alg = p.HmacAlgorithm.SHA1 if alg is Algorithm.SHA1 else p.HmacAlgorithm.SHA256
    seed = bytes(range(1, 21))
    card.transmit(
        p.write_single_config(int(clock.now), hmac_alg, period, p.DisplayTimeout.S30, K).to_bytes()
    )
    card.transmit(p.write_seed(seed, K).to_bytes())
    clock.now += 95
    want = subprocess.run(
        [oathtool, "-b", flag, "-s", f"{period}s", "-N", f"@{int(clock.now)}", to_base32(seed)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert card.press() == want.strip()


def test_fifty_ppm_over_a_month_drifts_four_steps() -> None:
    clock = Clock(T0)
    card = create(by_name("C302"), host_clock=clock, drift_ppm=50)
    auth(card)
    card.transmit(
        p.write_single_config(T0, p.HmacAlgorithm.SHA1, 30, p.DisplayTimeout.S30, K).to_bytes()
    )
    card.transmit(p.write_seed(b"D" * 20, K).to_bytes())
    month = 30 * 24 * 3600
    clock.now = T0 + month
    # 50 ppm of 2 592 000 s is 129.6 s: the token runs 4 whole steps (and 9.6 s) ahead
    assert card.device_time() - clock.now == pytest.approx(129.6)
    true_step = int(clock.now // 30)
    shown = card.press()
    assert shown == hotp(b"D" * 20, int((clock.now + 129.6) // 30))
    assert int((clock.now + 129.6) // 30) - true_step in (4, 5)
    assert shown != hotp(b"D" * 20, true_step)


def test_clock_offset_at_creation() -> None:
    card = create(by_name("OTPC-P2"), host_clock=Clock(), clock_offset=-90)
    assert p.parse_info(card.transmit(p.get_info().to_bytes())[:-2]).clock == T0 - 90


def test_unknown_secure_ins_after_a_good_mac() -> None:
    card = token()
    auth(card)
    apdu = p.secure(0xB0, 0, 0, b"\x01\x02", K).to_bytes()
    assert sw(card.transmit(apdu)) == 0x6D00
