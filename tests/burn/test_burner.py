"""The burner's logic against in-memory emulated tokens: refusals before any APDU, retries, the
erased-seed message, Molto2 profiles, the typed-code check."""

from __future__ import annotations

import pytest

from keyfob.burn.burner import BurnOptions, ask_and_check, burn
from keyfob.burn.check import check_code
from keyfob.burn.errors import BurnRefused, SeedErased, TokenKeptLeaving
from keyfob.burn.source import check_fits, credential_from
from keyfob.errors import MicrosoftPushQrError
from keyfob.formats import qr
from keyfob.otp import Algorithm, Credential, hotp
from keyfob.token.emulator import create
from keyfob.token.errors import UnknownModel
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import Family, by_name
from keyfob.token.protocol import Ins
from testkit import T0, Clock, ScriptedUi, wrong_code

URI = "otpauth://totp/ACME:alice@acme.example?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ACME"
SHORT = "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"


def token(model: str = "OTPC-P2", **kw):
    """An emulated token of ``model`` on its own clock (at T0), linked in memory."""
    clock = Clock()
    card = create(by_name(model), host_clock=clock, **kw)
    return clock, card, MemoryConnection(card)


def test_burn_from_uri_sets_clock_and_seed() -> None:
    clock, card, conn = token(clock_offset=-250)
    cred = credential_from(URI)
    ui = ScriptedUi()
    result = burn(conn, cred, BurnOptions(), ui, clock)
    assert (result.model, result.clock_offset_before) == ("OTPC-P2-i", -250)
    assert card.device_time() == T0
    assert card.press() == cred.code(at=T0)
    assert any("restricted sync" in s for s in ui.said)


def test_burn_from_a_qr_image(tmp_path) -> None:
    path = tmp_path / "shot.png"
    path.write_bytes(qr.encode_png(URI))
    assert credential_from(str(path)).secret == credential_from(URI).secret


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        pytest.param(f"{SHORT}&algorithm=SHA512", {}, "SHA512", id="sha512"),
        pytest.param(f"{SHORT}&digits=8", {}, "8-digit codes", id="8 digits"),
        pytest.param(f"{SHORT}&period=45", {}, "45-second period", id="45 s period"),
        pytest.param(SHORT.replace("totp", "hotp") + "&counter=1", {}, "HOTP", id="hotp"),
        pytest.param(None, {"seed": "AA" * 64}, "at most 63", id="64-byte seed"),
    ],
)
def test_refusals_happen_before_any_apdu(source, kwargs, message) -> None:
    _, card, conn = token()
    with pytest.raises(BurnRefused, match=message):
        burn(conn, credential_from(source, **kwargs), BurnOptions(), ScriptedUi())
    assert card.apdu_count == 0


