"""Persistence: SQLAlchemy schema, Alembic migrations, the master key, atomic state updates."""
