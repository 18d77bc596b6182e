"""Alembic environment: runs migrations against the URL the caller configured."""

from __future__ import annotations

from alembic import context

from videoqueue.db.dialect import make_engine, migration_lock
from videoqueue.db.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = make_engine(url)
with engine.connect() as connection, migration_lock(connection):
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        # On SQLite the whole upgrade is one `BEGIN IMMEDIATE` transaction, version read
        # included (SQLite's DDL is transactional, though Alembic assumes it is not), so a
        # process starting at the same moment waits, then finds it current; per migration,
        # two could both read 0001 and both run 0002.
        transactional_ddl=True,
        transaction_per_migration=connection.dialect.name == "postgresql",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
