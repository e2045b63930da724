"""tenant_guard for SQLAlchemy 2 (ORM sessions, psycopg 3 driver).

    from tenant_guard_sqlalchemy import install, tenant_session

    Session = sessionmaker(engine)
    install(Session)                        # once, at start-up

    with tenant_session(Session, token) as session:   # per request
        session.add(Note(body="hi"))
        notes = session.scalars(select(Note)).all()
    # committed here; rolled back (and re-raised) if the block raised

How: the session carries the token in ``session.info["tenant_guard_token"]``,
and an ``after_begin`` hook runs ``SELECT tenant_guard.set_context(:token)``
as the first statement of EVERY transaction the session begins (also the
next one after a commit inside the block), on the connection that
transaction uses. The context is transaction-scoped, so a pooled connection
goes back without a tenant.

The hook refuses (TenantContextError) a connection in AUTOCOMMIT isolation:
there ``set_context`` would run outside a transaction block (tenant_guard
answers 25P01) and the following statements would run without a context.
"""

from contextlib import contextmanager

from sqlalchemy import event, text

__all__ = ["install", "tenant_session", "TenantContextError", "TOKEN_KEY"]

TOKEN_KEY = "tenant_guard_token"
_SET = text("SELECT tenant_guard.set_context(:token)")


class TenantContextError(RuntimeError):
    """A session with a tenant token cannot get a tenant transaction."""


def _after_begin(session, transaction, connection):
    token = session.info.get(TOKEN_KEY)
    if token is None:
        return  # a session without a token: tenant_guard refuses its queries
    if (connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
            or getattr(connection.connection.dbapi_connection, "autocommit", False)):
        raise TenantContextError(
            "tenant_guard needs a transaction: this connection is in AUTOCOMMIT "
            "isolation, where set_context cannot last past its own statement"
        )
    connection.execute(_SET, {"token": token})


def install(session_factory):
    """Register the hook on a ``sessionmaker`` (or a Session class)."""
    if not event.contains(session_factory, "after_begin", _after_begin):
        event.listen(session_factory, "after_begin", _after_begin)
    return session_factory


@contextmanager
def tenant_session(session_factory, token, **kwargs):
    """A session whose every transaction runs under ``token``'s tenant; one
    transaction for the block (commit at the end, rollback on an exception)."""
    if not isinstance(token, str) or not token:
        raise TypeError("tenant_session: token must be a non-empty string")
    with session_factory(**kwargs) as session:
        session.info[TOKEN_KEY] = token
        with session.begin():
            yield session
