"""Alembic migrations of the store; run them with handrail.store.migrate."""
