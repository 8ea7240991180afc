"""``keyfob probe-skew --target radius``: a verifier behind RADIUS, probed with ONE user's token.

A RADIUS front end is reached with one account whose secret is fixed, so the verifier's memory of
that account biases every probe unless the prober plans around it:

- replay: a code for a step at or below the last step accepted is refused whatever the window,
  so a code waits until its step is past every accepted one (the clock, never a new secret);
- learned drift: keyfob, like other verifiers, re-centres its window on the offset of the last
  code it accepted, so after an accepted probe k != 0 the window would follow the probes outward;
- lockout: ``max_failures`` refusals in a row lock the token (``--max-failures``);
- automatic resync: two refused codes one offset apart can be taken for a token whose clock
  jumped, and the second accepted.

One move answers all four: the *current code* (offset 0), once accepted, clears the failure
count, the learned drift and any pending resync. :meth:`Seen.needs_reset` sends it before a probe
when the last accepted code was not at offset 0, when ``max_failures`` - 2 refusals in a row
(at least 1) have been counted — so that even a current code refused unexpectedly leaves the
user one short of the lockout — or when the last probe was refused at most one offset away
from this one. Its price is time: its step
becomes the last accepted, so a probe at -k after it waits k + 1 steps, and one after an accepted
+k waits k + 1 steps for it. Hence the positive side first (a probe +k goes out in the step of
the current code before it), the negative side last (the current code after a probe at -k goes
out in the probe's own step), and a last current code at the end, so that the account is left
with no failure counted and no drift learned. A window of ±w costs about (w + 1)(w + 3) steps:
8 steps (4 min) for ±1, 15 (7.5 min) for ±2, 143 (72 min) for ±10.

A code goes out only where its answer can come back within its own step (the last round trip
is kept clear of the step's end); an answer that comes later anyway tells nothing, as the
verifier may have checked it in the next step, and that code is asked again.

Requests are PAP Access-Requests with a Message-Authenticator, and a reply without a valid one
is no reply (Blast-RADIUS, CVE-2024-3596); pyrad builds them with the tiny dictionary below.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from functools import cache

from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary
from pyrad.packet import AccessAccept, AccessChallenge, AccessReject

from keyfob.errors import KeyfobError
from keyfob.otp import Algorithm, hotp
from keyfob.toolset.skew import Clock, ProbeTarget, walk

DEFAULT_PORT = 1812
ATTEMPTS = 3  # tries of one code whose answer came after its step had ended
MAX_PASSWORD = 128  # RFC 2865 §5.2: User-Password holds at most 128 octets
NAS_IDENTIFIER = "keyfob-probe-skew"

# Only what a PAP request and its answers carry (FreeRADIUS format, read by pyrad).
DICTIONARY = """\
ATTRIBUTE	User-Name		1	string
ATTRIBUTE	User-Password		2	octets
ATTRIBUTE	Reply-Message		18	string
ATTRIBUTE	State			24	octets
ATTRIBUTE	Session-Timeout		27	integer
ATTRIBUTE	NAS-Identifier		32	string
ATTRIBUTE	Message-Authenticator	80	octets
"""


@cache
def _dictionary() -> Dictionary:
    return Dictionary(io.StringIO(DICTIONARY))


def parse_server(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, or a host alone (port 1812)."""
    host, port = text.strip(), str(DEFAULT_PORT)
    if host.startswith("["):
        inner, bracket, rest = host[1:].partition("]")
        host = inner if bracket and (not rest or rest.startswith(":")) else ""
        port = rest[1:] if rest else port
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KeyfobError(
            f"--server {text!r} is not HOST:PORT",
            hint="e.g. --server 192.0.2.10:1812 or --server [2001:db8::1]:1812",
        )
    return host, int(port)


