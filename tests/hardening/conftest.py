"""Hardening tests share the server tests' fixtures: a context on SQLite or PostgreSQL (``ctx``)
or just a database URL on each (``db_url``), the session's PostgreSQL database and the leak
watch (tests/server/conftest.py)."""

from __future__ import annotations

from server.conftest import ctx as ctx
from server.conftest import db_url as db_url
from server.conftest import leak_watch as leak_watch
from server.conftest import pg_database as pg_database
from server.conftest import sqlite_api as sqlite_api
from server.conftest import sqlite_ctx as sqlite_ctx
from testkit import PG_URL as PG_URL
