"""alembic environment: migrations run on the connection `_db._upgrade` passes in (never
from an alembic.ini or a URL of their own)."""

from alembic import context

from astrobio.registry.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - `alembic` CLI use: point it at a URL explicitly
    raise SystemExit("run migrations through astrobio.registry (open_registry), which passes the connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=connection.dialect.name == "sqlite")
context.run_migrations()
