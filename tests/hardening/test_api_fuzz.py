"""The HTTP API fuzzed from its own OpenAPI document (schemathesis), on SQLite and PostgreSQL,
over real HTTP (uvicorn in a thread): for every operation, valid and invalid requests with an
admin key, and the same without one. No answer may be a 5xx, none may take longer than the
timeout (a hang), and every JSON error must carry ``error.code``, ``error.message`` and
``error.hint``.

Bounded: ``KEYFOB_API_FUZZ_EXAMPLES`` examples per operation and mode (default 6 in the normal
suite; ``make fuzz`` sets 50)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from keyfob.server import accounts
from keyfob.server.api.app import create_app
from keyfob.server.context import ServerContext
from testkit import free_port

EXAMPLES = int(os.environ.get("KEYFOB_API_FUZZ_EXAMPLES", "6"))
TIMEOUT = 15.0  # seconds; a validation takes milliseconds, an import of a fuzzed file less


@pytest.fixture
def live(ctx: ServerContext) -> Iterator[str]:
    """The app of ``ctx`` behind uvicorn in a thread; its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _check(case: Any, response: Any, seen: Counter[int]) -> None:
    """No 5xx; every JSON error is the ``{"error": {code, message, hint}}`` shape."""
    seen[response.status_code] += 1
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, (
        f"{where} -> {response.status_code}: {response.text[:300]}; reproduce with "
        f"{case.as_curl_command()[:2000]}"
    )
    kind = response.headers.get("content-type", "")
    kind = kind[0] if isinstance(kind, list) and kind else kind  # schemathesis: lists of values
    if response.status_code >= 400 and kind.startswith("application/json"):
        error = response.json().get("error")
        assert isinstance(error, dict), f"{where} -> {response.status_code}: {response.text[:300]}"
        for field in ("code", "message", "hint"):
            assert isinstance(error.get(field), str) and error[field], (where, field, error)


def _fuzz_operation(operation: Any, url: str, headers: dict[str, str], seen: Counter[int]) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategy = operation.as_strategy(generation_mode=mode)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            started = time.monotonic()
            response = case.call(base_url=url, headers=headers, timeout=TIMEOUT)
            assert time.monotonic() - started < TIMEOUT
            _check(case, response, seen)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): fine
            assert mode is GenerationMode.NEGATIVE, operation.label


def test_api_from_its_openapi_document(ctx: ServerContext, live: str, leak_watch) -> None:
    _, admin = accounts.create_api_key(ctx, "fuzz-admin", "admin")
    leak_watch.secrets.add(admin)
    accounts.create_user(ctx, "alice@example.com")
    schema = schemathesis.openapi.from_url(f"{live}/openapi.json")
    seen: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for headers in ({"Authorization": f"Bearer {admin}"}, {}):
            _fuzz_operation(operation, live, headers, seen)
    assert operations >= 40, operations  # the document lists every route
    assert seen[200] + seen[201] > 0 and sum(seen.values()) >= operations * 4, seen
    assert httpx.get(f"{live}/healthz", timeout=5).status_code == 200  # still serving
    backend = ctx.engine.dialect.name
    print(f"api-fuzz {backend}: {operations} operations, {sum(seen.values())} requests, {seen}")


UNDECODABLE_BODIES = [
    '{"format": "azure-csv", "content_base64": "Gr\\u00e6@"}',
    '{"content": "\\ud995"}',
]


@pytest.mark.parametrize("body", UNDECODABLE_BODIES, ids=["non-ascii-base64", "lone-surrogate"])
def test_import_of_undecodable_content_is_a_400(sqlite_ctx: ServerContext, body: str) -> None:
    from fastapi.testclient import TestClient

    _, admin = accounts.create_api_key(sqlite_ctx, "fuzz-admin", "admin")
    client = TestClient(create_app(sqlite_ctx), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {admin}", "content-type": "application/json"}
    response = client.post("/api/v1/tokens/import", content=body, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["hint"], response.text
