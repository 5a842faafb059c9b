/**
 * RFC 8555 §7.4–§7.6 orders, authorizations, challenges, finalize,
 * certificate download and revocation against a running server with the real
 * validation authority. OpenSSL judges the certificates and the OCSP answers.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { acmeKeyFrom, assertOk, buildCsr, keyAuthorization, type AcmeClient, type AcmeResponse } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';
import { openssl } from '../helpers/openssl.js';

let t: AcmeTestServer;
beforeAll(async () => {
  t = await startAcmeServer({
    zone: { 'www.shop.test': { a: ['127.0.0.1'] }, 'intranet.shop.test': { a: ['10.0.0.7'] }, 'other.shop.test': { a: ['127.0.0.1'] } },
  });
});
afterAll(() => t?.close());

const acmeType = (res: AcmeResponse) => res.problem?.type.replace('urn:ietf:params:acme:error:', '');

/** An order for `names`, with every authorization answered over http-01. */
async function readyOrder(c: AcmeClient, names: string[]) {
  const res = await c.newOrder({ identifiers: names });
  const order = assertOk(res, 'newOrder', [201]);
  for (const authz of await c.getAuthorizations(order)) {
    if (authz.status === 'valid') continue;
    const ch = authz.challenges.find((x) => x.type === 'http-01')!;
    t.http01.set(ch.token, keyAuthorization(ch.token, c.key));
    expect(assertOk(await c.respondToChallenge(ch.url)).status).toBe('valid');
  }
  return { url: res.location!, order: assertOk(await c.getOrder(res.location!)) };
}

