"""The verifiers ``keyfob probe-skew`` can reach: a keyfob server over its REST API, and any
verifier a shell command can call. The RADIUS target, one fixed secret whose probes wait for
the clock and stay under the lockout, is :class:`keyfob.toolset.radius.RadiusTarget`."""

from __future__ import annotations

import shlex
import subprocess
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from keyfob.errors import KeyfobError
from keyfob.otp import Algorithm, Credential, generate_secret, hotp, parse_otpauth, to_base32
from keyfob.toolset.skew import Clock, ProbeTarget

PLACEHOLDERS = ("{secret}", "{secret_hex}", "{code}", "{period}", "{digits}")


class CommandTarget(ProbeTarget):
    """A shell command per probe, with a fresh random secret each time: exit 0 = accepted.

    126 and 127 (not executable, not found) and a kill by a signal are errors, not refusals: a
    broken command would otherwise look like a verifier that accepts nothing."""

    def __init__(
        self,
        template: str,
        *,
        period: int = 30,
        digits: int = 6,
        algorithm: Algorithm = Algorithm.SHA1,
        clock: Clock | None = None,
        guard: float = 2.0,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(clock, guard)
        if "{code}" not in template:
            raise KeyfobError(
                "--cmd has no {code} placeholder",
                hint="e.g. --cmd 'oathtool --totp {secret_hex} {code}'",
            )
        self.template, self.period, self.digits = template, period, digits
        self.algorithm, self.timeout = algorithm, timeout

    @property
    def name(self) -> str:
        return "command"  # the template may hold a password or key: never echoed

    def render(self, secret: bytes, code: str) -> str:
        """The template with each placeholder replaced (other braces, e.g. JSON, left alone)."""
        values = (to_base32(secret), secret.hex(), code, str(self.period), str(self.digits))
        cmd = self.template
        for name, value in zip(PLACEHOLDERS, values, strict=True):
            cmd = cmd.replace(name, shlex.quote(value))
        return cmd

    def probe(self, offset: int) -> bool:
        secret = generate_secret(self.algorithm)
        step = self.fresh_step()
        cmd = self.render(secret, hotp(secret, step + offset, self.digits, self.algorithm))
        try:
            proc = subprocess.run(
                cmd,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise KeyfobError(
                f"the verifier command did not finish in {self.timeout:g} s",
                hint="check --cmd by hand; a verifier must answer with its exit status",
            ) from None
        if proc.returncode in (126, 127) or proc.returncode < 0:
            raise KeyfobError(
                f"the verifier command failed to run (exit status {proc.returncode})",
                hint="check --cmd by hand: is the program installed and on PATH?",
            )
        return proc.returncode == 0


class Phase(StrEnum):
    STEADY = "steady"
    ENROL = "enrol"


PREPARED = 12
"""Enrolments made ahead for the steady phase's offsets 0, -1 ... -11: a keyfob server's steady
window is at most 10 (``KEYFOB_WINDOW``), so these find either edge without waiting twice."""


@dataclass(frozen=True)
class _Enrolled:
    user: str
    credential: Credential
    step: int  # the step of the code that activated it: this and earlier ones are replays


class KeyfobTarget(ProbeTarget):
    """A keyfob server through its admin REST API: a fresh temporary user and app method per
    probe point (so replay protection, drift learning and lockout cannot bias the answer),
    activated with the current code; then one code at the offset (``steady``), or the
    activation itself at the offset (``enrol``).

    In ``steady`` a code at or before the activation's step is a replay, so offset -k can only
    be tried k + 1 steps after its method was activated: the methods for 0 ... -11 are activated
    up front, and the negative side takes that long. Every temporary user (``users``) is
    deleted on exit, Ctrl-C included, and their methods with them; a user the server would not
    delete stays in :attr:`users_left`, with its methods deleted one by one if it can."""

    def __init__(
        self,
        url: str,
        api_key: str,
        phase: Phase | str = Phase.STEADY,
        *,
        clock: Clock | None = None,
        guard: float = 2.0,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(clock, guard)
        parts = urlsplit(url)
        self.url = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        self.phase = Phase(phase)
        self.period = 30
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )
        self.run_id = uuid.uuid4().hex[:8]
        self._made = 0
        self._methods: list[tuple[str, str]] = []
        self._ready: dict[int, _Enrolled] = {}
        self.users: list[str] = []  # every temporary user made, in order
        self.users_left: list[str] = []  # those still on the server after close()
        self.cleanup_failures = 0  # methods of users_left that could not be deleted either

    @property
    def name(self) -> str:
        return f"keyfob {self.phase.value} {self.url}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise KeyfobError(
                f"cannot reach the keyfob server at {self.url} ({type(exc).__name__})",
                hint="check --url, and that keyfob serve is running",
            ) from None

    def _ok(self, resp: httpx.Response, *status: int) -> dict[str, Any]:
        if resp.status_code in status:
            return resp.json() if resp.content else {}
        try:
            error = resp.json()["error"]
            message, hint = error["message"], error.get("hint")
        except (ValueError, KeyError, TypeError):
            message, hint = resp.reason_phrase, None
        if resp.status_code in (401, 403):
            hint = "give an API key with the admin role (--api-key or KEYFOB_API_KEY)"
        raise KeyfobError(f"the keyfob server answered {resp.status_code}: {message}", hint=hint)

    def _begin(self) -> tuple[str, str, Credential]:
        """A new user with a pending app method: its name, the method's id, its credential."""
        self._made += 1
        user = f"probe-skew-{self.run_id}-{self._made:03d}"
        self._ok(self._call("POST", "/api/v1/users", {"username": user}), 201)
        self.users.append(user)
        body = {"kind": "app", "label": "keyfob probe-skew", "period": self.period}
        made = self._ok(self._call("POST", f"/api/v1/users/{user}/tokens", body), 201)
        self._methods.append((user, made["id"]))
        return user, made["id"], parse_otpauth(made["otpauth_uri"])

    def _verify(self, user: str, token_id: str, code: str) -> bool:
        path = f"/api/v1/users/{user}/tokens/{token_id}/verify"
        resp = self._call("POST", path, {"code": code})
        if resp.status_code == 422:
            return False  # the one answer to a code not accepted
        self._ok(resp, 200)
        return True

    def _activated(self) -> _Enrolled:
        user, token_id, cred = self._begin()
        step = self.fresh_step()
        if not self._verify(user, token_id, cred.code(counter=step)):
            raise KeyfobError(
                "the server refused the code of the current step at enrolment",
                hint="its clock is more than 15 steps from this machine's; fix the clocks first",
            )
        return _Enrolled(user, cred, step)

    def prepare(self, max_steps: int) -> None:
        if self.phase is Phase.STEADY:
            for k in range(min(max_steps, PREPARED - 1) + 1):
                self._ready[-k] = self._activated()

    def probe(self, offset: int) -> bool:
        if self.phase is Phase.ENROL:
            user, token_id, cred = self._begin()
            step = self.fresh_step()
            return self._verify(user, token_id, cred.code(counter=step + offset))
        ready = self._ready.pop(offset, None) if offset <= 0 else None
        enrolled = ready or self._activated()
        step = self.fresh_step(earliest=enrolled.step - offset + 1)
        code = enrolled.credential.code(counter=step + offset)
        body = {"username": enrolled.user, "code": code}
        answer = self._ok(self._call("POST", "/api/v1/validate", body), 200)
        return answer.get("result") == "accept"

    def _deleted(self, path: str, *ok: int) -> bool:
        try:
            return self._http.delete(path).status_code in (*ok, 404)
        except httpx.HTTPError:
            return False

    def _user_deleted(self, user: str) -> bool:
        """Deleted, or not there. An older server has no such route and answers its 404 too, so
        a 404 counts only once the user's method listing is a 404 as well."""
        try:
            status = self._http.delete(f"/api/v1/users/{user}").status_code
            if status == 404:
                return self._http.get(f"/api/v1/users/{user}/tokens").status_code == 404
        except httpx.HTTPError:
            return False
        return status in (200, 204)

    def close(self) -> None:
        """Delete every temporary user made, which deletes their methods too (best effort: the
        next one is still tried). A user the server does not delete (an older server has no
        DELETE /api/v1/users/{username}) stays in :attr:`users_left`, and its methods are then
        deleted one by one; those that are not either are counted in ``cleanup_failures``."""
        left = [u for u in self.users if not self._user_deleted(u)]
        for user, token_id in self._methods:
            path = f"/api/v1/users/{user}/tokens/{token_id}"
            if user in left and not self._deleted(path, 204):
                self.cleanup_failures += 1
        self.users_left, self._methods = left, []
        self._http.close()
