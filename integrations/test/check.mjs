// Checks the node integrations (node-postgres, Drizzle, Prisma) against a real
// server, as an application role that does not own the tables. Run by
// tests/integrations/run, which creates the database, the role, the key and
// the seed rows, and passes them in the environment:
//   PGHOST PGPORT            the server        TG_INT_DB    the database
//   TG_INT_ROLE              the app role      TG_INT_ADMIN a superuser (checks)
//   TG_INT_KID TG_INT_SECRET_HEX  the HS256 key the tokens are signed with
//   TG_INT_SUITES            which suites (default: all three)
// Prints "ok <suite> <check>" / "not ok <suite> <check>: <reason>". Never
// prints a token or the secret.
//
// Each suite runs the same checks twice: through its helper (every check must
// pass), and with the helper bypassed the way the pitfall it avoids would
// (the named checks must FAIL then: proof that they can).

import { SignJWT } from 'jose';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, integer, serial, text } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { PrismaPg } from '@prisma/adapter-pg';
import prismaPkg from './generated/prisma/index.js';
import { withTenant as pgWithTenant } from '../node-postgres/tenant-guard.mjs';
import { withTenant as drizzleWithTenant } from '../drizzle/tenant-guard.mjs';
import { tenantGuard } from '../prisma/tenant-guard.mjs';

