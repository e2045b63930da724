// tenant_guard for node-postgres (pg): one transaction per unit of work, the
// tenant context set first inside it.
//
//   import { withTenant } from './tenant-guard.mjs';
//   const rows = await withTenant(pool, token, async (client) =>
//     (await client.query('SELECT * FROM notes')).rows);
//
// withTenant(pool, token, fn) checks a client out of the pool, runs BEGIN,
// `SELECT tenant_guard.set_context($1)` with the token as a bind parameter
// (never in the SQL text, so it cannot reach the server log inside a
// statement), then fn(client); COMMIT when fn resolves, ROLLBACK when it
// throws (the error is rethrown). The context is transaction-scoped
// (`is_local => true`), so it ends with the transaction: the connection goes
// back to the pool without a tenant. A connection whose ROLLBACK failed is
// destroyed instead of being returned to the pool.

export async function withTenant(pool, token, fn) {
  if (typeof token !== 'string' || token.length === 0) {
    throw new TypeError('withTenant: token must be a non-empty string');
  }
  const client = await pool.connect();
  let broken;
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT tenant_guard.set_context($1)', [token]);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr;
      }
      throw err;
    }
  } finally {
    // release(err) destroys the connection rather than pooling it.
    client.release(broken);
  }
}
