"""The one per-token flow (``keyfob.burn.flow``) that the single burn and the batch share: an
emulated token in process (MemoryConnection) and a real keyfob server in a thread, answering
real HTTP. Whatever fails after the server began an enrolment — a wrong code, Ctrl-C, a lost
token, another token, a refused code — leaves no pending method behind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from keyfob.burn.batch import BatchOptions, Row, run_batch
from keyfob.burn.burner import BurnOptions
from keyfob.burn.enroll import EnrollClient
from keyfob.burn.errors import (
    BurnRefused,
    CodeMismatch,
    EnrollError,
    NoCodeTyped,
    SeedErased,
    TokenSwapped,
)
from keyfob.burn.flow import Enrol, TokenJob, burn_token
from keyfob.burn.journal import Journal
from keyfob.burn.ui import SilentUi
from keyfob.otp import Algorithm, Credential
from keyfob.server import accounts
from keyfob.server.store.schema import audit
from keyfob.token.emulator import create
from keyfob.token.memory import MemoryConnection
from keyfob.token.models import Family, by_name
from testkit import T0, Clock, ScriptedUi, ThreadedServer, wrong_code

NOW = T0 + 3  # 3 s into a 30 s step: the code shown stays the current one


class LiveServer(ThreadedServer):
    """``keyfob serve`` in a thread, on the test's clock, with an admin key for the burner."""

    def __init__(self, tmp: Path, clock: Clock) -> None:
        super().__init__(tmp, clock, "burn")
        _, self.admin_key = accounts.create_api_key(self.ctx, "burn-test", "admin")
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}
        )

    def add_user(self, name: str) -> None:
        assert self.http.post("/api/v1/users", json={"username": name}).status_code == 201

    def methods(self, name: str) -> list[dict]:
        return self.http.get(f"/api/v1/users/{name}/tokens").json()["items"]

    def actions(self, name: str) -> list[str]:
        """The audit trail of one user's methods: begin, verify, delete…"""
        with self.ctx.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit.c.action).where(audit.c.target_user == name).order_by(audit.c.id)
            ).all()
        return [r.action for r in rows if r.action.startswith("token.")]

    def client(self) -> EnrollClient:
        return EnrollClient(self.url, api_key=self.admin_key)

    def stop(self) -> None:
        self.http.close()
        super().stop()


@pytest.fixture(autouse=True)
def _three_seconds_into_a_step(clock: Clock) -> None:
    clock.set(NOW)


@pytest.fixture
def server(tmp_path: Path, clock: Clock) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, clock)
    live.add_user("ann@example.com")
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[EnrollClient]:
    enroll = server.client()
    yield enroll
    enroll.close()


class Person(ScriptedUi):
    """The person at the reader: presses the button and types what the display shows — or
    types ``typed`` first, or hits Ctrl-C at the prompt."""

    def __init__(self, card=None, typed: list | None = None, interrupt: bool = False) -> None:
        super().__init__(typed, card=card, interrupt=interrupt)


def token(clock: Clock, model: str = "OTPC-P2", **kw):
    card = create(by_name(model), host_clock=clock, **kw)
    return card, (lambda: MemoryConnection(card))


ANN = "ann@example.com"


def test_enrol_burn_check_verify(server, client, clock) -> None:
    card, open_token = token(clock, clock_offset=-40)
    person = Person(card)
    outcome = burn_token(TokenJob(Enrol(client, ANN)), open_token, person, clock)
    assert outcome.check is not None and outcome.check.step_offset == 0
    assert outcome.burned.clock_offset_before == -40 and card.device_time() == int(NOW)
    assert [(m["state"], m["reported_serial"]) for m in server.methods(ANN)] == [
        ("active", card.serial)
    ]
    assert server.actions(ANN) == ["token.enrol.begin", "token.enrol.verify"]
    assert any(f"enrolled for {ANN}" in s for s in person.said)
    assert "secret" not in repr(outcome)


def test_a_wrong_code_cancels_the_enrolment(server, client, clock) -> None:
    card, open_token = token(clock)
    # two codes, each computed (once the seed is burned) to be none of the token's near now
    wrong = [lambda n=n: wrong_code(card.seed, at=clock.now, pick=n) for n in (0, 999999)]
    person = Person(card, typed=wrong)
    with pytest.raises(CodeMismatch) as err:
        burn_token(TokenJob(Enrol(client, ANN)), open_token, person, clock)
    assert (err.value.serial, err.value.tries) == (card.serial, 2)
    assert server.methods(ANN) == []
    assert server.actions(ANN) == ["token.enrol.begin", "token.delete"]
    assert any("cancelled the pending enrolment" in s for s in person.said)


def test_ctrl_c_at_the_code_prompt_cancels_the_enrolment(server, client, clock) -> None:
    card, open_token = token(clock)
    with pytest.raises(KeyboardInterrupt):
        burn_token(TokenJob(Enrol(client, ANN)), open_token, Person(card, interrupt=True), clock)
    assert card.seed is not None  # burned, but never enrolled
    assert server.methods(ANN) == []
    assert server.actions(ANN) == ["token.enrol.begin", "token.delete"]


