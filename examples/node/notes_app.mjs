// A multi-tenant notes service on tenant_guard, with node-postgres (pg) and jose.
//
// The whole pattern, per request:
//
//   const token = await signToken(user, tenant);            // the backend vouches for the tenant
//   await client.query('BEGIN');
//   await client.query('SELECT tenant_guard.set_context($1)', [token]);
//   ...the request's queries...                              // row-level security filters them
//   await client.query('COMMIT');                            // the context ends here
//
// The queries never say `WHERE tenant_id = ...`: the database adds it, so a
// forgotten filter cannot leak another tenant's rows, and a forgotten
// set_context is an error rather than an empty (or full) result.
//
// Settings (environment):
//   PGHOST, PGPORT     the server (read by pg)
//   NOTES_DB           an existing database to set the demo up in (default notes_demo)
//   NOTES_ADMIN_USER   a superuser, for the one-time setup (default postgres)
//   NOTES_APP_USER     the application's role, created if missing (default notes_app)
//
// Run by examples/run; by hand, see examples/README.md. Prints what happens
// ("# ..." lines) and one line per check, "ok node <what>" or
// "not ok node <what>: <reason>"; exits 1 if a check failed. It never prints
// a token or the secret.

import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import pg from 'pg';

const DB = process.env.NOTES_DB ?? 'notes_demo';
const ADMIN_USER = process.env.NOTES_ADMIN_USER ?? 'postgres';
const APP_USER = process.env.NOTES_APP_USER ?? 'notes_app';

// The secret the backend shares with the database. In production it comes
// from your secret store, and the DBA registers it once with add_key; this
// demo makes a fresh one per run. HS256 needs at least 32 random bytes.
const JWT_SECRET = randomBytes(32);
const JWT_KID = `notes-${randomBytes(4).toString('hex')}`; // names the key; a kid is never reused
const TOKEN_LIFETIME = '60s'; // a token only has to outlive one request

// ------------------------------------------------------------------- setup
// What a DBA (or a migration) runs once, on a superuser connection.
async function setupDemo(admin) {
  await admin.query('CREATE EXTENSION IF NOT EXISTS tenant_guard');
  // The secret travels as a bind parameter (a Buffer is sent as bytea),
  // never inside the SQL text.
  await admin.query("SELECT tenant_guard.add_key($1, $2, 'HS256')", [JWT_KID, JWT_SECRET]);

  await admin.query('DROP TABLE IF EXISTS notes');
  await admin.query(`
    CREATE TABLE notes (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id  text NOT NULL,
        author     text NOT NULL DEFAULT tenant_guard.user_id(),  -- the token's sub
        body       text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await admin.query('CREATE INDEX ON notes (tenant_id, id)');
  // Row-level security policies, a tenant_id default taken from the
  // context, and triggers that keep a row's tenant fixed.
  await admin.query("SELECT * FROM tenant_guard.protect('notes')");

  // The application connects as an ordinary role: superusers and BYPASSRLS
  // roles are not subject to row-level security.
  const app = admin.escapeIdentifier(APP_USER);
  const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_USER]);
  if (rowCount === 0) await admin.query(`CREATE ROLE ${app} LOGIN`);
  await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO ${app}`);
}

// ------------------------------------------------------- the request path
// A short-lived token saying "this request works for `tenant`". Call it only
// after your login/session layer has established that `user` belongs to
// `tenant`: whoever holds the secret can name any tenant.
function signToken(user, tenant, secret = JWT_SECRET) {
  return new SignJWT({ tenant_id: tenant })
    .setProtectedHeader({ alg: 'HS256', kid: JWT_KID })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(TOKEN_LIFETIME)
    .sign(secret);
}

// BEGIN; set_context(token); fn(client); COMMIT (ROLLBACK if fn throws).
async function inTenant(pool, user, tenant, fn) {
  const token = await signToken(user, tenant);
  const client = await pool.connect();
  let broken; // a connection that could not even roll back is discarded
  try {
    await client.query('BEGIN');
    // With a values array pg uses the extended protocol: the token is a bind
    // parameter and never part of a logged SQL text.
    await client.query('SELECT tenant_guard.set_context($1)', [token]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK').catch((rollbackError) => { broken = rollbackError; });
    throw e;
  } finally {
    client.release(broken);
  }
}

// One web request of the notes service.
async function handleRequest(pool, user, tenant, action, payload = {}) {
  return inTenant(pool, user, tenant, async (client) => {
    switch (action) {
      case 'create_note': {
        // Neither tenant_id nor author: the defaults fill them from the context.
        const r = await client.query(
          'INSERT INTO notes (body) VALUES ($1) RETURNING id, tenant_id, author',
          [payload.body],
        );
        return r.rows[0];
      }
      case 'list_notes': {
        // No WHERE tenant_id = ...: row-level security adds it.
        const r = await client.query('SELECT id, tenant_id, author, body FROM notes ORDER BY id');
        return r.rows;
      }
      default:
        throw new Error(`unknown action ${action}`);
    }
  });
}

// -------------------------------------------------------------- the demo
let failures = 0;

function check(what, ok, reason = '') {
  if (ok) {
    console.log(`ok node ${what}`);
  } else {
    failures += 1;
    console.log(`not ok node ${what}: ${reason}`);
  }
}

// Runs fn; returns the SQLSTATE it failed with, or null if it succeeded.
async function sqlstateOf(fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof pg.DatabaseError) return e.code;
    throw e;
  }
  return null;
}

