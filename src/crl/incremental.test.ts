import { generateKeyPairSync, sign } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RevokedEntry } from '../ca/ports.js';
import { parseCertificate } from '../pki/certificate.js';
import { oid, seq } from '../pki/der.js';
import { OID } from '../pki/oids.js';
import { toPem } from '../pki/pem.js';
import { refusal } from '../../test/helpers/errors.js';
import { buildCrl, type CrlContent, type CrlSigner } from './build.js';
import { mergeEntries, revokedListOf } from './incremental.js';
import { lintingSigner } from './testing/signer.js';

let dir: { dir: string; file(name: string): string; cleanup(): void };
let openssl: (...args: string[]) => Promise<string>;
let caPem: string;
let signer: CrlSigner;

beforeAll(async () => {
  const helpers = await import('../../test/helpers/openssl.js');
  openssl = helpers.openssl;
  dir = helpers.tempDir('trellis-crl-incremental-');
  const { privateKey } = generateKeyPairSync('ed25519');
  fs.writeFileSync(dir.file('ca.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  caPem = dir.file('ca.pem');
  await openssl('req', '-x509', '-new', '-key', dir.file('ca.key'), '-subj', '/O=Trellis Test/CN=Incremental CRL CA', '-days', '30',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', caPem);
  const subjectDer = parseCertificate(Buffer.from(fs.readFileSync(caPem, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64')).subjectDer;
  // Ed25519 signatures are deterministic: equal TBS, equal CRL bytes.
  signer = lintingSigner({ subjectDer, keyIdentifier: Buffer.alloc(20, 3), signatureAlgorithm: seq(oid(OID.ed25519)), sign: (tbs) => sign(null, tbs, privateKey) });
});
afterAll(() => dir?.cleanup());

const at = (iso: string) => new Date(iso);
const content: CrlContent = { crlNumber: 9n, thisUpdate: at('2026-03-01T00:00:00Z'), nextUpdate: at('2026-03-02T00:00:00Z'), distributionPointUrl: 'http://pki.test/crl/ca/3.crl' };
const entry = (serialHex: string, reason = 1, revokedAt = at('2026-02-01T10:00:00Z'), invalidityDate: Date | null = null): RevokedEntry => ({ serialHex, revokedAt, reason, invalidityDate });

/** Numeric order of serials, as the store's fixed-width hex order gives and the merge keeps. */
const magnitude = (hex: string) => {
  const h = (hex.length % 2 ? `0${hex}` : hex).replace(/^(00)+(?=..)/, '');
  return h;
};
const numeric = (a: RevokedEntry, b: RevokedEntry) => {
  const x = magnitude(a.serialHex);
  const y = magnitude(b.serialHex);
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
};

/** A deterministic pseudo-random source (xorshift32), so a failure can be replayed. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const hexOf = (rnd: () => number, octets: number) => Array.from({ length: octets }, () => Math.floor(rnd() * 256).toString(16).padStart(2, '0')).join('');

describe('mergeEntries: the previous CRL plus the changes equals a complete read', () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8])('random previous list and changes (seed %i): the same DER byte for byte as a complete build', async (seed) => {
    const rnd = prng(seed * 7919);
    // Serials of every shape the encoder normalises: 16 random octets (as Trellis issues), a
    // high first bit (sign octet), leading zero octets, odd hex lengths, one octet, 20 octets.
    const shapes = [() => `7${hexOf(rnd, 16).slice(1)}`, () => `8${hexOf(rnd, 4).slice(1)}`, () => `00${hexOf(rnd, 3)}`, () => hexOf(rnd, 2).slice(1), () => hexOf(rnd, 1), () => `7f${hexOf(rnd, 19)}`];
    const current = new Map<string, RevokedEntry>();
    while (current.size < 400) {
      const s = shapes[Math.floor(rnd() * shapes.length)]!();
      if (/^0*$/.test(s) || [...current.keys()].some((k) => magnitude(k) === magnitude(s))) continue;
      current.set(s, entry(s, [0, 1, 3, 4, 6][Math.floor(rnd() * 5)]!, at('2026-02-01T10:00:00Z'), rnd() < 0.2 ? at('2026-01-15T00:00:00Z') : null));
    }
    const previous = await buildCrl(signer, content, [[...current.values()].sort(numeric)]);

    // Changes since: new revocations, holds made final or given another reason, holds lifted.
    const revoked: RevokedEntry[] = [];
    const released: string[] = [];
    const keys = [...current.keys()];
    for (let i = 0; i < 30; i++) {
      const r = rnd();
      if (r < 0.4) {
        const s = `7${hexOf(rnd, 16).slice(1)}`;
        if (current.has(s)) continue;
        const e = entry(s, 4, at('2026-03-01T00:00:30Z'));
        current.set(s, e);
        revoked.push(e);
      } else if (r < 0.7) {
        const s = keys[Math.floor(rnd() * keys.length)]!;
        if (!current.has(s) || revoked.some((e) => e.serialHex === s) || released.includes(s)) continue;
        const e = entry(s, 1, at('2026-03-01T00:00:40Z'), at('2026-02-28T00:00:00Z'));
        current.set(s, e);
        revoked.push(e);
      } else {
        const s = keys[Math.floor(rnd() * keys.length)]!;
        if (!current.has(s) || revoked.some((e) => e.serialHex === s)) continue;
        current.delete(s);
        released.push(s);
      }
    }

    const merged = await buildCrl(signer, content, mergeEntries(revokedListOf(previous.der), { revoked, released }), [], { sizeHint: previous.der.length + 4096 });
    const complete = await buildCrl(signer, content, [[...current.values()].sort(numeric)]);
    expect(merged.entries).toBe(current.size);
    expect(merged.der.toString('hex')).toBe(complete.der.toString('hex'));
  });

  test('OpenSSL reads the merged CRL: verified, the new entry listed, the lifted hold gone, the changed reason replaced', async () => {
    const before = [entry('0a', 6), entry('0b', 6), entry('0c', 1)];
    const previous = await buildCrl(signer, content, [before]);
    const pages = mergeEntries(revokedListOf(previous.der), { revoked: [entry('0b', 1), entry('0d', 4)], released: ['0a'] });
    const { der } = await buildCrl(signer, { ...content, crlNumber: 10n }, pages);
    fs.writeFileSync(dir.file('merged.pem'), toPem('X509 CRL', der));
    const text = await openssl('crl', '-in', dir.file('merged.pem'), '-CAfile', caPem, '-noout', '-text');
    expect(text).toMatch(/verify OK/);
    const serials = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]);
    expect(serials).toEqual(['0B', '0C', '0D']);
    expect(text).toMatch(/Serial Number: 0B[\s\S]*?Key Compromise[\s\S]*?Serial Number: 0C/);
    expect(text).not.toMatch(/Certificate Hold/);
  });

  test('an empty previous CRL takes the new entries; changes that leave nothing give an empty list', async () => {
    const empty = await buildCrl(signer, content, []);
    expect(revokedListOf(empty.der).length).toBe(0);
    const one = await buildCrl(signer, content, mergeEntries(revokedListOf(empty.der), { revoked: [entry('01')], released: [] }));
    expect(one.entries).toBe(1);
    const none = await buildCrl(signer, content, mergeEntries(revokedListOf(one.der), { revoked: [], released: ['01'] }));
    expect(none.entries).toBe(0);
    expect(none.der.toString('hex')).toBe(empty.der.toString('hex'));
  });

  test('a previous list out of serial order: the changed serials are still found wherever they are', async () => {
    const previous = await buildCrl(signer, content, [[entry('0c'), entry('0a'), entry('0e'), entry('0b')]]);
    const { der, entries } = await buildCrl(signer, content, mergeEntries(revokedListOf(previous.der), { revoked: [entry('0e', 4)], released: ['0b'] }));
    expect(entries).toBe(3);
    fs.writeFileSync(dir.file('unordered.pem'), toPem('X509 CRL', der));
    const text = await openssl('crl', '-in', dir.file('unordered.pem'), '-noout', '-text');
    expect([...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]).sort()).toEqual(['0A', '0C', '0E']);
    expect(text).toMatch(/Serial Number: 0E\s+Revocation Date: [^\n]+\s+CRL entry extensions:\s+X509v3 CRL Reason Code: \s+Superseded/);
  });

  test('rejects: a previous list that is not CRL entries', async () => {
    expect((await refusal(Promise.resolve().then(() => mergeEntries(Buffer.from('0403010203', 'hex'), { revoked: [], released: [] })))).type).toBe('malformed');
    expect((await refusal(Promise.resolve().then(() => mergeEntries(Buffer.from('3005040301020317', 'hex'), { revoked: [], released: [] })))).type).toBe('malformed');
    expect((await refusal(Promise.resolve().then(() => revokedListOf(Buffer.from('020101', 'hex'))))).type).toBe('malformed');
  });
});