describe('newOrder', () => {
  test('a pending order with one authorization per identifier, each offering http-01 and tls-alpn-01', async () => {
    const c = await t.client();
    const res = await c.newOrder({ identifiers: ['WWW.Shop.Test.', '127.0.0.1'] });
    expect(res.status).toBe(201);
    expect(res.json!.status).toBe('pending');
    // Normalised (lower case, no trailing dot) and sorted.
    expect(res.json!.identifiers).toEqual([{ type: 'dns', value: 'www.shop.test' }, { type: 'ip', value: '127.0.0.1' }]);
    const authzs = await c.getAuthorizations(res.json!);
    expect(authzs.map((a) => a.challenges.map((ch) => ch.type).sort())).toEqual([['http-01', 'tls-alpn-01'], ['http-01', 'tls-alpn-01']]);
    for (const a of authzs) for (const ch of a.challenges) expect(ch.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test('rejects: wildcards (no dns-01 here), identifiers outside the profile, unknown types, notBefore', async () => {
    const c = await t.client();
    expect(acmeType(await c.newOrder({ identifiers: ['*.shop.test'] }))).toBe('rejectedIdentifier');
    expect(acmeType(await c.newOrder({ identifiers: ['bad_name.shop.test'] }))).toBe('rejectedIdentifier');
    expect(acmeType(await c.newOrder({ identifiers: [{ type: 'email', value: 'a@shop.test' }] }))).toBe('unsupportedIdentifier');
    expect(acmeType(await c.newOrder({ identifiers: [{ type: 'dns', value: '127.0.0.1' }] }))).toBe('rejectedIdentifier');
    const mixed = await c.newOrder({ identifiers: ['ok.shop.test', '*.shop.test', { type: 'email', value: 'a@shop.test' }] });
    expect(acmeType(mixed)).toBe('rejectedIdentifier');
    expect(mixed.problem?.subproblems?.map((s) => s.identifier?.value)).toEqual(['*.shop.test', 'a@shop.test']);
    expect(acmeType(await c.newOrder({ identifiers: ['x.shop.test'], notBefore: new Date(Date.now() + 3600_000) }))).toBe('malformed');
    expect(acmeType(await c.post(c.directory.newOrder, { identifiers: [] }))).toBe('malformed');
    // The client profile's SAN rules take DNS names but no IP addresses.
    const clientNewOrder = c.directory.newOrder.replace('/server/', '/client/');
    expect(acmeType(await c.post(clientNewOrder, { identifiers: [{ type: 'ip', value: '127.0.0.1' }] }))).toBe('unsupportedIdentifier');
    expect((await c.post(clientNewOrder, { identifiers: [{ type: 'dns', value: 'svc.shop.test' }] })).status).toBe(201);
  });

  test('a valid authorization is reused by the next order of the same account, not by another account', async () => {
    const c = await t.client();
    const { order } = await readyOrder(c, ['www.shop.test']);
    // Valid authorizations live on for reuse (acme.authorizationLifetimeSeconds, 30 days).
    const validAuthz = assertOk(await c.getAuthorization(order.authorizations[0]!));
    expect(Date.parse(validAuthz.expires!) - Date.now()).toBeGreaterThan(29 * 86400_000);
    const again = assertOk(await c.newOrder({ identifiers: ['www.shop.test'] }), 'newOrder', [201]);
    expect(again.status).toBe('ready');
    expect(again.authorizations).toEqual(order.authorizations);
    const other = await t.client();
    const theirs = assertOk(await other.newOrder({ identifiers: ['www.shop.test'] }), 'newOrder', [201]);
    expect(theirs.status).toBe('pending');
    expect(theirs.authorizations).not.toEqual(order.authorizations);
  });
});

describe('challenges', () => {
  test('another account can neither read nor complete an authorization', async () => {
    const owner = await t.client();
    const order = assertOk(await owner.newOrder({ identifiers: ['other.shop.test'] }), 'newOrder', [201]);
    const [authz] = await owner.getAuthorizations(order);
    const ch = authz!.challenges.find((x) => x.type === 'http-01')!;
    const thief = await t.client();
    t.http01.set(ch.token, keyAuthorization(ch.token, thief.key));
    expect(acmeType(await thief.respondToChallenge(ch.url))).toBe('unauthorized');
    expect(acmeType(await thief.getAuthorization(order.authorizations[0]!))).toBe('unauthorized');
    expect(assertOk(await owner.getAuthorization(order.authorizations[0]!)).status).toBe('pending');
  });

  test('a wrong key authorization makes the challenge and the order invalid (incorrectResponse)', async () => {
    const c = await t.client();
    const res = await c.newOrder({ identifiers: ['www.shop.test'] });
    const [authz] = await c.getAuthorizations(res.json!);
    const ch = authz!.challenges.find((x) => x.type === 'http-01')!;
    t.http01.set(ch.token, `${ch.token}.not-the-thumbprint`);
    const answer = assertOk(await c.respondToChallenge(ch.url));
    expect(answer.status).toBe('invalid');
    expect(answer.error?.type).toBe('urn:ietf:params:acme:error:incorrectResponse');
    expect(assertOk(await c.getOrder(res.location!)).status).toBe('invalid');
  });

  test('an address on the deny list is never contacted (connection error)', async () => {
    const c = await t.client();
    const res = await c.newOrder({ identifiers: ['intranet.shop.test'] });
    const [authz] = await c.getAuthorizations(res.json!);
    const answer = assertOk(await c.respondToChallenge(authz!.challenges.find((x) => x.type === 'http-01')!.url));
    expect(answer.status).toBe('invalid');
    expect(answer.error?.type).toBe('urn:ietf:params:acme:error:connection');
    expect(answer.error?.detail).toMatch(/10\.0\.0\.7/);
  });

  test('a name that does not resolve fails with a dns error', async () => {
    const c = await t.client();
    const res = await c.newOrder({ identifiers: ['nowhere.shop.test'] });
    const [authz] = await c.getAuthorizations(res.json!);
    const answer = assertOk(await c.respondToChallenge(authz!.challenges[0]!.url));
    expect(answer.error?.type).toBe('urn:ietf:params:acme:error:dns');
  });
});

describe('finalize and certificates', () => {
  test('rejects: finalize before the order is ready (orderNotReady)', async () => {
    const c = await t.client();
    const res = await c.newOrder({ identifiers: ['www.shop.test'] });
    const fin = await c.finalize(res.json!.finalize, buildCsr({ identifiers: ['www.shop.test'] }).csrDer);
    expect(fin.status).toBe(403);
    expect(acmeType(fin)).toBe('orderNotReady');
  });

  test('rejects: a CSR for other names, or garbage (badCSR); the order stays ready and then finalizes', async () => {
    const c = await t.client();
    const { url, order } = await readyOrder(c, ['www.shop.test', '127.0.0.1']);
    expect(order.status).toBe('ready');
    expect(acmeType(await c.finalize(order.finalize, buildCsr({ identifiers: ['www.shop.test'] }).csrDer))).toBe('badCSR');
    expect(acmeType(await c.finalize(order.finalize, buildCsr({ identifiers: ['www.shop.test', '127.0.0.1', 'other.shop.test'] }).csrDer))).toBe('badCSR');
    expect(acmeType(await c.finalize(order.finalize, Buffer.from('not a CSR')))).toBe('badCSR');
    expect(assertOk(await c.getOrder(url)).status).toBe('ready');
    const done = assertOk(await c.finalize(order.finalize, buildCsr({ identifiers: ['127.0.0.1', 'www.shop.test'] }).csrDer));
    expect(done.status).toBe('valid');
    expect(done.certificate).toMatch(/\/acme\/cert\//);
    // Finalizing twice is refused.
    expect(acmeType(await c.finalize(order.finalize, buildCsr({ identifiers: ['127.0.0.1', 'www.shop.test'] }).csrDer))).toBe('orderNotReady');
  });

  test('rejects: a CSR with a weak key (badPublicKey) or with the account key (badCSR)', async () => {
    const c = await t.client();
    const { url, order } = await readyOrder(c, ['www.shop.test']);
    const rsa1024 = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(acmeType(await c.finalize(order.finalize, buildCsr({ identifiers: ['www.shop.test'], key: rsa1024 }).csrDer))).toBe('badPublicKey');
    const withAccountKey = await c.finalize(order.finalize, buildCsr({ identifiers: ['www.shop.test'], key: c.key.privateKey }).csrDer);
    expect(acmeType(withAccountKey)).toBe('badCSR');
    expect(withAccountKey.problem?.detail).toMatch(/account key/);
    expect(assertOk(await c.getOrder(url)).status).toBe('ready');
  });

  test('download: PEM chain leaf first, verified by openssl; an alternate chain with the root; only the owner may fetch it', async () => {
    const c = await t.client();
    const { order } = await readyOrder(c, ['www.shop.test']);
    const csr = buildCsr({ identifiers: ['www.shop.test'] });
    const done = assertOk(await c.finalize(order.finalize, csr.csrDer));
    const cert = await c.downloadCertificate(done.certificate!);
    expect(cert.response.contentType).toMatch(/^application\/pem-certificate-chain/);
    expect(cert.chain).toHaveLength(2);
    const file = `${t.pki.dir}/orders-leaf.pem`;
    fs.writeFileSync(file, cert.pem);
    await expect(openssl('verify', '-purpose', 'sslserver', '-CAfile', t.pki.rootPemPath, '-untrusted', file, file)).resolves.toMatch(/: OK$/m);
    expect(cert.alternates).toHaveLength(1);
    const alt = await c.downloadCertificate(cert.alternates[0]!);
    expect(alt.chain).toHaveLength(3);
    const other = await t.client();
    expect(acmeType(await other.postAsGet(done.certificate!))).toBe('unauthorized');
  });
});

describe('revokeCert (RFC 8555 §7.6)', () => {
  async function issued(c: AcmeClient) {
    const { order } = await readyOrder(c, ['www.shop.test']);
    const csr = buildCsr({ identifiers: ['www.shop.test'] });
    const done = assertOk(await c.finalize(order.finalize, csr.csrDer));
    const cert = await c.downloadCertificate(done.certificate!);
    return { cert, key: csr.privateKey };
  }

  async function ocspStatus(leafPem: string): Promise<string> {
    const leaf = `${t.pki.dir}/revoke-leaf.pem`;
    fs.writeFileSync(leaf, leafPem);
    return openssl('ocsp', '-url', `${t.server.url}/ocsp`, '-issuer', t.pki.issuingPemPath, '-cert', leaf, '-CAfile', t.pki.rootPemPath, '-no_nonce');
  }

  test('by the account that ordered it, with a reason; OCSP then says revoked; twice is alreadyRevoked', async () => {
    const c = await t.client();
    const { cert } = await issued(c);
    await expect(ocspStatus(cert.chain[0]!)).resolves.toMatch(/: good/);
    const res = await c.revokeCert(cert.leafDer, { reason: 4 });
    expect(res.status, res.text).toBe(200);
    await expect(ocspStatus(cert.chain[0]!)).resolves.toMatch(/: revoked[\s\S]*Reason: superseded/);
    expect(acmeType(await c.revokeCert(cert.leafDer))).toBe('alreadyRevoked');
  });

  test('by the certificate\'s own key (jwk), with no account', async () => {
    const c = await t.client();
    const { cert, key } = await issued(c);
    const res = await c.revokeCert(cert.leafDer, { reason: 1, certKey: acmeKeyFrom(key!) });
    expect(res.status, res.text).toBe(200);
    await expect(ocspStatus(cert.chain[0]!)).resolves.toMatch(/Reason: keyCompromise/);
  });

  test('rejects: another account without authorizations (unauthorized); reasons not for subscribers (badRevocationReason)', async () => {
    const c = await t.client();
    const { cert } = await issued(c);
    const stranger = await t.client();
    expect(acmeType(await stranger.revokeCert(cert.leafDer))).toBe('unauthorized');
    for (const reason of [2, 6, 7, 8, 10, 11]) expect(acmeType(await c.revokeCert(cert.leafDer, { reason })), `reason ${reason}`).toBe('badRevocationReason');
    await expect(ocspStatus(cert.chain[0]!)).resolves.toMatch(/: good/);
  });

  test('an account that validated the same names may revoke', async () => {
    const c = await t.client();
    const { cert } = await issued(c);
    const other = await t.client();
    await readyOrder(other, ['www.shop.test']);
    expect((await other.revokeCert(cert.leafDer)).status).toBe(200);
  });
});
