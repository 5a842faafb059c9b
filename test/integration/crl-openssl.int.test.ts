/**
 * CRLs from the real store, judged by OpenSSL: the root's ARL made in a
 * ceremony (and a revoked issuing CA under -crl_check_all), delta CRLs that
 * `openssl verify -use_deltas` applies (revocations and lifted holds), CRL
 * numbers across a real restart, and `publishCrlFiles`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keystoreFor, openInstance, unlockCa, type Instance } from '../../src/cmd/instance.js';
import { makeArl } from '../../src/crl/arl.js';
import { CrlPublisher } from '../../src/crl/crl-publisher.js';
import { publishCrlFiles } from '../../src/crl/files.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { toPem } from '../../src/pki/pem.js';
import { RevocationAuthority } from '../../src/ra/revoke.js';
import { makeCsr, openssl, opensslRun } from '../helpers/openssl.js';
import { testPki, testPassphrase, testRootPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;

/** A publisher for the issuing CA, as `serve` runs it. */
function publisherFor(instance: Instance, issuers = pki.issuers.all()): CrlPublisher {
  const p = new CrlPublisher({
    crls: instance.store.crls, certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock, urls: instance.urls,
    validitySeconds: instance.config.revocation.crlValiditySeconds, delaySeconds: instance.config.revocation.crlSeconds,
  });
  for (const i of issuers) p.addIssuer({ id: i.id, shards: i.crlShards, signer: instance.authority.crlSigner(i.id) });
  return p;
}

const pem = (name: string, ...ders: Buffer[]) => {
  const file = path.join(pki.dir, name);
  fs.writeFileSync(file, ders.map((d) => toPem('X509 CRL', d)).join(''));
  return file;
};
const device = async (name: string) => pki.issue('device', (await makeCsr(pki.dir, name, `/serialNumber=${name}`)).csrPem, name);
const shardOf = async (serialHex: string) => `shard-${(await pki.instance.store.certificates.findBySerial('issuing-1', serialHex))!.crlShard}`;
const verify = async (leaf: string, crls: string, ...flags: string[]) => {
  const r = await opensslRun(['verify', ...flags, '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, '-CRLfile', crls, leaf]);
  return r.stdout + r.stderr;
};

beforeAll(async () => {
  pki = await testPki();
});
afterAll(() => pki?.close());

describe('the root ARL (ceremony)', () => {
  test('made with the root key: only CA certificates, a year long; -crl_check_all accepts a good chain and rejects a revoked issuing CA', async () => {
    const root = await unlockCa(pki.instance, { online: keystoreFor(pki.instance, testPassphrase), offline: keystoreFor(pki.instance, testRootPassphrase) }, 'root');
    const publisher = publisherFor(pki.instance);
    const leaf = await device('arl-leaf');
    const [arl] = await makeArl(publisher, root, pki.instance.authority.crlSigner(root.id));
    const arlPem = pem('arl.pem', arl!.der);
    const text = await openssl('crl', '-in', arlPem, '-CAfile', pki.rootPemPath, '-noout', '-text');
    expect(text).toMatch(/verify OK/);
    expect(text).toMatch(/Issuing Distribution Point: critical\s+Only CA Certificates/);
    expect(arl!.nextUpdate.getTime() - arl!.thisUpdate.getTime()).toBe(365 * 86_400_000);
    const shard = (await publisher.generate('issuing-1', await shardOf(leaf.serialHex))).der;
    expect(await verify(leaf.pemPath, pem('all.pem', arl!.der, shard), '-crl_check_all')).toMatch(/: OK$/m);

    // The root revokes the issuing CA (cACompromise): the next ARL lists it and the whole chain fails.
    const issuingSerial = parseCertificate(pki.instance.cas.find((c) => c.id === 'issuing-1')!.certDer).serialHex;
    const ra = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock, listeners: [publisher] });
    await ra.revoke({ serialHex: issuingSerial, issuerId: 'root', reason: 'cACompromise', by: 'test', via: 'cli' });
    const [arl2] = await makeArl(publisher, root, pki.instance.authority.crlSigner(root.id));
    expect(arl2!.crlNumber).toBeGreaterThan(arl!.crlNumber);
    expect(await openssl('crl', '-in', pem('arl2.pem', arl2!.der), '-noout', '-text')).toMatch(/CA Compromise/);
    const out = await verify(leaf.pemPath, pem('all2.pem', arl2!.der, shard), '-crl_check_all');
    expect(out).toMatch(/error 23 at 1 depth lookup: certificate revoked/);
  });
});

