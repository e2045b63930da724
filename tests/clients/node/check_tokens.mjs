// Tokens minted by jose, sent by node-postgres (pg) the way an application would.
//
// Run by tests/clients/run, which provides:
//   PGHOST / PGPORT      the server (pg reads them)
//   TG_CLIENTS_DB        database with tenant_guard created in it
//   TG_CLIENTS_ROLE      the non-superuser application role to connect as
//   TG_CLIENTS_KEYS      JSON list of {"kid", "alg", "secret_hex"} registered
//                        with tenant_guard.add_key
//
// Prints one line per check: "ok node <what>" or "not ok node <what>: <reason>".
// Exits 1 if any check failed. Never prints a token or a secret.

import { isDeepStrictEqual } from 'node:util';
import { SignJWT, UnsecuredJWT } from 'jose';
import pg from 'pg';

const LANG = 'node';
const KEYS = Object.fromEntries(JSON.parse(process.env.TG_CLIENTS_KEYS).map((k) => [k.alg, k]));
const DB = process.env.TG_CLIENTS_DB;
const ROLE = process.env.TG_CLIENTS_ROLE;
const SECRET_TEXTS = Object.values(KEYS).map((k) => k.secret_hex);
const secretOf = (alg) => Uint8Array.from(Buffer.from(KEYS[alg].secret_hex, 'hex'));
let failures = 0;

class CheckFailed extends Error {}

function redact(text) {
  for (const s of SECRET_TEXTS) text = text.split(s).join('<redacted>');
  // Anything shaped like a compact JWS (a JSON header encodes to "eyJ...").
  return text.replace(/eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, '<token>');
}

function report(what, reason) {
  if (reason === undefined) {
    console.log(`ok ${LANG} ${what}`);
  } else {
    failures += 1;
    console.log(`not ok ${LANG} ${what}: ${redact(String(reason).split(/\s+/).join(' '))}`);
  }
}