def test_ctrl_c_while_waiting_for_the_token_cancels_the_enrolment(server, client, clock) -> None:
    def reader_wait():
        raise KeyboardInterrupt  # as if Ctrl-C hit PcscConnection's wait for a card

    with pytest.raises(KeyboardInterrupt):
        burn_token(TokenJob(Enrol(client, ANN)), reader_wait, Person(), clock)
    assert server.actions(ANN) == ["token.enrol.begin", "token.delete"]


def test_a_lost_token_cancels_the_enrolment_and_says_the_seed_is_erased(
    server, client, clock
) -> None:
    card, open_token = token(clock, "OTPC-P2")
    card.faults.drop_ins = 0xC5  # every seed write is lost
    with pytest.raises(SeedErased) as err:
        burn_token(TokenJob(Enrol(client, ANN)), open_token, Person(card), clock)
    assert (err.value.model, err.value.attempts, err.value.serial) == (
        "OTPC-P2-i",
        4,
        card.serial,
    )
    assert "seed is now ERASED" in str(err.value) and card.seed is None
    assert server.methods(ANN) == []


def test_another_token_than_the_one_waited_for_cancels(server, client, clock) -> None:
    card, open_token = token(clock, "C302")
    job = TokenJob(Enrol(client, ANN), check=False, expect_serial="8659600000999")
    with pytest.raises(TokenSwapped) as err:
        burn_token(job, open_token, Person(card), clock)
    assert (err.value.expected, err.value.found) == ("8659600000999", card.serial)
    assert server.actions(ANN) == ["token.enrol.begin", "token.delete"]


def test_a_code_the_server_refuses_cancels(server, client, clock) -> None:
    """--no-check verifies with the code the secret gives now; here the burner's clock is an
    hour off the server's, so the server refuses it."""
    _, open_token = token(clock, "C302")

    def hour_ahead() -> float:
        return clock() + 3600

    with pytest.raises(EnrollError) as err:
        burn_token(TokenJob(Enrol(client, ANN), check=False), open_token, Person(), hour_ahead)
    assert err.value.status is not None and err.value.status >= 400
    assert server.methods(ANN) == []
    assert server.actions(ANN)[-1] == "token.delete"


def test_what_cannot_fit_is_refused_before_the_server_or_the_token(server, client, clock) -> None:
    card, open_token = token(clock)
    job = TokenJob(Enrol(client, ANN, algorithm=Algorithm.SHA512))
    with pytest.raises(BurnRefused, match="SHA512"):
        burn_token(job, open_token, Person(card), clock)
    assert server.actions(ANN) == [] and card.apdu_count == 0


def test_a_credential_without_a_server(clock) -> None:
    card, open_token = token(clock, "Molto2")
    cred = Credential(secret=b"12345678901234567890", digits=8, issuer="GitHub")
    job = TokenJob(cred, options=BurnOptions(family=Family.MOLTO2))
    outcome = burn_token(job, open_token, Person(card), clock)
    assert outcome.enrolled is None and outcome.burned.profile == 0
    assert card.press(0) == cred.code(at=NOW)
    with pytest.raises(NoCodeTyped, match="--no-check"):
        burn_token(job, open_token, SilentUi(), clock)


def test_batch_rows_run_the_same_flow(server, client, clock, tmp_path) -> None:
    """Row 1 is enrolled; Ctrl-C at row 2's prompt cancels row 2's enrolment, and the journal
    holds row 1 only, so a re-run continues with row 2."""
    server.add_user("ben@example.com")
    cards = [token(clock, "miniOTP-2", serial=f"865960000030{i}")[0] for i in (1, 2)]
    rows = [Row(ANN, "Ann's fob", 1), Row("ben@example.com", "Hardware token", 2)]
    journal = Journal.open(tmp_path / "journal.jsonl", None)
    on_reader = iter(cards)
    current = {"card": next(on_reader)}

    class BatchPerson(Person):
        def ask_code(self, prompt: str) -> str:
            if current["card"] is cards[1]:
                raise KeyboardInterrupt
            code = current["card"].press()
            current["card"] = next(on_reader)  # the next token goes on the reader
            return code

    with pytest.raises(KeyboardInterrupt):
        run_batch(
            rows,
            journal,
            lambda: MemoryConnection(current["card"]),
            BatchPerson(),
            BatchOptions(poll=0.01, wait_timeout=5),
            enroll=client,
            clock=clock,
        )
    assert list(journal.done()) == [ANN]
    assert [(m["state"], m["label"]) for m in server.methods(ANN)] == [("active", "Ann's fob")]
    assert server.methods("ben@example.com") == []
    assert server.actions("ben@example.com") == ["token.enrol.begin", "token.delete"]


def test_cancel_failing_does_not_hide_the_burns_error(server, clock) -> None:
    """The server is gone by the time the code is wrong: the person hears about the code (the
    cause) and that the pending method will expire by itself."""
    card, open_token = token(clock)
    enroll = server.client()

    def stop_the_server_then_type_a_wrong_code() -> str:
        with contextlib.suppress(Exception):
            server.stop()
        return wrong_code(card.seed, at=clock.now)

    person = Person(card, typed=[stop_the_server_then_type_a_wrong_code] * 2)  # both tries
    with pytest.raises(CodeMismatch):
        burn_token(TokenJob(Enrol(enroll, ANN)), open_token, person, clock)
    enroll.close()
    assert any("could not cancel" in s and "expires by itself" in s for s in person.said)
