"""What API clients read at /docs: a summary for every operation, and descriptions written for
them — never a developer's note about internals (issue 10)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .conftest import Api

# Words of the code and its documents, not of the API: file names, sections of the design
# documents, module paths, reST markup, names of the server's internals.
INTERNAL = re.compile(
    r"docs/|§|\.py\b|``|keyfob\.server|\bctx\b|\brepo\b|audit row|compare-and-set|"
    r"\bGIL\b|thread pool|event loop|statements?\b|\bTODO\b",
    re.IGNORECASE,
)
MACHINE = ("/healthz", "/metrics")


def _descriptions(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield where, value
            else:
                yield from _descriptions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _descriptions(value, f"{where}/{i}")


def test_no_internal_note_reaches_the_description(api: Api) -> None:
    spec = api.get("/openapi.json", role=None).json()
    found = list(_descriptions(spec))
    assert len(found) > 20  # routes, tags, enums and fields are described
    leaks = [f"{where}: {text!r}" for where, text in found if INTERNAL.search(text)]
    assert leaks == [], "\n".join(leaks)


def test_every_operation_has_a_summary(api: Api) -> None:
    spec = api.get("/openapi.json", role=None).json()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if not operation.get("summary")
    ]
    assert missing == []
    # The API's are written for its readers, not made up from a function's name.
    public = [
        (path, method, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/") or path in MACHINE
    ]
    assert len(public) > 15
    made_up = [
        f"{method.upper()} {path}: {operation['summary']!r}"
        for path, method, operation in public
        if operation["summary"] == _generated_summary(path, method, operation)
    ]
    assert made_up == [], "\n".join(made_up)


def _generated_summary(path: str, method: str, operation: dict[str, Any]) -> str:
    """What FastAPI writes when a route gives no summary: its function's name, title-cased
    (the operationId is that name, then the path and the method with "_" for the rest)."""
    tail = re.sub(r"\W", "_", path) + "_" + method
    return operation["operationId"].removesuffix(tail).replace("_", " ").title()


def test_enums_show_as_enums(api: Api) -> None:
    spec = api.get("/openapi.json", role=None).json()
    schemas = spec["components"]["schemas"]
    assert schemas["TokenStatus"]["enum"] == ["active", "pending", "disabled", "lost", "retired"]
    assert schemas["TokenKind"]["enum"] == ["classic", "programmable", "app"]
    assert schemas["UserBody"]["properties"]["role"]["$ref"].endswith("/Role")
    assert schemas["BeginBody"]["properties"]["kind"]["enum"] == ["app", "programmable"]
    assert schemas["BeginBody"]["properties"]["period"]["enum"] == [30, 60]


def test_docs_pages_load_nothing_from_the_internet(api: Api) -> None:
    """/docs and /redoc name only this server's own files (no CDN): they work offline."""
    for page in ("/docs", "/redoc"):
        resp = api.get(page, role=None)
        assert resp.status_code == 200, page
        assets = re.findall(r'(?:src|href)="([^"]+)"', resp.text)
        assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
        assert "cdn" not in resp.text.lower() and "fonts.googleapis" not in resp.text
        for asset in assets:
            assert api.get(asset, role=None).status_code == 200, asset
    assert api.get("/openapi.json", role=None).json()["openapi"].startswith("3.1")
