"""A validation costs at most 3 SQL statements and 1 commit per token (privacyIDEA: ~60 and 9).

On PostgreSQL a user with one method costs 2 statements and no COMMIT: the compare-and-set and
the audit INSERT are one statement on an autocommit connection (decisions.settle), one round
trip where BEGIN, UPDATE, INSERT and COMMIT took four.
"""

from __future__ import annotations

import pyotp

from keyfob.server import accounts, enrolment
from keyfob.server.validation import validate
from testkit import statements, wrong_code


def one_token(ctx) -> tuple[int, int]:
    """What a validation against one token (or the decoy) costs: (statements, commits)."""
    return (2, 0) if ctx.engine.dialect.name == "postgresql" else (3, 1)


def test_accepting_a_code_takes_three_statements_and_one_commit(ctx, clock) -> None:
    accounts.create_user(ctx, "s@example.com")
    totps = []
    for _ in range(3):  # several methods: still one SELECT
        b = enrolment.begin(ctx, "s@example.com", "app", actor="t")
        t = pyotp.parse_uri(b.otpauth_uri)
        enrolment.verify_enrolment(ctx, "s@example.com", b.id, t.at(clock.now - 30), actor="t")
        totps.append(t)
    wrong = wrong_code(*totps, at=clock.now)  # no token's code, in or near any window
    validate(ctx, "s@example.com", wrong)  # warm the pool and statement cache
    clock.advance(30)
    code = totps[1].at(clock.now)
    result = []
    accept = statements(ctx, lambda: result.append(validate(ctx, "s@example.com", code)))
    assert accept == one_token(ctx)
    assert result[0].accepted
    # An unknown user runs the same three statements as a wrong code (the compare-and-set
    # matches no row), so that neither timing nor load tells which usernames exist.
    assert statements(ctx, lambda: validate(ctx, "nobody@example.com", code)) == one_token(ctx)
    # 3 tokens refused: the 3 compare-and-sets and the INSERT in one transaction, everywhere
    assert statements(ctx, lambda: validate(ctx, "s@example.com", wrong)) == (5, 1)


def test_a_lockout_adds_no_statement(ctx, clock) -> None:
    """The fifth wrong code locks the token: its audit row goes into the same INSERT, so the
    validation that locks costs the statements of any other wrong code (3 for one token, 2 on
    PostgreSQL)."""
    accounts.create_user(ctx, "l@example.com")
    b = enrolment.begin(ctx, "l@example.com", "app", actor="t")
    t = pyotp.parse_uri(b.otpauth_uri)
    enrolment.verify_enrolment(ctx, "l@example.com", b.id, t.at(clock.now - 30), actor="t")
    wrong = wrong_code(t, at=clock.now)
    counts = [statements(ctx, lambda: validate(ctx, "l@example.com", wrong)) for _ in range(7)]
    assert counts == [one_token(ctx)] * 7  # four wrong codes, the locking one, two while locked
    assert validate(ctx, "l@example.com", t.at(clock.now)).reason == "locked"
