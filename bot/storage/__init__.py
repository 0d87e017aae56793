"""Persistence: the database (SQLAlchemy Core, Alembic), turn records and content-addressed blobs."""
