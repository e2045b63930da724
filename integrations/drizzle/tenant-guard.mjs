// tenant_guard for Drizzle ORM (drizzle-orm/node-postgres): withTenant runs a
// unit of work in ONE Drizzle transaction whose first statement sets the
// tenant context.
//
//   import { withTenant } from './tenant-guard.mjs';
//   const mine = await withTenant(db, token, (tx) => tx.select().from(notes));
//
// Every query of the unit of work must go through `tx` (the transaction),
// never through `db`: a query on `db` runs on another pooled connection,
// outside the transaction, without a context (tenant_guard refuses it with
// 42501 rather than answering it). The token is a bind parameter. The context
// is transaction-scoped, so it ends at COMMIT/ROLLBACK and the pooled
// connection carries no tenant into the next request. A throw inside fn rolls
// back everything fn did and is rethrown. Nested `tx.transaction(...)` calls
// are savepoints inside the same transaction: they keep the context.

import { sql } from 'drizzle-orm';

export async function withTenant(db, token, fn, config) {
  if (typeof token !== 'string' || token.length === 0) {
    throw new TypeError('withTenant: token must be a non-empty string');
  }
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT tenant_guard.set_context(${token})`);
    return fn(tx);
  }, config);
}