async function check(what, fn) {
  try {
    await fn();
  } catch (e) {
    // A crash inside one check fails that check only.
    report(what, e instanceof CheckFailed ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? e}`);
    return;
  }
  report(what);
}

function expect(cond, reason) {
  if (!cond) throw new CheckFailed(reason);
}

const show = (v) => JSON.stringify(v);
const b64url = (s) => Buffer.from(s).toString('base64url');

function claimsFor(tenant, sub, extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { tenant_id: tenant, sub, iat: now, exp: now + 300, ...extra };
}

function mint(claims, alg, { kid = KEYS[alg].kid, secret = secretOf(alg) } = {}) {
  return new SignJWT(claims).setProtectedHeader({ alg, kid }).sign(secret);
}

const client = new pg.Client({
  database: DB,
  user: ROLE,
  connectionTimeoutMillis: 10000,
  statement_timeout: 10000,
});

async function contextNow() {
  const r = await client.query(
    'SELECT tenant_guard.tenant_id() AS tenant, tenant_guard.user_id() AS "user", tenant_guard.claims() AS claims',
  );
  return r.rows[0];
}

// One request-style transaction; returns what the context looked like.
async function request(token) {
  await client.query('BEGIN');
  try {
    const r = await client.query('SELECT tenant_guard.set_context($1) AS tenant', [token]);
    const seen = await contextNow();
    await client.query('COMMIT');
    return { returned: r.rows[0].tenant, seen };
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  }
}

async function accepted(what, token, claims) {
  let committed = false;
  await check(`${what} accepted`, async () => {
    const { returned, seen } = await request(token);
    committed = true;
    const want = String(claims.tenant_id);
    expect(returned === want, `set_context returned ${show(returned)}, want ${show(want)}`);
    expect(seen.tenant === want, `tenant_id() is ${show(seen.tenant)}, want ${show(want)}`);
    expect(seen.user === claims.sub, `user_id() is ${show(seen.user)}, want ${show(claims.sub)}`);
    expect(isDeepStrictEqual(seen.claims, claims), `claims() is ${show(seen.claims)}, want ${show(claims)}`);
  });
  await check(`${what}: context gone after COMMIT`, async () => {
    expect(committed, 'the request transaction did not commit');
    const seen = await contextNow();
    expect(seen.tenant === null, `tenant_id() after COMMIT is ${show(seen.tenant)}, want NULL`);
    expect(seen.user === null, `user_id() after COMMIT is ${show(seen.user)}, want NULL`);
    expect(seen.claims === null, 'claims() after COMMIT is not NULL');
  });
}

async function rejected(what, token, messagePattern) {
  await check(`${what} rejected`, async () => {
    let returned;
    try {
      ({ returned } = await request(token));
    } catch (e) {
      if (!(e instanceof pg.DatabaseError)) throw e;
      expect(e.code === '28000', `SQLSTATE ${e.code}, want 28000 (${e.message})`);
      expect(messagePattern.test(e.message), `rejected for another reason: ${e.message}`);
      const { tenant } = await contextNow();
      expect(tenant === null, `tenant_id() after the rejection is ${show(tenant)}, want NULL`);
      return;
    }
    throw new CheckFailed(`accepted (tenant ${show(returned)}), want SQLSTATE 28000`);
  });
}

async function main() {
  await client.connect();

  await check('connects as the non-superuser application role', async () => {
    const r = await client.query(
      'SELECT current_user AS who, rolsuper FROM pg_roles WHERE rolname = current_user',
    );
    expect(r.rows[0].who === ROLE, `connected as ${show(r.rows[0].who)}, want ${show(ROLE)}`);
    expect(r.rows[0].rolsuper === false, 'the application role is a superuser');
  });

  // Accepted: one per algorithm, each with its kid, plus an integer tenant.
  let c = claimsFor('acme', 'user-256', { role: 'reader' });
  await accepted('HS256 token with kid', await mint(c, 'HS256'), c);
  c = claimsFor('globex', 'user-384', { scopes: ['read', 'write'] });
  await accepted('HS384 token with kid', await mint(c, 'HS384'), c);
  c = claimsFor('initech', 'user-512', { name: 'Zo\u00eb M\u00fcller', nested: { a: [1, 2.5, null, true] } });
  await accepted('HS512 token with kid', await mint(c, 'HS512'), c);
  c = claimsFor(4711, 'user-int');
  await accepted('integer tenant_id', await mint(c, 'HS256'), c);

  // Rejected.
  const good = await mint(claimsFor('acme', 'user-256'), 'HS256');
  const [header, , signature] = good.split('.');
  const forged = b64url(JSON.stringify(claimsFor('evil-corp', 'user-256')));
  await rejected('tampered payload', `${header}.${forged}.${signature}`, /signature/);

  const wrong = Uint8Array.from({ length: 32 }, (_, i) => i);
  if (SECRET_TEXTS.includes(Buffer.from(wrong).toString('hex'))) {
    throw new Error('the wrong secret must differ from the registered ones');
  }
  await rejected('wrong secret', await mint(claimsFor('acme', 'user-256'), 'HS256', { secret: wrong }), /signature/);

  // An unsigned JWT has an empty third segment, which tenant_guard refuses
  // as malformed before it reads the header; with a leftover signature
  // appended the header's alg "none" is what gets it refused.
  const noneToken = new UnsecuredJWT(claimsFor('acme', 'user-256')).encode();
  await rejected('alg none', noneToken, /none|malformed/);
  await rejected('alg none with a leftover signature', noneToken + signature, /none/);

  const now = Math.floor(Date.now() / 1000);
  const old = { ...claimsFor('acme', 'user-256'), iat: now - 7200, exp: now - 3600 };
  await rejected('expired token', await mint(old, 'HS256'), /expired/);

  // Header says HS256 and is correctly HMAC-SHA256-signed with the HS512
  // key's own secret, but that key is registered for HS512.
  const mismatch = await mint(claimsFor('acme', 'user-256'), 'HS256', {
    kid: KEYS.HS512.kid,
    secret: secretOf('HS512'),
  });
  await rejected('header alg mismatching the key', mismatch, /algorithm/);

  await client.end();
  process.exitCode = failures ? 1 : 0;
}

main().catch((e) => {
  // Outside any check: report without the stack's argument values.
  console.error(`node client crashed: ${redact(`${e?.name ?? 'Error'}: ${e?.message ?? e}`)}`);
  process.exit(2);
});
