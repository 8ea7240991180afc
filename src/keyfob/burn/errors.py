"""Every error the burner raises, in one place, so that a caller can tell *how far* a burn got
from the class alone, and read the rest from typed fields set by the constructor.

The tree (each is a :class:`~keyfob.errors.KeyfobError`, so the CLI prints it as one line with
its hint)::

    KeyfobError
    ├── BurnRefused ·············· the credential cannot go into this token; nothing was sent
    ├── ReaderUnavailable ········ pyscard or pcscd is missing: no token can be reached (cause)
    ├── BurnFailed ··············· the token was touched and is not (known to be) burned (serial)
    │   ├── TokenKeptLeaving ····· the link broke on every attempt; nothing was changed (attempts)
    │   ├── SeedErased ··········· a restricted-sync token lost its seed (model, cause, attempts)
    │   ├── TokenSwapped ········· another serial answered mid-burn (expected, found)
    │   ├── CodeMismatch ········· the code typed is not the burned secret's (serial, tries)
    │   └── NoCodeTyped ·········· no one could type the code shown (reason)
    ├── EnrollError ·············· the server refused or could not be reached (status, server_code)
    ├── BatchError ··············· a batch cannot go on
    │   ├── UsersFileError ······· the users file is unusable (file, line)
    │   └── NoNewToken ··········· no new token came to the reader in time (waited)
    ├── JournalError ············· the batch journal is damaged or does not open (path)
    └── SyncRefused ·············· a clock sync that would lose the seed, or has nothing to sync

Token-level failures (``keyfob.token.errors``: ``TransportLost``, ``UnknownModel``,
``AuthenticationFailed``…) pass through unchanged, except where the burner knows more than the
token does — a lost link on a restricted-sync token whose clock was already written is a
:class:`SeedErased`, because the seed is gone whatever the link says.

No message or field holds a secret or a code: serials, models, counts and places only.
"""

from __future__ import annotations

from pathlib import Path

from keyfob.errors import KeyfobError


class BurnRefused(KeyfobError):
    """The credential cannot go into this token; nothing was sent to it."""

    code = "burn_refused"


class ReaderUnavailable(KeyfobError):
    """PC/SC itself is missing (pyscard not installed, pcscd not running): waiting for a token
    cannot help, so whoever waits stops at once with this."""

    code = "reader_unavailable"
    cause: str

    def __init__(self, cause: str, *, hint: str | None) -> None:
        super().__init__(f"cannot reach a token: {cause}", hint=hint)
        self.cause = cause


class BurnFailed(KeyfobError):
    """The token was touched and is not (known to be) burned; ``serial`` when it was read."""

    code = "burn_failed"
    serial: str | None

    def __init__(self, message: str, *, hint: str | None = None, serial: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.serial = serial


class TokenKeptLeaving(BurnFailed):
    """Every attempt lost the link before anything irreversible happened."""

    code = "token_kept_leaving"
    attempts: int

    def __init__(self, *, attempts: int, serial: str | None = None) -> None:
        super().__init__(
            f"the token kept leaving the reader ({attempts} attempts)",
            hint="nothing was changed; hold the token still and burn again",
            serial=serial,
        )
        self.attempts = attempts


class SeedErased(BurnFailed):
    """On a restricted-sync model writing the clock erases the seed; the new seed never
    arrived, so the token now shows no code until it is burned again."""

    code = "seed_erased"
    model: str
    cause: str
    attempts: int

    def __init__(self, *, model: str, cause: str, attempts: int, serial: str | None) -> None:
        super().__init__(
            f"{cause}; the token's seed is now ERASED: on the {model} writing the clock "
            "erases the seed, and the new seed never arrived",
            hint="burning again fixes it — hold the token flat and still on the reader",
            serial=serial,
        )
        self.model = model
        self.cause = cause
        self.attempts = attempts


class TokenSwapped(BurnFailed):
    """Another serial answered than the one the burn started with (or was expected)."""

    code = "token_swapped"
    expected: str
    found: str

    def __init__(self, *, expected: str, found: str) -> None:
        super().__init__(
            f"token {found} answered where token {expected} was being burned",
            hint="keep one token on the reader and burn again",
            serial=found,
        )
        self.expected = expected
        self.found = found


class CodeMismatch(BurnFailed):
    """The code typed matches neither the previous, current nor next step of the secret."""

    code = "code_mismatch"
    tries: int

    def __init__(self, *, serial: str, tries: int) -> None:
        super().__init__(
            f"token {serial}: the code typed does not match the burned secret ({tries} tries)",
            hint="a stale code may still have been shown: burn again and type the code of a "
            "fresh press (a batch re-run continues with this user)",
            serial=serial,
        )
        self.tries = tries


class NoCodeTyped(BurnFailed):
    """The check needs a person to type the code shown, and there is none."""

    code = "no_code_typed"
    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"no code was typed ({reason})", hint="run it in a terminal, or pass --no-check"
        )
        self.reason = reason


class EnrollError(KeyfobError):
    """The keyfob server said no, or could not be reached (``status`` is then None)."""

    code = "enroll_failed"
    status: int | None
    server_code: str | None

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        server_code: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.server_code = server_code


class BatchError(KeyfobError):
    code = "batch"


class UsersFileError(BatchError):
    """The users file of a batch names no one, or one user twice."""

    code = "bad_users_file"
    file: str
    line: int | None

    def __init__(self, message: str, *, file: str, line: int | None = None) -> None:
        where = f"{file} line {line}" if line is not None else file
        super().__init__(f"{where}: {message}", hint="fix the file and run the batch again")
        self.file = file
        self.line = line


class NoNewToken(BatchError):
    """The batch waited for a token it had not burned yet, and none came."""

    code = "no_new_token"
    waited: float

    def __init__(self, *, waited: float) -> None:
        super().__init__(
            f"no new token came to the reader in {waited:.0f} s",
            hint="re-run the same command to continue where it stopped",
        )
        self.waited = waited


class JournalError(KeyfobError):
    code = "journal"
    path: Path

    def __init__(self, message: str, *, path: Path, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class SyncRefused(KeyfobError):
    code = "sync_refused"