const { PrismaClient } = prismaPkg;
const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} not set`); return v; };
const DB = env('TG_INT_DB');
const ROLE = env('TG_INT_ROLE');
const ADMIN = process.env.TG_INT_ADMIN ?? 'postgres';
const SECRET = Buffer.from(env('TG_INT_SECRET_HEX'), 'hex');
const KID = env('TG_INT_KID');
const SUITES = (process.env.TG_INT_SUITES ?? 'node-postgres drizzle prisma').split(/\s+/).filter(Boolean);
// Seed ids (tests/integrations/run): suite n has projects n*1000+1 (tenant
// <suite>-a) and n*1000+2 (<suite>-b), each with one task.
const BASE = { psycopg: 1000, sqlalchemy: 2000, django: 3000, 'node-postgres': 4000, drizzle: 5000, prisma: 6000 };

let failed = 0;
const ok = (s, what) => console.log(`ok ${s} ${what}`);
const notOk = (s, what, why) => { failed++; console.log(`not ok ${s} ${what}: ${why}`); };
// The driver's error when there is one (Drizzle's own error message lists
// the query's parameters: never print it, a parameter may be a token).
const reason = (e) => {
  const err = e?.cause?.code ? e.cause : e;
  if (err !== e || !/params:/.test(String(err?.message))) {
    return (err?.code ? `${err.code} ` : '') + String(err?.message ?? err).split('\n')[0].slice(0, 200);
  }
  return 'a query failed';
};

const tokens = new Map();
async function token(tenant) {
  if (!tokens.has(tenant)) {
    tokens.set(tenant, await new SignJWT({ tenant_id: tenant })
      .setProtectedHeader({ alg: 'HS256', kid: KID }).setSubject(`user-of-${tenant}`)
      .setIssuedAt().setExpirationTime('10m').sign(SECRET));
  }
  return tokens.get(tenant);
}

const appConfig = (max) => ({ host: process.env.PGHOST, port: Number(process.env.PGPORT ?? 5432), user: ROLE, database: DB, max });
const admin = new pg.Pool({ host: process.env.PGHOST, port: Number(process.env.PGPORT ?? 5432), user: ADMIN, database: DB, max: 1 });
const adminRow = async (q, p) => (await admin.query(q, p)).rows;
const expect = (cond, msg) => { if (!cond) throw new Error(msg); };
const sorted = (xs) => [...xs].sort();

// ------------------------------------------------------------ the checks
// A suite: { request(tenant, fn), ops: {...}, unguarded(): rows or throws }.
function checks(name) {
  const base = BASE[name], A = `${name}-a`, B = `${name}-b`;
  const mineOnly = (rows, t) => rows.length > 0 && rows.every((r) => r.tenantId === t);
  return {
    async reads(s) {
      for (const [t, own, other] of [[A, base + 1, base + 2], [B, base + 2, base + 1]]) {
        const rows = await s.request(t, (h) => s.ops.list(h));
        expect(mineOnly(rows, t), `${t} saw tenants ${sorted(new Set(rows.map((r) => r.tenantId)))}`);
        expect(rows.some((r) => r.id === own) && !rows.some((r) => r.id === other), `${t} rows ${rows.map((r) => r.id)}`);
      }
    },
    async writes(s) {
      await s.request(A, (h) => s.ops.create(h, base + 10, 'a-new'));
      const [row] = await adminRow('SELECT tenant_id FROM projects WHERE id = $1', [base + 10]);
      expect(row?.tenant_id === A, `insert got tenant ${row?.tenant_id}`);
      const seenByB = await s.request(B, (h) => s.ops.list(h));
      expect(!seenByB.some((r) => r.id === base + 10), 'B saw A\'s new row');
      const n = await s.request(A, (h) => s.ops.renameAll(h, `renamed-by-${A}`));
      const [{ count }] = await adminRow('SELECT count(*)::int AS count FROM projects WHERE name = $1 AND tenant_id <> $2', [`renamed-by-${A}`, A]);
      expect(count === 0, `an update under ${A} renamed ${count} rows of other tenants`);
      expect(n >= 2, `update reported ${n} rows`);
    },
    async 'nested writes'(s) {
      await s.request(A, (h) => s.ops.createNested(h, base + 11, 'a-nested', ['one', 'two']));
      const rows = await adminRow('SELECT tenant_id FROM tasks WHERE project_id = $1', [base + 11]);
      expect(rows.length === 2 && rows.every((r) => r.tenant_id === A), `nested tasks: ${rows.map((r) => r.tenant_id)}`);
    },
    async upserts(s) {
      // Under A, upsert B's project id: B's row must stay as it was, and A
      // must not end up seeing it.
      let err;
      try { await s.request(A, (h) => s.ops.upsert(h, base + 2, 'hijacked')); } catch (e) { err = e; }
      const [b] = await adminRow('SELECT tenant_id, name FROM projects WHERE id = $1', [base + 2]);
      expect(b.tenant_id === B && b.name !== 'hijacked', `B's row became ${b.tenant_id}/${b.name}`);
      const rows = await s.request(A, (h) => s.ops.list(h));
      expect(!rows.some((r) => r.id === base + 2), 'A sees B\'s id after the upsert');
      void err; // refused (unique or RLS violation) or a no-op: both keep B's row
    },
    async 'raw queries'(s) {
      const tenants = await s.request(A, (h) => s.ops.rawTenants(h));
      expect(tenants.length > 0 && tenants.every((t) => t === A), `raw saw ${sorted(new Set(tenants))}`);
    },
    async 'transactions that throw'(s) {
      let thrown;
      try {
        await s.request(A, async (h) => { await s.ops.create(h, base + 12, 'doomed'); throw new Error('boom'); });
      } catch (e) { thrown = e; }
      expect(thrown?.message === 'boom', `the error was not rethrown: ${reason(thrown)}`);
      const rows = await adminRow('SELECT 1 FROM projects WHERE id = $1', [base + 12]);
      expect(rows.length === 0, 'the row written before the throw stayed committed');
    },
    async 'concurrent pool'(s) {
      // 24 concurrent requests, alternating tenants, on a pool of 2.
      const jobs = Array.from({ length: 24 }, (_, i) => {
        const t = i % 2 ? A : B;
        return s.request(t, async (h) => {
          const rows = await s.ops.list(h);
          await s.ops.pause(h);
          const raw = await s.ops.rawTenants(h);
          return { t, rows, raw };
        });
      });
      for (const { t, rows, raw } of await Promise.all(jobs)) {
        expect(mineOnly(rows, t) && raw.every((x) => x === t), `a ${t} request saw other tenants`);
      }
      // Afterwards no pooled connection carries a tenant: a query outside the
      // helper is refused on every connection, never answered.
      for (let i = 0; i < 4; i++) {
        let rows;
        try { rows = await s.unguarded(); } catch (e) { continue; }
        throw new Error(`a query outside the helper saw tenants ${sorted(new Set(rows.map((r) => r.tenantId)))} (a context leaked into the pool)`);
      }
    },
  };
}