class RadiusClient:
    """PAP Access-Requests to one server. A retransmission is the same datagram (pyrad keeps the
    Identifier and Request Authenticator), so a lost reply never makes a second code check."""

    def __init__(
        self, server: str, shared_secret: str, *, timeout: float = 2.0, retries: int = 3
    ) -> None:
        host, port = parse_server(server)
        self.where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._client = Client(
            server=host,
            authport=port,
            secret=shared_secret.encode("utf-8"),
            dict=_dictionary(),
            retries=retries,
            timeout=timeout,
            enforce_ma=True,
        )

    def check(self, user: str, password: str) -> bool:
        """True on Access-Accept, False on Access-Reject; anything else is a KeyfobError (the
        password, which holds the code, is never part of it)."""
        request = self._client.CreateAuthPacket(User_Name=user, NAS_Identifier=NAS_IDENTIFIER)
        request["User-Password"] = request.PwCrypt(password)
        try:
            reply = self._client.SendPacket(request)
        except Timeout:
            raise KeyfobError(
                f"no valid answer from the RADIUS server at {self.where}",
                hint="check --server, that this machine is a client of it (keyfob admin "
                "radius-client add), and --shared-secret: a wrong one is dropped unanswered",
            ) from None
        except OSError as exc:
            raise KeyfobError(
                f"cannot reach the RADIUS server at {self.where} ({type(exc).__name__})",
                hint="check --server",
            ) from None
        if reply.code == AccessChallenge:
            raise KeyfobError(
                "the RADIUS server answered with an Access-Challenge",
                hint="probe through a client in mode otp, or password+otp with --password "
                "(keyfob admin radius-client set NAME --mode otp)",
            )
        if reply.code not in (AccessAccept, AccessReject):
            raise KeyfobError(f"the RADIUS server answered with code {reply.code}")
        return bool(reply.code == AccessAccept)

    def close(self) -> None:
        self._client._CloseSocket()  # pyrad has no public close


@dataclass
class Seen:
    """What the prober knows of the verifier's state for the user: enough to plan each code."""

    last_step: int
    """No code for this step or an earlier one may be sent: it would be a replay."""
    confirmed: bool = False  # the verifier accepted a code of this run
    centred: bool = True  # the last code accepted was the current one (no drift to learn)
    failures: int = 0  # refusals since the last acceptance
    refused: int | None = None  # the offset of the last probe, when it was refused

    def needs_reset(self, offset: int, max_failures: int) -> bool:
        """Whether the current code must go before the probe at ``offset`` (module docstring)."""
        if not self.confirmed:
            return offset != 0
        if not self.centred or self.failures >= max(1, max_failures - 2):
            return True
        return self.refused is not None and abs(offset - self.refused) <= 1

    def earliest(self, offset: int) -> int:
        """The first step in which a code ``offset`` steps ahead is past every accepted one."""
        return self.last_step + 1 - offset

    def answer(self, offset: int, step: int, accepted: bool) -> None:
        if accepted:
            self.last_step = max(self.last_step, step + offset)
            self.confirmed, self.centred, self.failures, self.refused = True, offset == 0, 0, None
        else:
            self.failures, self.refused = self.failures + 1, offset


def ready_at(now: float, earliest: int, period: int, guard: float, busy: float = 0.0) -> float:
    """When a code for a step at or after ``earliest`` may go out: ``guard`` seconds after its
    step begins, and ``guard`` plus ``busy`` (the last round trip, at most half a step) before
    it ends, so that the verifier checks it in the step it was made for. Pure, without sleeping:
    the estimate of the time left needs it too."""
    last = period - guard - min(busy, period / 2)
    t = max(now, earliest * period + guard)
    phase = t % period
    if phase < guard:
        return t + guard - phase
    if phase > last:
        return t + period - phase + guard
    return t


