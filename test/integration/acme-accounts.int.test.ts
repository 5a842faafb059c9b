/**
 * RFC 8555 §7.3 accounts against a running server: creation and lookup,
 * contacts, deactivation, key rollover, and external account binding on a
 * directory that requires it (keys made by `trellis acme eab create`).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AcmeClient, generateAcmeKey, type AcmeResponse } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';
import { testPassphrase } from '../helpers/test-pki.js';

const run = promisify(execFile);
const bin = path.join(import.meta.dirname, '../../bin/trellis.js');

let t: AcmeTestServer;
beforeAll(async () => {
  t = await startAcmeServer({ acme: { externalAccountRequired: ['client'] } });
});
afterAll(() => t?.close());

const acmeType = (res: AcmeResponse) => res.problem?.type.replace('urn:ietf:params:acme:error:', '');

async function eabCreate(directory?: string): Promise<{ keyId: string; hmacKey: string }> {
  // The HMAC key is stored sealed under the online passphrase, so creating one needs it.
  const env = { ...process.env, TRELLIS_PASSPHRASE: testPassphrase };
  const { stdout } = await run(process.execPath, [bin, 'acme', 'eab', 'create', '--json', '--data', t.pki.dataDir, ...(directory ? ['--directory', directory] : [])], { env });
  return JSON.parse(stdout);
}

describe('newAccount', () => {
  test('201 with Location for a new key, 200 with the same Location for the same key again', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const first = await c.newAccount({ contact: ['mailto:a@example.org'], termsOfServiceAgreed: true });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ status: 'valid', contact: ['mailto:a@example.org'], orders: `${first.location}/orders` });
    const again = await c.newAccount({ termsOfServiceAgreed: true });
    expect(again.status).toBe(200);
    expect(again.location).toBe(first.location);
    c.close();
  });

  test('onlyReturnExisting: accountDoesNotExist for an unknown key, the account for a known one', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const none = await c.findAccount();
    expect(none.status).toBe(400);
    expect(acmeType(none)).toBe('accountDoesNotExist');
    const created = await c.newAccount({});
    const found = await c.findAccount();
    expect(found.status).toBe(200);
    expect(found.location).toBe(created.location);
    c.close();
  });

  test('rejects: contacts that are not mailto: with one address (invalidContact), and creates nothing', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    for (const contact of ['tel:+1555', 'mailto:a@example.org,b@example.org', 'mailto:a@example.org?subject=x', 'mailto:nobody']) {
      const res = await c.newAccount({ contact: [contact] });
      expect(acmeType(res), contact).toBe('invalidContact');
    }
    expect(acmeType(await c.findAccount())).toBe('accountDoesNotExist');
    c.close();
  });

  test('the account is JSON-readable with POST-as-GET and lists its orders', async () => {
    const c = await t.client();
    expect((await c.newOrder({ identifiers: ['127.0.0.1'] })).status).toBe(201);
    const acct = await c.postAsGet(c.accountUrl!);
    expect(acct.status).toBe(200);
    const orders = await c.postAsGet(acct.json.orders);
    expect(orders.json.orders).toHaveLength(1);
    // Another account may not read it.
    const other = await t.client();
    expect(acmeType(await other.post(c.accountUrl!, undefined, { kid: other.accountUrl! }))).toBe('unauthorized');
  });
});

describe('update, deactivate, key rollover', () => {
  test('contact update; deactivation; a deactivated account authorizes nothing more', async () => {
    const c = await t.client();
    const upd = await c.updateAccount({ contact: ['mailto:new@example.org'] });
    expect(upd.json!.contact).toEqual(['mailto:new@example.org']);
    const off = await c.deactivateAccount();
    expect(off.json!.status).toBe('deactivated');
    const after = await c.newOrder({ identifiers: ['127.0.0.1'] });
    expect(after.status).toBe(401);
    expect(acmeType(after)).toBe('unauthorized');
  });

  test('keyChange: the new key signs afterwards, the old one no longer does', async () => {
    const c = await t.client();
    const oldKey = c.key;
    const next = generateAcmeKey('ES384');
    const res = await c.keyChange(next);
    expect(res.status, res.text).toBe(200);
    expect((await c.newOrder({ identifiers: ['127.0.0.1'] })).status).toBe(201);
    const withOld = await c.newOrder({ identifiers: ['127.0.0.1'] }, { key: oldKey });
    expect(acmeType(withOld)).toBe('malformed');
    // The old key is free again: it makes a new account.
    const fresh = await AcmeClient.create({ directoryUrl: t.directoryUrl(), key: oldKey });
    expect((await fresh.newAccount({})).status).toBe(201);
    fresh.close();
  });

  test('keyChange to a key another account has: 409 with that account\'s Location', async () => {
    const a = await t.client();
    const b = await t.client();
    const res = await a.keyChange(b.key);
    expect(res.status).toBe(409);
    expect(res.location).toBe(b.accountUrl);
  });

  test('rejects: keyChange whose inner JWS is signed by another key, has a nonce, or names another account', async () => {
    const c = await t.client();
    const next = generateAcmeKey('ES256');
    expect(acmeType(await c.keyChange(next, { inner: { signWith: generateAcmeKey('ES256') } }))).toBe('unauthorized');
    expect(acmeType(await c.keyChange(next, { inner: { nonce: await c.newNonce() } }))).toBe('malformed');
    expect(acmeType(await c.keyChange(next, { inner: { payload: { account: `${c.accountUrl}x`, oldKey: c.key.jwk } } }))).toBe('unauthorized');
    // Still the old key.
    expect((await c.newOrder({ identifiers: ['127.0.0.1'] })).status).toBe(201);
  });
});

describe('external account binding (directory "client" requires it)', () => {
  test('the directory says so; newAccount without a binding is refused', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl('client') });
    expect(c.directory.meta?.externalAccountRequired).toBe(true);
    expect(acmeType(await c.newAccount({}))).toBe('externalAccountRequired');
    c.close();
  });

  test('a key from `trellis acme eab create` binds one account; a second use, a bad MAC and an unknown kid are refused', async () => {
    const eab = await eabCreate('client');
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl('client') });
    expect(acmeType(await c.newAccount({ eab: { ...eab, kid: eab.keyId, tamperSignature: true } }))).toBe('unauthorized');
    expect(acmeType(await c.newAccount({ eab: { kid: 'kid-unknown', hmacKey: eab.hmacKey } }))).toBe('externalAccountRequired');
    const ok = await c.newAccount({ eab: { kid: eab.keyId, hmacKey: eab.hmacKey } });
    expect(ok.status, ok.text).toBe(201);
    expect((await c.newOrder({ identifiers: ['client.example.org'] })).status).toBe(201);
    const second = await AcmeClient.create({ directoryUrl: t.directoryUrl('client') });
    expect(acmeType(await second.newAccount({ eab: { kid: eab.keyId, hmacKey: eab.hmacKey } }))).toBe('unauthorized');
    c.close();
    second.close();
  });

  test('an account made without a binding cannot order in the EAB directory', async () => {
    const c = await t.client();
    const res = await c.post(c.directory.newOrder.replace('/server/', '/client/'), { identifiers: [{ type: 'dns', value: 'x.example.org' }] });
    expect(acmeType(res)).toBe('externalAccountRequired');
  });

  test('a binding for another directory does not fit', async () => {
    const eab = await eabCreate('server');
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl('client') });
    expect(acmeType(await c.newAccount({ eab: { kid: eab.keyId, hmacKey: eab.hmacKey } }))).toBe('externalAccountRequired');
    c.close();
  });
});
