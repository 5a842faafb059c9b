/** CRLs checked by OpenSSL: shards, full and delta CRLs, the root's ARL, served over HTTP, numbers always growing. */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { crlPublisher } from '../../src/cmd/crl-publishing.js';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { toPem } from '../../src/pki/pem.js';
import { RevocationAuthority } from '../../src/ra/revoke.js';
import type { CrlPublisher } from '../../src/crl/crl-publisher.js';
import { makeCsr, openssl, opensslRun } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let publisher: CrlPublisher;
let good: Awaited<ReturnType<TestPki['issue']>>;
let bad: Awaited<ReturnType<TestPki['issue']>>;

beforeAll(async () => {
  pki = await testPki();
  publisher = crlPublisher(pki.instance, pki.issuers.all());
  const dev = async (n: string) => pki.issue('device', (await makeCsr(pki.dir, n, `/serialNumber=${n}`)).csrPem, n);
  good = await dev('crl-good');
  bad = await dev('crl-bad');
  const ra = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock, listeners: [publisher] });
  await ra.revoke({ serialHex: bad.serialHex, reason: 'keyCompromise', invalidityDate: new Date(Date.now() - 86400_000), by: 't', via: 'cli' });
});
afterAll(() => pki?.close());

const write = (name: string, der: Buffer) => {
  const file = `${pki.dir}/${name}`;
  fs.writeFileSync(file, toPem('X509 CRL', der));
  return file;
};
const shardOf = async (serialHex: string) => (await pki.instance.store.certificates.findBySerial('issuing-1', serialHex))!.crlShard;