def test_molto2_takes_eight_digits() -> None:
    cred = credential_from(f"{SHORT}&digits=8")
    with pytest.raises(BurnRefused, match="8-digit codes"):
        check_fits(cred, Family.SINGLE)
    check_fits(cred, Family.MOLTO2)  # what a single-profile token refuses, a Molto2 takes
    clock, card, conn = token("Molto2")
    burned = burn(conn, cred, BurnOptions(family=Family.MOLTO2), ScriptedUi(), clock)
    assert card.press(burned.profile) == hotp(cred.secret, T0 // 30, 8)


def test_short_seed_needs_opt_in_and_phonefactor_is_explained() -> None:
    with pytest.raises(BurnRefused, match="--allow-short"):
        credential_from(None, seed="JBSWY3DPEHPK3PXP"[:8])
    assert credential_from(None, seed="JBSWY3DP", allow_short=True).secret == b"Hello"
    with pytest.raises(MicrosoftPushQrError, match="different authenticator app"):
        credential_from("phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fx")


def test_migration_with_several_accounts_asks_which() -> None:
    two = (
        "otpauth-migration://offline?data=CigKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBpIAEo"
        "ATACCjUKEPqlBekzoNEukL7qlsjBCDYSDnBpQHJhc3BiZXJyeXBpGgtyYXNwYmVycnlwaSABKAEwAhABGAEgAC"
        "iQ7OOa%2Bf%2F%2F%2F%2F8B"
    )
    with pytest.raises(BurnRefused, match="--account"):
        credential_from(two)
    assert credential_from(two, account="raspberrypi:").issuer == "raspberrypi"


def test_link_lost_during_seed_write_is_retried() -> None:
    clock, card, conn = token("C302")
    card.faults.drop_on = 5  # info, challenge, answer, config, SEED
    ui = ScriptedUi()
    burn(conn, credential_from(URI), BurnOptions(), ui, clock)
    assert card.seed == credential_from(URI).secret
    assert any("hold the token still" in s for s in ui.said)


def test_restricted_token_left_without_seed_says_so() -> None:
    clock, card, conn = token("OTPC-P2")
    card.faults.drop_ins = 0xC5  # every seed write is lost
    with pytest.raises(SeedErased) as err:
        burn(conn, credential_from(URI), BurnOptions(), ScriptedUi(), clock)
    assert (err.value.model, err.value.attempts, err.value.serial) == ("OTPC-P2-i", 4, card.serial)
    assert "seed is now ERASED" in str(err.value)
    assert "burning again fixes it" in str(err.value)
    assert card.seed is None
    card.faults.drop_ins = None
    burn(conn, credential_from(URI), BurnOptions(), ScriptedUi(), clock)
    assert card.seed == credential_from(URI).secret


class LeavesForGood(MemoryConnection):
    """After the first lost link the token never answers again (every get-info is lost)."""

    def reconnect(self) -> None:
        self.card.faults.drop_ins = Ins.GET_INFO


def test_an_erased_seed_is_reported_even_when_later_attempts_fail_earlier() -> None:
    clock, card, _ = token("OTPC-P2")
    card.faults.drop_on = 5  # the first attempt erases the seed with its clock write, then drops
    with pytest.raises(SeedErased) as err:
        burn(LeavesForGood(card), credential_from(URI), BurnOptions(), ScriptedUi(), clock)
    assert (err.value.attempts, card.seed) == (4, None)


def test_a_token_that_keeps_leaving_before_any_write_changed_nothing() -> None:
    clock, card, conn = token("OTPC-P2")
    seed = card.seed
    card.faults.drop_ins = Ins.GET_CHALLENGE
    with pytest.raises(TokenKeptLeaving) as err:
        burn(conn, credential_from(URI), BurnOptions(retries=1), ScriptedUi(), clock)
    assert (err.value.attempts, err.value.serial) == (2, card.serial)
    assert "nothing was changed" in str(err.value) and card.seed == seed


def test_unknown_model_is_refused() -> None:
    clock, card, conn = token(serial="1234567000")
    with pytest.raises(UnknownModel):
        burn(conn, credential_from(URI), BurnOptions(), ScriptedUi(), clock)
    assert card.command_counts().get("D4") is None


def test_molto2_profile_choice_and_overwrite() -> None:
    clock, card, conn = token("Molto2")
    cred = credential_from("otpauth://totp/GitHub:me?secret=JBSWY3DPEHPK3PXPJBSWY3DP&digits=8")
    first = burn(conn, cred, BurnOptions(family=Family.MOLTO2), ScriptedUi(), clock)
    second = burn(conn, cred, BurnOptions(family=Family.MOLTO2), ScriptedUi(), clock)
    assert (first.profile, second.profile) == (0, 1)
    assert card.profiles[0].title == "GitHub"
    assert card.press(1) == hotp(cred.secret, T0 // 30, 8)
    with pytest.raises(BurnRefused, match="--overwrite"):
        burn(conn, cred, BurnOptions(family=Family.MOLTO2, profile=1), ScriptedUi(), clock)
    burn(
        conn,
        cred,
        BurnOptions(family=Family.MOLTO2, profile=1, overwrite=True, title="Work"),
        ScriptedUi(),
        clock,
    )
    assert card.profiles[1].title == "Work"


def test_check_code_previous_current_next_and_offset() -> None:
    cred = Credential(secret=b"12345678901234567890")
    step = T0 // 30
    assert check_code(cred, hotp(cred.secret, step), T0).step_offset == 0
    assert check_code(cred, hotp(cred.secret, step - 1), T0).step_offset == -1
    nxt = check_code(cred, hotp(cred.secret, step + 1), T0)
    assert nxt.step_offset == 1 and "+30 s" in nxt.describe(30)
    assert not check_code(cred, hotp(cred.secret, step + 3), T0).ok
    ui = ScriptedUi([wrong_code(cred.secret, step=step), hotp(cred.secret, step)])
    result, typed = ask_and_check(cred, ui, Clock())
    assert result.ok and typed == hotp(cred.secret, step)
    assert any("did not match" in s for s in ui.said)


def test_sha256_sixty_seconds() -> None:
    clock, card, conn = token("C302")
    cred = credential_from(
        None, seed="3132333435363738393031323334353637383930", algorithm="sha256", period=60
    )
    burn(conn, cred, BurnOptions(), ScriptedUi(), clock)
    assert card.press() == hotp(cred.secret, T0 // 60, 6, Algorithm.SHA256)
