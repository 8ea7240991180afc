"""How the burner talks to the person at the reader (the CLI implements it; tests script it)."""

from __future__ import annotations

from typing import Protocol

from keyfob.burn.errors import NoCodeTyped


class Ui(Protocol):
    def say(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def ask_code(self, prompt: str) -> str: ...


class SilentUi:
    """For library use: says nothing, and has no one to ask."""

    def say(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def ask_code(self, prompt: str) -> str:
        raise NoCodeTyped("keyfob runs as a library here, with no one to ask")