describe('delta CRLs applied by OpenSSL (-use_deltas)', () => {
  let publisher: CrlPublisher;
  let ra: RevocationAuthority;
  beforeAll(async () => {
    // A fresh PKI: the ARL test above revoked this one's issuing CA.
    await pki.close();
    pki = await testPki();
    publisher = publisherFor(pki.instance);
    ra = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock, listeners: [publisher] });
  });

  test('a revocation after the full CRL is revoked with its delta, still OK without it', async () => {
    const leaf = await device('delta-leaf');
    const full = await publisher.generate('issuing-1', 'full');
    await ra.revoke({ serialHex: leaf.serialHex, reason: 'keyCompromise', by: 'test', via: 'cli' });
    const delta = await publisher.generate('issuing-1', 'full-delta');
    const text = await openssl('crl', '-in', pem('delta.pem', delta.der), '-CAfile', pki.issuingPemPath, '-noout', '-text');
    expect(text).toMatch(/verify OK/);
    expect(text).toMatch(new RegExp(`X509v3 Delta CRL Indicator: critical\\s+${full.crlNumber}`));
    expect(await verify(leaf.pemPath, pem('base.pem', full.der), '-crl_check')).toMatch(/: OK$/m);
    expect(await verify(leaf.pemPath, pem('base+delta.pem', full.der, delta.der), '-crl_check', '-use_deltas')).toMatch(/certificate revoked/);
  });

  test('a hold in the full CRL lifted in the delta (removeFromCRL): on hold without the delta, OK with it', async () => {
    const leaf = await device('hold-leaf');
    await ra.revoke({ serialHex: leaf.serialHex, reason: 'certificateHold', by: 'test', via: 'cli' });
    const full = await publisher.generate('issuing-1', 'full');
    expect(await openssl('crl', '-in', pem('held.pem', full.der), '-noout', '-text')).toMatch(/Certificate Hold/);
    await ra.revoke({ serialHex: leaf.serialHex, reason: 'removeFromCRL', by: 'test', via: 'cli' });
    const delta = await publisher.generate('issuing-1', 'full-delta');
    expect(await openssl('crl', '-in', pem('released.pem', delta.der), '-noout', '-text')).toMatch(new RegExp(`Serial Number: ${leaf.serialHex.toUpperCase()}[\\s\\S]*?Remove From CRL`));
    expect(await verify(leaf.pemPath, pem('hold-base.pem', full.der), '-crl_check')).toMatch(/certificate revoked/);
    expect(await verify(leaf.pemPath, pem('hold-both.pem', full.der, delta.der), '-crl_check', '-use_deltas')).toMatch(/: OK$/m);
    // The shard CRL, regenerated after the release, no longer lists it.
    const shard = await publisher.generate('issuing-1', await shardOf(leaf.serialHex));
    expect(await verify(leaf.pemPath, pem('hold-shard.pem', shard.der), '-crl_check')).toMatch(/: OK$/m);
  });

  test('CRL numbers keep growing across a restart (the instance opened again on the same database)', async () => {
    const before = await publisher.generate('issuing-1', 'shard-0');
    const reopened = await openInstance(pki.dataDir);
    try {
      const issuing = await unlockCa(reopened, { online: keystoreFor(reopened, testPassphrase) }, 'issuing-1');
      const after = publisherFor(reopened, [issuing]);
      await after.refresh();
      expect(after.get('issuing-1', 'shard-0')!.crlNumber).toBe(before.crlNumber);
      const next = await after.generate('issuing-1', 'shard-0');
      expect(next.crlNumber).toBeGreaterThan(before.crlNumber);

      // `trellis crl publish`: every current CRL as DER and PEM, checked by OpenSSL.
      const out = path.join(pki.dir, 'published');
      const written = await publishCrlFiles(after, out, { regenerate: true });
      expect(written.filter((w) => w.caId === 'issuing-1').map((w) => path.basename(w.derPath)).sort()).toEqual(
        [...Array.from({ length: issuing.crlShards }, (_, n) => `${n}.crl`), 'full-delta.crl', 'full.crl'].sort(),
      );
      for (const w of written.filter((x) => x.caId === 'issuing-1')) {
        await expect(openssl('crl', '-in', w.pemPath, '-CAfile', pki.issuingPemPath, '-noout')).resolves.toMatch(/verify OK/);
        await expect(openssl('crl', '-inform', 'DER', '-in', w.derPath, '-CAfile', pki.issuingPemPath, '-noout')).resolves.toMatch(/verify OK/);
      }
    } finally {
      await reopened.close();
    }
  });
});
