"""ASGI entry for multi-worker uvicorn: each worker builds its own context from ``KEYFOB_*``."""

from __future__ import annotations

from fastapi import FastAPI

from keyfob.server.api.app import create_app
from keyfob.server.context import open_context
from keyfob.server.settings import Settings


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``; migrations already ran in the parent process."""
    return create_app(open_context(Settings(), run_migrations=False))
