# Alembic environment for tests/tools/run: online mode only, the URL from
# TG_TOOLS_SQLALCHEMY_URL, server defaults compared (so autogenerate proposes
# dropping tenant_guard's default on tenant_id).
import os
import sys

from alembic import context
from sqlalchemy import create_engine

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import metadata  # noqa: E402

engine = create_engine(os.environ["TG_TOOLS_SQLALCHEMY_URL"])
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_server_default=True)
    with context.begin_transaction():
        context.run_migrations()
