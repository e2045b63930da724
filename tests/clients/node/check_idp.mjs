// Identity-provider tokens with jose: key pairs made by jose, the key set
// written by jose's exportJWK, imported with tenant_guard.add_jwks; tokens
// signed by jose for every public-key algorithm, sent by node-postgres as the
// application role; rotation and every kind of revocation, including a
// session context that stops working after revoke_subject in another
// connection.
//
// Run by tests/clients/run (PGHOST/PGPORT, TG_CLIENTS_DB, TG_CLIENTS_ROLE,
// TG_CLIENTS_ADMIN). Prints "ok node-idp <what>" / "not ok node-idp <what>:
// <reason>"; never a token or a key.

import { createHmac, createPublicKey } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import pg from 'pg';

const LANG = 'node-idp';
const ISS = 'https://node.idp.example/';
let failures = 0;

const redact = (t) => t.replace(/eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, '<token>');
function report(what, reason) {
  if (reason === undefined) console.log(`ok ${LANG} ${what}`);
  else {
    failures += 1;
    console.log(`not ok ${LANG} ${what}: ${redact(String(reason).split(/\s+/).join(' '))}`);
  }
}
async function check(what, fn) {
  try {
    await fn();
  } catch (e) {
    report(what, `${e?.name ?? 'Error'}: ${e?.message ?? e}`);
    return;
  }
  report(what);
}
function expect(cond, reason) {
  if (!cond) throw new Error(reason);
}

const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];
const kid = (alg) => `node-${alg.toLowerCase()}`;
const KEYS = {};
for (const alg of ALGS) {
  KEYS[alg] = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
}

async function jwkOf(alg, pair, k) {
  return { ...(await exportJWK(pair.publicKey)), kid: k, alg, use: 'sig' };
}

let seq = 0;
async function mint(alg, { key, kidName, ...claims } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const body = { org_id: 'acme', jti: `node-${alg}-${(seq += 1)}-${now}`, ...claims };
  const token = await new SignJWT(body)
    .setProtectedHeader({ alg, kid: kidName ?? kid(alg) })
    .setIssuer(claims.iss ?? ISS)
    .setAudience(claims.aud ?? 'api')
    .setSubject(claims.sub ?? 'node-user')
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(key ?? KEYS[alg].privateKey);
  return { token, body };
}

const admin = new pg.Client({ database: process.env.TG_CLIENTS_DB, user: process.env.TG_CLIENTS_ADMIN });
const app = new pg.Client({ database: process.env.TG_CLIENTS_DB, user: process.env.TG_CLIENTS_ROLE });
await admin.connect();
await app.connect();
await app.query("SET statement_timeout = '10s'");
const notices = [];
app.on('notice', (n) => notices.push(n.message));

async function setContext(token) {
  await app.query('BEGIN');
  try {
    const { rows } = await app.query('SELECT tenant_guard.set_context($1) AS t, tenant_guard.user_id() AS u', [token]);
    await app.query('COMMIT');
    return rows[0];
  } catch (e) {
    await app.query('ROLLBACK');
    throw e;
  }
}

async function refused(token, pattern) {
  try {
    await setContext(token);
  } catch (e) {
    expect(e.code === '28000', `SQLSTATE ${e.code}, want 28000 (${e.message})`);
    const text = `${e.message} / ${e.detail ?? ''}`;
    expect(pattern.test(text), `message ${JSON.stringify(text)} does not match ${pattern}`);
    return;
  }
  throw new Error('accepted');
}

let jwks = { keys: await Promise.all(ALGS.map((a) => jwkOf(a, KEYS[a], kid(a)))) };

await check('JWKS written by jose exportJWK imported with add_jwks', async () => {
  const { rows } = await admin.query(
    'SELECT kid, algorithm, action FROM tenant_guard.add_jwks($1::jsonb, $2) ORDER BY kid', [JSON.stringify(jwks), ISS]);
  expect(rows.length === 9 && rows.every((r) => r.action === 'added' && r.kid === kid(r.algorithm)),
    `add_jwks said ${JSON.stringify(rows)}`);
  await admin.query("SELECT tenant_guard.set_issuer($1, audience => 'api', tenant_claim => 'org_id')", [ISS]);
});

