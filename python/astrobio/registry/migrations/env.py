"""alembic environment: migrations run on the connection `_db._upgrade` passes in (never
from an alembic.ini or a URL of their own)."""

from alembic import context

from astrobio.registry.models import VERSION_TABLE, Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - `alembic` CLI use: point it at a URL explicitly
    raise SystemExit("run migrations through astrobio.registry (open_registry), which passes the connection")
# Our own version table: optuna's RDB storage (astrobio tune) keeps its studies in the same database
# by default and runs its own alembic history in the standard `alembic_version` table.
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
context.run_migrations()