const show = (v) => JSON.stringify(v);

async function main() {
  const admin = new pg.Client({ database: DB, user: ADMIN_USER });
  await admin.connect();
  try {
    await setupDemo(admin);
  } finally {
    await admin.end();
  }
  console.log(`# set up database ${DB}: key ${JWT_KID}, protected table notes, role ${APP_USER}`);

  // The application's pool. With max: 1 every request below reuses the same
  // connection, whatever its tenant: the context never outlives its transaction.
  const pool = new pg.Pool({ database: DB, user: APP_USER, max: 1 });
  try {
    const a1 = await handleRequest(pool, 'alice', 'acme', 'create_note', { body: 'Q3 roadmap' });
    const g1 = await handleRequest(pool, 'grace', 'globex', 'create_note', { body: 'Globex launch plan' });
    const a2 = await handleRequest(pool, 'arthur', 'acme', 'create_note', { body: 'Offsite in May' });
    for (const n of [a1, g1, a2]) console.log(`# note ${n.id} created for tenant ${n.tenant_id} by ${n.author}`);
    const made = [a1, g1, a2].map((n) => `${n.tenant_id}/${n.author}`);
    check(
      'a new note takes its tenant and author from the token',
      show(made) === show(['acme/alice', 'globex/grace', 'acme/arthur']),
      `got ${show(made)}`,
    );

    const acme = await handleRequest(pool, 'alice', 'acme', 'list_notes');
    const globex = await handleRequest(pool, 'grace', 'globex', 'list_notes');
    console.log(`# acme lists ${show(acme.map((n) => n.body))}; globex lists ${show(globex.map((n) => n.body))}`);
    check(
      'acme lists exactly its own notes',
      show(acme.map((n) => n.id)) === show([a1.id, a2.id]) && acme.every((n) => n.tenant_id === 'acme'),
      `got ${show(acme)}`,
    );
    check(
      'globex lists exactly its own notes',
      show(globex.map((n) => n.id)) === show([g1.id]) && globex.every((n) => n.tenant_id === 'globex'),
      `got ${show(globex)}`,
    );

    const peek = await inTenant(pool, 'alice', 'acme', (c) =>
      c.query('SELECT body FROM notes WHERE id = $1', [g1.id]));
    check('acme cannot read a globex note even by its id', peek.rowCount === 0, 'the globex note was returned');

    let state = await sqlstateOf(() =>
      inTenant(pool, 'alice', 'acme', (c) =>
        c.query("INSERT INTO notes (tenant_id, body) VALUES ('globex', 'spam')")));
    check('acme cannot write a note for globex (42501)', state === '42501', `SQLSTATE ${state}`);

    // The bug tenant_guard is for: a code path that forgot set_context.
    state = await sqlstateOf(() => pool.query('SELECT count(*) FROM notes'));
    check('a request without set_context fails with 42501', state === '42501', `SQLSTATE ${state}`);

    const { rows: [{ tenant }] } = await pool.query('SELECT tenant_guard.tenant_id() AS tenant');
    check('no context is left on the connection between requests', tenant === null, `tenant_id() is ${show(tenant)}`);

    // A token the backend did not sign (another secret) is refused.
    state = await sqlstateOf(async () => {
      const forged = await signToken('mallory', 'globex', randomBytes(32));
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT tenant_guard.set_context($1)', [forged]);
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
    });
    check('a token signed with another secret is refused (28000)', state === '28000', `SQLSTATE ${state}`);
  } finally {
    await pool.end();
  }
  process.exitCode = failures ? 1 : 0;
}

main().catch((e) => {
  console.error(`notes_app crashed: ${e?.name ?? 'Error'}: ${e?.message ?? e}`);
  process.exit(2);
});