class RadiusTarget(ProbeTarget):
    """One user through a RADIUS server: fixed secret, codes only forward in time, the current
    code in between where the verifier's memory would bias a probe (module docstring)."""

    order = (1, -1)  # positive side first: see the module docstring

    def __init__(
        self,
        client: RadiusClient,
        user: str,
        secret: bytes,
        *,
        password: str = "",
        max_failures: int = 5,
        period: int = 30,
        digits: int = 6,
        algorithm: Algorithm = Algorithm.SHA1,
        clock: Clock | None = None,
        guard: float = 2.0,
    ) -> None:
        super().__init__(clock, guard)
        if max_failures < 2:
            raise KeyfobError(
                f"--max-failures {max_failures} leaves no room for a refused probe",
                hint="give the verifier's lockout threshold, at least 2 (keyfob: 5)",
            )
        if len((password + "0" * digits).encode("utf-8")) > MAX_PASSWORD:
            raise KeyfobError(
                "--password is too long for RADIUS: with the code it must fit in 128 octets"
            )
        self.client, self.user, self._secret, self.password = client, user, secret, password
        self.max_failures, self.period = max_failures, period
        self.digits, self.algorithm = digits, algorithm
        # The current step may have been used already (a sign-in, the last run): start after it.
        self.seen = Seen(last_step=int(self.clock.now() // period))
        self.answers: dict[int, bool] = {}
        self._max_steps = 0
        self._round_trip = 0.0

    @property
    def name(self) -> str:
        return f"radius {self.client.where}"

    def prepare(self, max_steps: int) -> None:
        self._max_steps = max_steps

    def _ready(self, offset: int, label: str) -> int:
        """Sleep until a code at ``offset`` may go out (:func:`ready_at`); its step."""
        earliest = self.seen.earliest(offset)
        now = self.clock.now()
        wait = ready_at(now, earliest, self.period, self.guard, self._round_trip) - now
        self.report(f"{label}: waiting {wait:.0f} s for the clock" if wait >= 1 else label)
        while wait > 0:
            self.clock.sleep(wait)
            now = self.clock.now()
            wait = ready_at(now, earliest, self.period, self.guard, self._round_trip) - now
        return int(now // self.period)

    def _send(self, offset: int, label: str) -> bool | None:
        """One code ``offset`` steps from now, in the first step where it is no replay. None
        when the answer came after that step had ended: the verifier may have checked it in
        the next one, so it tells nothing — though the code is spent, a refusal counted, and
        any drift learned unknown."""
        step = self._ready(offset, label)
        began = self.clock.now()
        code = hotp(self._secret, step + offset, self.digits, self.algorithm)
        accepted = self.client.check(self.user, self.password + code)
        done = self.clock.now()
        self._round_trip = done - began
        self.seen.answer(offset, step, accepted)
        if done <= (step + 1) * self.period - self.guard:
            return accepted
        if accepted:
            self.seen.centred = False  # whatever drift it taught, it may not be 0
        return None

    def _reset(self) -> None:
        for attempt in range(ATTEMPTS):
            if attempt and self.seen.failures >= self.max_failures - 1:
                break  # one more refusal would lock the user
            accepted = self._send(0, "current code")
            if accepted:
                return
            if accepted is False:
                raise KeyfobError(
                    f"the RADIUS server refused the current code for {self.user!r}, which it "
                    "had accepted before",
                    hint="is someone signing in as this user meanwhile? Probe with a test user; "
                    f"{self.seen.failures} refusal(s) in a row now count against it",
                )
        raise self._too_slow()

    def _too_slow(self) -> KeyfobError:
        return KeyfobError(
            f"the RADIUS server at {self.client.where} answered after the code's step had "
            f"ended, again and again; {self.seen.failures} refusal(s) in a row now count "
            f"against {self.user!r}",
            hint=f"a code means something only in its own {self.period} s step: check the "
            "network and the server's load",
        )

    def probe(self, offset: int) -> bool:
        for _ in range(ATTEMPTS):
            if self.seen.needs_reset(offset, self.max_failures):
                self._reset()
            first = not self.seen.confirmed
            accepted = self._send(offset, f"offset {offset:+d}")
            if accepted is None:
                continue  # a late refusal is one offset away from the retry: reset first
            if first and not accepted:
                raise KeyfobError(
                    f"the RADIUS server refused the current code for {self.user!r}",
                    hint="check --otp-secret (and --period, --digits, --algorithm), --user, "
                    "--password for a password+otp client, both clocks, and that the user is "
                    "not locked",
                )
            self.answers[offset] = accepted
            return accepted
        raise self._too_slow()

    def finish(self) -> None:
        """A last current code, so that the account is left with no failure counted and no
        drift learned (after Ctrl-C or an error the probe leaves at once: no call)."""
        if self.seen.confirmed and (self.seen.failures or not self.seen.centred):
            self._reset()

    def close(self) -> None:
        self.client.close()

    def remaining_seconds(self) -> float:
        """About how long the rest of the search takes: :func:`walk` replayed with the answers
        so far and the rest guessed — a window as wide as the widest side found, on both sides —
        through the same waiting rules as the real probes."""
        extent = max((abs(k) for k, ok in self.answers.items() if ok), default=0)
        seen = dataclasses.replace(self.seen)
        start = t = self.clock.now()
        offsets = walk(self.order, self._max_steps)
        offset = next(offsets)
        while True:
            accepted = self.answers.get(offset, abs(offset) <= extent)
            if offset not in self.answers:
                if seen.needs_reset(offset, self.max_failures):
                    t = self._planned(seen, t, 0, True)
                t = self._planned(seen, t, offset, accepted)
            try:
                offset = offsets.send(accepted)
            except StopIteration:
                break
        if seen.confirmed and (seen.failures or not seen.centred):
            t = self._planned(seen, t, 0, True)
        return t - start

    def _planned(self, seen: Seen, t: float, offset: int, accepted: bool) -> float:
        """When the code at ``offset`` would be answered, sent from ``t`` on; ``seen`` follows."""
        t = ready_at(t, seen.earliest(offset), self.period, self.guard, self._round_trip)
        seen.answer(offset, int(t // self.period), accepted)
        return t + self._round_trip