for (const alg of ALGS) {
  await check(`${alg} token signed by jose accepted`, async () => {
    const { token } = await mint(alg);
    const { t, u } = await setContext(token);
    expect(t === 'acme' && u === 'node-user', `context ${t}, ${u}`);
  });
  await check(`${alg} token signed by another key refused`, async () => {
    const other = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    const { token } = await mint(alg, { key: other.privateKey });
    await refused(token, /signature does not match/);
  });
}

await check('HS256 signed with the RSA public key refused (algorithm confusion)', async () => {
  const pem = createPublicKey(await exportJWKAsKeyObject(KEYS.RS256.publicKey)).export({ type: 'spki', format: 'pem' });
  const b = (s) => Buffer.from(s).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b(JSON.stringify({ alg: 'HS256', kid: kid('RS256') }))}.${b(JSON.stringify({ iss: ISS, aud: 'api', org_id: 'acme', exp: now + 60 }))}`;
  const token = `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
  await refused(token, /does not match its key.*registered for RS256/);
});
async function exportJWKAsKeyObject(k) {
  return { key: await exportJWK(k), format: 'jwk' };
}

await check('token of another issuer refused', async () => {
  await refused((await mint('EdDSA', { iss: 'https://evil.example/' })).token, /issuer/);
});

await check('rotation: old kid retired, new kid accepted', async () => {
  const fresh = await generateKeyPair('EdDSA', { extractable: true, crv: 'Ed25519' });
  const rotated = { keys: [...jwks.keys.filter((k) => k.kid !== kid('EdDSA')), await jwkOf('EdDSA', fresh, 'node-eddsa-b')] };
  const { rows } = await admin.query(
    "SELECT kid, action FROM tenant_guard.add_jwks($1::jsonb, $2, grace => '0')", [JSON.stringify(rotated), ISS]);
  const actions = Object.fromEntries(rows.map((r) => [r.kid, r.action]));
  expect(actions[kid('EdDSA')] === 'retiring' && actions['node-eddsa-b'] === 'added', JSON.stringify(actions));
  await refused((await mint('EdDSA')).token, /unknown, retired or expired/);
  const { t } = await setContext((await mint('EdDSA', { key: fresh.privateKey, kidName: 'node-eddsa-b' })).token);
  expect(t === 'acme', `new kid gave ${t}`);
  jwks = rotated;
});

await check('revoke_token: a cached token is refused', async () => {
  const { token, body } = await mint('ES384');
  await setContext(token);
  await admin.query('SELECT tenant_guard.revoke_token($1)', [body.jti]);
  await refused(token, /revoked.*jti/);
});

await check('revoke_tenant: tokens issued before refused, later ones accepted', async () => {
  const { token } = await mint('RS512', { org_id: 'node-tenant' });
  await setContext(token);
  await admin.query("SELECT tenant_guard.revoke_tenant('node-tenant')");
  await refused(token, /revoked.*tenant/);
  await new Promise((r) => setTimeout(r, 1100));
  const { t } = await setContext((await mint('RS512', { org_id: 'node-tenant' })).token);
  expect(t === 'node-tenant', 'a token issued after revoke_tenant was refused');
});

await check('revoke_subject: a session context in another backend stops at its next statement', async () => {
  const { token } = await mint('ES256', { sub: 'node-logout' });
  const set = await app.query('SELECT tenant_guard.set_context($1, false) AS t', [token]);
  expect(set.rows[0].t === 'acme', 'no session context');
  await admin.query("SELECT tenant_guard.revoke_subject('node-logout')");
  notices.length = 0;
  const started = process.hrtime.bigint();
  const { rows } = await app.query('SELECT tenant_guard.tenant_id() AS t');
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  expect(rows[0].t === null, `the session context still reads ${rows[0].t}`);
  expect(notices.some((n) => n.includes('no longer valid')), `no WARNING (${notices})`);
  console.log(`# session context ended ${ms.toFixed(1)} ms after revoke_subject committed`);
  await app.query('SELECT tenant_guard.clear_context()');
  await refused(token, /revoked.*subject/);
});

await app.end();
await admin.end();
process.exit(failures ? 1 : 0);
