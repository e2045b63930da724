"""tenant_guard for psycopg 3 (and psycopg_pool): one transaction per unit of
work, the tenant context set first inside it.

    from tenant_guard_psycopg import tenant_transaction, tenant_connection

    with tenant_transaction(conn, token) as conn:        # one connection
        rows = conn.execute("SELECT * FROM notes").fetchall()

    with tenant_connection(pool, token) as conn:         # a psycopg_pool pool
        rows = conn.execute("SELECT * FROM notes").fetchall()

The token is a bind parameter (psycopg 3 binds server-side), never SQL text.
The context is transaction-scoped (``is_local => true``): it ends at COMMIT or
ROLLBACK, so a pooled connection goes back without a tenant. An exception
inside the block rolls back everything the block did and propagates.
"""

from contextlib import contextmanager

from psycopg import pq

__all__ = ["tenant_transaction", "tenant_connection", "TenantContextError"]


class TenantContextError(RuntimeError):
    """The connection is in a state where a tenant transaction cannot start."""


@contextmanager
def tenant_transaction(conn, token):
    """Run the block in one transaction on ``conn`` whose context is ``token``'s.

    Works in autocommit mode (a BEGIN is sent) and in psycopg's default
    non-autocommit mode, provided no transaction is open yet: a context set
    inside someone else's transaction would outlive this block and end with
    that transaction instead.
    """
    if not isinstance(token, str) or not token:
        raise TypeError("tenant_transaction: token must be a non-empty string")
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise TenantContextError(
            "tenant_transaction needs a connection with no open transaction "
            "(commit or roll back first, or use a fresh pooled connection)"
        )
    with conn.transaction():
        conn.execute("SELECT tenant_guard.set_context(%s)", (token,))
        yield conn


@contextmanager
def tenant_connection(pool, token):
    """Borrow a connection from a ``psycopg_pool.ConnectionPool`` and run the
    block in one tenant transaction on it."""
    with pool.connection() as conn:
        with tenant_transaction(conn, token):
            yield conn
