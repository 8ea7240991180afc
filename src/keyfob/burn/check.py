""" "Press the button and type the code shown": which step does the token show?"""

from __future__ import annotations

from dataclasses import dataclass

from keyfob.otp import Credential, time_step


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    step_offset: int | None  # -1 previous, 0 current, +1 next (None: no match)

    def describe(self, period: int) -> str:
        if not self.ok or self.step_offset is None:
            return "the code does not match the burned secret at any nearby time"
        if self.step_offset == 0:
            return "the token shows the current code: its clock is right"
        return (
            f"the token shows the {'previous' if self.step_offset < 0 else 'next'} code: "
            f"its clock is about {self.step_offset * period:+d} s off"
        )


def check_code(cred: Credential, typed: str, now: float, window: int = 1) -> CheckResult:
    """Compare with the previous, current and next codes (the display may lag a step)."""
    code = typed.strip().replace(" ", "")
    step = time_step(now, cred.period)
    for offset in sorted(range(-window, window + 1), key=abs):
        if cred.code(counter=step + offset) == code:
            return CheckResult(True, offset)
    return CheckResult(False, None)
