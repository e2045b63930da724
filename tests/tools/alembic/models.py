# The application's SQLAlchemy metadata: no server default on tenant_id
# (tenant_guard's default is "drift" to Alembic with compare_server_default).
from sqlalchemy import Column, Integer, MetaData, Table, Text

metadata = MetaData()
docs = Table(
    "docs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("body", Text),
)
