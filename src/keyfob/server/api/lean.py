"""A route handler without FastAPI's general machinery, for the validation route.

FastAPI builds one handler per route that, on every request, parses the content type through
``email.message``, decodes the JSON into a dict, solves the dependency graph, validates the
dict against the body model and serialises whatever the endpoint returns. For
``POST /api/v1/validate`` — the route in front of every login, and the one that must hold a
Monday-morning storm — that general work cost about a tenth of the server's CPU per request
(py-spy, bench/results/latest.md). :class:`LeanRoute` does the same checks directly:

- the authorising dependency first (a refused caller gets its 401/403 whatever it sent);
- then the body, which must be JSON (``application/json`` or ``…+json``), validated by the
  body model from the raw bytes in one pass (pydantic-core's parser), with FastAPI's own error
  (:class:`RequestValidationError`, ``loc`` under ``body``), so the answer is the same 422;
- then the endpoint, whose :class:`Response` goes out as it is.

The route's signature still describes it: the body model and the dependency appear in OpenAPI
and name the route's permission (tests/helpdesk/test_role_matrix.py), exactly as for every
other route. Only routes of this one shape — one body model, one dependency, the Request — may
use it; anything else is refused when the app is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI reports a body's: the location under ``body``."""
    return [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]


class LeanRoute(APIRoute):
    """An :class:`APIRoute` answered by :func:`lean_handler` (see the module docstring)."""

    def get_route_handler(self) -> Handler:
        return lean_handler(self)


def lean_handler(route: APIRoute) -> Handler:
    dependant = route.dependant
    if len(dependant.dependencies) != 1 or len(dependant.body_params) != 1:
        raise TypeError(f"{route.path}: a lean route takes one dependency and one body model")
    auth, field = dependant.dependencies[0], dependant.body_params[0]
    model = field.field_info.annotation
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        raise TypeError(f"{route.path}: the body of a lean route is a pydantic model")
    if auth.call is None or not inspect.iscoroutinefunction(auth.call):
        raise TypeError(f"{route.path}: a lean route's dependency is an async function")
    if auth.name is None or dependant.request_param_name is None:
        raise TypeError(f"{route.path}: a lean route names its dependency and takes the Request")
    authorise, endpoint = auth.call, route.endpoint
    names = {"auth": auth.name, "body": field.name, "request": dependant.request_param_name}

    async def handler(request: Request) -> Response:
        who = await authorise(request)
        raw = await request.body()
        if not _is_json(request.headers.get("content-type")):
            raise RequestValidationError(
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ("body",),
                        "msg": "the body must be JSON (Content-Type: application/json)",
                        "input": None,
                    }
                ]
            )
        try:
            body = model.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(_body_errors(exc)) from None
        kwargs = {names["auth"]: who, names["body"]: body, names["request"]: request}
        response: Response = await endpoint(**kwargs)
        return response

    return handler