describe('CRLs', () => {
  test('the revoked certificate is listed in its shard with reason and invalidity date; OpenSSL verifies the CRL', async () => {
    const crl = await publisher.generate('issuing-1', `shard-${await shardOf(bad.serialHex)}`);
    const file = write('shard.pem', crl.der);
    await expect(openssl('crl', '-in', file, '-CAfile', pki.issuingPemPath, '-noout')).resolves.toMatch(/verify OK/);
    const text = await openssl('crl', '-in', file, '-noout', '-text');
    expect(text).toMatch(new RegExp(`Serial Number: ${bad.serialHex.toUpperCase()}`));
    expect(text).toMatch(/Key Compromise/);
    expect(text).toMatch(/Invalidity Date/);
    expect(text).toMatch(/Issuing Distribution Point: critical/);
    expect(text).toMatch(/X509v3 CRL Number/);
  });

  test('openssl verify -crl_check: revoked is revoked, good is OK (shard CRLs, and the full CRL)', async () => {
    const shardFiles = await Promise.all([good, bad].map(async (c, i) => write(`s${i}.pem`, (await publisher.generate('issuing-1', `shard-${await shardOf(c.serialHex)}`)).der)));
    const check = (leaf: string, crl: string) => opensslRun(['verify', '-crl_check', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, '-CRLfile', crl, leaf]);
    expect((await check(good.pemPath, shardFiles[0]!)).stdout).toMatch(/: OK$/m);
    const revoked = await check(bad.pemPath, shardFiles[1]!);
    expect(revoked.code).not.toBe(0);
    expect(revoked.stdout + revoked.stderr).toMatch(/certificate revoked/);
    const full = write('full.pem', (await publisher.generate('issuing-1', 'full')).der);
    expect((await check(bad.pemPath, full)).stdout + (await check(bad.pemPath, full)).stderr).toMatch(/certificate revoked/);
    expect((await check(good.pemPath, full)).stdout).toMatch(/: OK$/m);
  });

  test('-crl_check_all with the root ARL made at init', async () => {
    const arl = await pki.instance.store.crls.latest('root', 'shard-0');
    expect(arl).toBeTruthy();
    const arlFile = write('arl.pem', arl!.der);
    await expect(openssl('crl', '-in', arlFile, '-CAfile', pki.rootPemPath, '-noout')).resolves.toMatch(/verify OK/);
    const shard = write('all-shard.pem', (await publisher.generate('issuing-1', `shard-${await shardOf(good.serialHex)}`)).der);
    const bundle = `${pki.dir}/bundle.pem`;
    fs.writeFileSync(bundle, fs.readFileSync(arlFile, 'utf8') + fs.readFileSync(shard, 'utf8'));
    const r = await opensslRun(['verify', '-crl_check_all', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, '-CRLfile', bundle, good.pemPath]);
    expect(r.stdout + r.stderr).toMatch(/: OK$/m);
  });

  test('delta CRL: Delta CRL Indicator naming its base, lists revocations after the base', async () => {
    const base = await publisher.generate('issuing-1', 'full');
    const dev = await pki.issue('device', (await makeCsr(pki.dir, 'crl-late', '/serialNumber=crl-late')).csrPem, 'crl-late');
    await new Promise((r) => setTimeout(r, 1100)); // revocation strictly after the base's thisUpdate (second precision)
    await pki.instance.store.certificates.revoke('issuing-1', dev.serialHex, { reason: 4, revokedAt: pki.instance.clock.now(), invalidityDate: null, revokedBy: 't' });
    const delta = await publisher.generate('issuing-1', 'full-delta');
    expect(delta.baseCrlNumber).toBe(base.crlNumber);
    const file = write('delta.pem', delta.der);
    await expect(openssl('crl', '-in', file, '-CAfile', pki.issuingPemPath, '-noout')).resolves.toMatch(/verify OK/);
    const text = await openssl('crl', '-in', file, '-noout', '-text');
    expect(text).toMatch(/Delta CRL Indicator: critical/);
    expect(text).toMatch(new RegExp(`Serial Number: ${dev.serialHex.toUpperCase()}`));
    expect(await openssl('crl', '-in', write('fullx.pem', base.der), '-noout', '-text')).toMatch(/Freshest CRL/);
  });

  test('CRL numbers strictly increase, also across a new publisher (restart)', async () => {
    const a = await publisher.generate('issuing-1', 'shard-0');
    const b = await crlPublisher(pki.instance, pki.issuers.all()).generate('issuing-1', 'shard-0');
    expect(b.crlNumber).toBeGreaterThan(a.crlNumber);
  });

  describe('served by trellis serve', () => {
    let server: Serving;
    beforeAll(async () => {
      server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
    });
    afterAll(() => server?.close());

    test('the URL in the certificate answers with a DER CRL, cacheable until nextUpdate', async () => {
      const url = new URL(`/crl/issuing-1/${await shardOf(bad.serialHex)}.crl`, server.url);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/pkix-crl');
      expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
      const file = `${pki.dir}/served.der`;
      fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
      expect(await openssl('crl', '-inform', 'DER', '-in', file, '-noout', '-text')).toMatch(new RegExp(bad.serialHex.toUpperCase()));
      expect((await fetch(new URL('/crl/issuing-1/full.crl', server.url))).status).toBe(200);
      expect((await fetch(new URL('/crl/root/0.crl', server.url))).status).toBe(200);
      expect((await fetch(new URL('/crl/nope/0.crl', server.url))).status).toBe(404);
    });

    test('a revocation through the API reaches the shard CRL (tick forced; the schedule does it within crlSeconds)', async () => {
      const admin = (await (await import('../../src/tokens/tokens.js')).createToken(pki.instance.store.tokens, 'admin', 'a')).secret;
      const c = await pki.issue('device', (await makeCsr(pki.dir, 'crl-api', '/serialNumber=crl-api')).csrPem, 'crl-api');
      const r = await fetch(`${server.url}/api/v1/certificates/${c.serialHex}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"reason":"superseded"}' });
      expect(r.status).toBe(200);
      const url = new URL(`/crl/issuing-1/${await shardOf(c.serialHex)}.crl`, server.url);
      let listed = false;
      for (let i = 0; i < 30 && !listed; i++) {
        const file = `${pki.dir}/poll.der`;
        fs.writeFileSync(file, Buffer.from(await (await fetch(url)).arrayBuffer()));
        listed = (await openssl('crl', '-inform', 'DER', '-in', file, '-noout', '-text')).includes(c.serialHex.toUpperCase());
        if (!listed) await new Promise((res) => setTimeout(res, 500));
      }
      expect(listed).toBe(true);
    });
  });
});
