"""ASGI entry for multi-worker uvicorn: each worker builds its own context from ``KEYFOB_*``.

Who may set the client address (``X-Forwarded-For``) is uvicorn's business, decided before the
app sees a request: :func:`uvicorn_proxy_options` gives ``keyfob serve`` the explicit settings
for one worker and for many alike (workers inherit the parent's uvicorn configuration). Running
``uvicorn --factory keyfob.server.api.asgi:app_from_env`` by hand, pass ``--no-proxy-headers``
or ``--forwarded-allow-ips`` yourself: uvicorn's default believes the header from 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from keyfob.server.api.app import create_app
from keyfob.server.configfile import find_config
from keyfob.server.context import open_context
from keyfob.server.settings import Settings


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``; migrations already ran in the parent process."""
    settings = find_config().settings()  # KEYFOB_* first, then the config file serve used
    return create_app(open_context(settings, run_migrations=False))


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """``uvicorn.run`` keyword arguments that believe forwarded headers from the configured
    proxies only, and from nobody when none is configured (uvicorn's own default trusts
    127.0.0.1, or ``$FORWARDED_ALLOW_IPS``: any local process could forge its address past the
    sign-in limiter and into the audit)."""
    trusted = settings.trusted_proxies()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": ",".join(trusted)}
