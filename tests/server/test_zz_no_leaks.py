"""Runs last in the server suite: no secret, password, API key or typed code used by any
server test appears in an audit row or in the logs (ours, uvicorn's, alembic's, httpx's)."""

from __future__ import annotations

import re


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9+/=_\-.@:]+", text))


def test_no_secret_or_code_in_audit_or_logs(leak_watch) -> None:
    audit = "\n".join(leak_watch.audit_text)
    logs = leak_watch.log.getvalue()
    assert audit, "the server tests wrote audit rows"
    assert leak_watch.codes and leak_watch.secrets, "the watch list was filled"
    for haystack, name in ((audit, "audit"), (logs, "logs")):
        words = _tokens(haystack)
        # A code stands as a word of its own; digits inside a random hex id (an API key's id,
        # a UUID) are not a code, and once matched one by chance ('3a370c468680').
        digit_runs = set(re.findall(r"(?<![0-9A-Za-z])[0-9]{6,10}(?![0-9A-Za-z])", haystack))
        leaked_codes = sorted(c for c in leak_watch.codes if c in digit_runs)
        assert leaked_codes == [], f"codes in {name}: {leaked_codes}"
        leaked = sorted(
            s
            for s in leak_watch.secrets
            if s in haystack or s.upper() in words or s.lower() in words
        )
        assert leaked == [], f"{len(leaked)} secret(s) in {name}"
