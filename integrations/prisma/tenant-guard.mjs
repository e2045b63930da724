// tenant_guard for Prisma Client (with a driver adapter such as
// @prisma/adapter-pg): a client extension adding `$withTenant`.
//
//   import { tenantGuard } from './tenant-guard.mjs';
//   const prisma = new PrismaClient({ adapter }).$extends(tenantGuard());
//   const notes = await prisma.$withTenant(token, (tx) => tx.note.findMany());
//
// $withTenant(token, fn, options) runs fn in ONE interactive transaction whose
// first statement is `SELECT tenant_guard.set_context($1)` (the token is a
// bind parameter). Everything fn does through `tx` -- reads, nested writes,
// upserts, $queryRaw -- is in that transaction, so a throw rolls ALL of it
// back and is rethrown (a query hook that wrapped each query in its own
// transaction would commit the queries before the throw). The context is
// transaction-scoped: the pooled connection goes back without a tenant.
//
// `options` are Prisma's interactive-transaction options. An interactive
// transaction holds one pooled connection until fn settles, so keep slow work
// (HTTP calls, rendering) outside fn. Defaults here: maxWait 10 s (time to get
// a connection; Prisma's own default of 2 s fails with P2028 as soon as more
// requests wait than the pool has connections), timeout 10 s.
//
// Queries on the extended client OUTSIDE $withTenant run without a context
// and tenant_guard refuses them (42501); `$withTenant` is the only way in.

// No import: the extension is a plain object (what Prisma.defineExtension
// would wrap), so this file works with any generated client.

export const DEFAULT_TRANSACTION_OPTIONS = Object.freeze({ maxWait: 10_000, timeout: 10_000 });

export function tenantGuard(defaults = {}) {
  return {
    name: 'tenant-guard',
    client: {
      // `this` is the (extended) client.
      async $withTenant(token, fn, options = {}) {
        if (typeof token !== 'string' || token.length === 0) {
          throw new TypeError('$withTenant: token must be a non-empty string');
        }
        return this.$transaction(
          async (tx) => {
            await tx.$queryRaw`SELECT tenant_guard.set_context(${token})::text AS tenant`;
            return fn(tx);
          },
          { ...DEFAULT_TRANSACTION_OPTIONS, ...defaults, ...options },
        );
      },
    },
  };
}