async function runSuite(name, s, { bypassed = null } = {}) {
  const all = checks(name);
  for (const [what, fn] of Object.entries(all)) {
    if (bypassed && !bypassed.mustFail.includes(what)) continue;
    let err;
    try { await fn(s); } catch (e) { err = e; }
    if (!bypassed) {
      err ? notOk(name, what, reason(err)) : ok(name, what);
    } else if (err) {
      ok(name, `${what} fails when ${bypassed.how} (${reason(err)})`);
    } else {
      notOk(name, `${what} fails when ${bypassed.how}`, 'it passed: the check cannot tell');
    }
  }
}

// ------------------------------------------------------------ the suites
const pause = 'SELECT 1 FROM pg_sleep(0.02)';

function pgOps() {
  return {
    list: async (c) => (await c.query('SELECT id, tenant_id FROM projects ORDER BY id')).rows.map((r) => ({ id: r.id, tenantId: r.tenant_id })),
    create: (c, id, name) => c.query('INSERT INTO projects (id, name) VALUES ($1, $2)', [id, name]),
    createNested: async (c, id, name, titles) => {
      await c.query('INSERT INTO projects (id, name) VALUES ($1, $2)', [id, name]);
      for (const t of titles) await c.query('INSERT INTO tasks (project_id, title) VALUES ($1, $2)', [id, t]);
    },
    upsert: (c, id, name) => c.query('INSERT INTO projects (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name', [id, name]),
    renameAll: async (c, name) => (await c.query('UPDATE projects SET name = $1', [name])).rowCount,
    rawTenants: async (c) => (await c.query('SELECT tenant_id FROM projects')).rows.map((r) => r.tenant_id),
    pause: (c) => c.query(pause),
  };
}

async function nodePostgres() {
  const name = 'node-postgres';
  const pool = new pg.Pool(appConfig(2));
  const unguarded = async () => (await pool.query('SELECT tenant_id FROM projects')).rows.map((r) => ({ tenantId: r.tenant_id }));
  const ops = pgOps();
  await runSuite(name, { request: async (t, fn) => pgWithTenant(pool, await token(t), fn), ops, unguarded });
  // Bypassed 1: no helper at all (queries straight on the pool).
  await runSuite(name, { request: async (t, fn) => fn(pool), ops, unguarded },
    { bypassed: { how: 'queries skip withTenant', mustFail: ['reads', 'raw queries'] } });
  // Bypassed 2: a session-scoped context (is_local => false) on pooled
  // connections, no transaction: the next request inherits the tenant, and a
  // throw does not undo the write before it.
  const naive = async (t, fn) => {
    const c = await pool.connect();
    try { await c.query('SELECT tenant_guard.set_context($1, false)', [await token(t)]); return await fn(c); } finally { c.release(); }
  };
  await runSuite(name, { request: naive, ops, unguarded },
    { bypassed: { how: 'the context is session-scoped (is_local => false) without a transaction', mustFail: ['transactions that throw', 'concurrent pool'] } });
  await pool.end();
}

const projects = pgTable('projects', { id: integer('id').primaryKey(), tenantId: text('tenant_id'), name: text('name').notNull() });
const tasks = pgTable('tasks', { id: serial('id').primaryKey(), tenantId: text('tenant_id'), projectId: integer('project_id').notNull(), title: text('title').notNull() });

async function drizzleSuite() {
  const name = 'drizzle';
  const pool = new pg.Pool(appConfig(2));
  const db = drizzle(pool);
  const ops = {
    list: (tx) => tx.select({ id: projects.id, tenantId: projects.tenantId }).from(projects).orderBy(projects.id),
    create: (tx, id, n) => tx.insert(projects).values({ id, name: n }),
    createNested: async (tx, id, n, titles) => {
      const [p] = await tx.insert(projects).values({ id, name: n }).returning({ id: projects.id });
      await tx.insert(tasks).values(titles.map((title) => ({ projectId: p.id, title })));
    },
    upsert: (tx, id, n) => tx.insert(projects).values({ id, name: n }).onConflictDoUpdate({ target: projects.id, set: { name: n } }),
    renameAll: async (tx, n) => (await tx.update(projects).set({ name: n })).rowCount,
    rawTenants: async (tx) => (await tx.execute(sql`SELECT tenant_id FROM projects`)).rows.map((r) => r.tenant_id),
    pause: (tx) => tx.execute(sql.raw(pause)),
  };
  const unguarded = () => db.select({ tenantId: projects.tenantId }).from(projects);
  await runSuite(name, { request: async (t, fn) => drizzleWithTenant(db, await token(t), fn), ops, unguarded });
  // Bypassed: the unit of work runs on `db` instead of the transaction.
  await runSuite(name, { request: async (t, fn) => drizzleWithTenant(db, await token(t), () => fn(db)), ops, unguarded },
    { bypassed: { how: 'queries use db instead of withTenant\'s tx', mustFail: ['reads', 'raw queries', 'transactions that throw'] } });
  await pool.end();
}

async function prismaSuite() {
  const name = 'prisma';
  const base = new PrismaClient({ adapter: new PrismaPg(appConfig(2)) });
  const prisma = base.$extends(tenantGuard());
  const ops = {
    list: (tx) => tx.project.findMany({ select: { id: true, tenantId: true }, orderBy: { id: 'asc' } }),
    create: (tx, id, n) => tx.project.create({ data: { id, name: n } }),
    createNested: (tx, id, n, titles) => tx.project.create({ data: { id, name: n, tasks: { create: titles.map((title) => ({ title })) } } }),
    upsert: (tx, id, n) => tx.project.upsert({ where: { id }, create: { id, name: n }, update: { name: n } }),
    renameAll: async (tx, n) => (await tx.project.updateMany({ data: { name: n } })).count,
    rawTenants: async (tx) => (await tx.$queryRaw`SELECT tenant_id FROM projects`).map((r) => r.tenant_id),
    pause: (tx) => tx.$queryRawUnsafe(pause),
  };
  const unguarded = () => prisma.project.findMany({ select: { tenantId: true } });
  await runSuite(name, { request: async (t, fn) => prisma.$withTenant(await token(t), fn), ops, unguarded });
  // Bypassed 1: queries on the client, not through $withTenant.
  await runSuite(name, { request: async (t, fn) => fn(prisma), ops, unguarded },
    { bypassed: { how: 'queries skip $withTenant', mustFail: ['reads', 'raw queries'] } });
  // Bypassed 2: the measured pitfall, a query hook that sets the context in a
  // batch transaction of its own around EACH query. Isolation holds query
  // by query, but the user's interactive $transaction is no longer atomic.
  const perQuery = (tok) => base.$extends({
    query: {
      $allModels: {
        async $allOperations({ args, query }) {
          const [, result] = await base.$transaction([base.$executeRaw`SELECT tenant_guard.set_context(${tok})`, query(args)]);
          return result;
        },
      },
    },
  });
  await runSuite(name, { request: async (t, fn) => perQuery(await token(t)).$transaction((tx) => fn(tx)), ops, unguarded },
    { bypassed: { how: 'a query hook sets the context per query', mustFail: ['transactions that throw'] } });
  await base.$disconnect();
}

const SUITE_FNS = { 'node-postgres': nodePostgres, drizzle: drizzleSuite, prisma: prismaSuite };
try {
  for (const s of SUITES) {
    try { await SUITE_FNS[s](); } catch (e) { notOk(s, 'suite', reason(e)); }
  }
} finally {
  await admin.end();
}
process.exit(failed ? 1 : 0);
