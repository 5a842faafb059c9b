import { generateKeyPairSync, sign } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeEach, describe, expect, test, vi } from 'vitest';
import type { AuditLog } from '../audit/audit-log.js';
import { caUrls } from '../ca/issuer.js';
import type { CertificateRepository, RevokedEntry } from '../ca/ports.js';
import { crlShardOf } from '../ca/serial.js';
import { fixedClock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { children, oid, readOid, readOne, seq, Tag, value } from '../pki/der.js';
import { encodeName } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import type { CrlSigner } from './build.js';
import { CrlPublisher } from './crl-publisher.js';
import { publishCrlFiles } from './files.js';
import { scopesOf } from './generator.js';
import { crlHandler } from './http.js';
import type { CrlRecord, CrlRepository, HeldCrl } from './ports.js';
import { crlUrl, fileOfScope, parseScope, scopeOfFile } from './scope.js';
import { lintingSigner } from './testing/signer.js';

// ---------------------------------------------------------------- in-memory repositories

/** A CrlRepository over arrays; `failInserts` makes inserts fail (a database outage). */
function memoryCrls(): CrlRepository & { rows: CrlRecord[]; failInserts: boolean; leases: Map<string, { holder: number; untilMs: number }> } {
  const seq = new Map<string, bigint>();
  const leases = new Map<string, { holder: number; untilMs: number }>();
  const rows: CrlRecord[] = [];
  const newest = (caId: string, scope: string) => rows.filter((r) => r.caId === caId && r.scope === scope).sort((a, b) => (a.crlNumber < b.crlNumber ? 1 : -1))[0] ?? null;
  const repo = {
    rows,
    leases,
    failInserts: false,
    async acquireLease(caId: string, holder: number, now: Date, until: Date) {
      const l = leases.get(caId);
      if (l && l.holder !== holder && l.untilMs > now.getTime()) return false;
      leases.set(caId, { holder, untilMs: until.getTime() });
      return true;
    },
    async releaseLease(caId: string, holder: number) {
      if (leases.get(caId)?.holder === holder) leases.delete(caId);
    },
    async nextCrlNumber(caId: string) {
      const n = (seq.get(caId) ?? 0n) + 1n;
      seq.set(caId, n);
      return n;
    },
    async insert(crl: CrlRecord) {
      if (repo.failInserts) throw new Error('database unavailable');
      if (rows.some((r) => r.caId === crl.caId && r.scope === crl.scope && r.crlNumber === crl.crlNumber)) throw new PkiError('conflict', 'duplicate CRL');
      rows.push(crl);
    },
    async latest(caId: string, scope: string) {
      return newest(caId, scope);
    },
    async loadMany(caId: string, wanted: readonly { scope: string; crlNumber: bigint }[]) {
      return rows.filter((r) => r.caId === caId && wanted.some((w) => w.scope === r.scope && w.crlNumber === r.crlNumber));
    },
    async latestAll(caId: string) {
      const scopes = new Set(rows.filter((r) => r.caId === caId).map((r) => r.scope));
      return [...scopes].map((s) => {
        const { der: _der, ...meta } = newest(caId, s)!;
        return meta;
      });
    },
    async prune(caId: string, keep: number) {
      let n = 0;
      for (const scope of new Set(rows.filter((r) => r.caId === caId).map((r) => r.scope))) {
        const old = rows.filter((r) => r.caId === caId && r.scope === scope).sort((a, b) => (a.crlNumber < b.crlNumber ? 1 : -1)).slice(keep);
        for (const o of old) rows.splice(rows.indexOf(o), 1);
        n += old.length;
      }
      return n;
    },
  };
  return repo;
}

interface MemoryCert {
  issuerId: string;
  serialHex: string;
  crlShard: number;
  notAfter: Date;
  status: 'valid' | 'revoked';
  revokedAt: Date | null;
  reason: number;
  invalidityDate: Date | null;
  holdReleasedAt: Date | null;
}

/** The revocation part of CertificateRepository over a Map, with helpers to revoke and release. */
function memoryCertificates(shards: number) {
  const certs = new Map<string, MemoryCert>();
  const key = (issuerId: string, serialHex: string) => `${issuerId}/${serialHex}`;
  const entry = (c: MemoryCert): RevokedEntry => ({ serialHex: c.serialHex, revokedAt: c.revokedAt!, reason: c.reason, invalidityDate: c.invalidityDate });
  const repo: Pick<CertificateRepository, 'revokedEntries' | 'changedSince' | 'statusChangedSince'> = {
    async *revokedEntries(issuerId, shard, opts) {
      const all = [...certs.values()]
        .filter((c) => c.issuerId === issuerId && c.status === 'revoked' && c.notAfter > opts.notAfterAfter && (shard === null || c.crlShard === shard))
        .sort((a, b) => a.serialHex.localeCompare(b.serialHex));
      const size = opts.pageSize ?? 10_000;
      for (let i = 0; i < all.length; i += size) yield all.slice(i, i + size).map(entry);
    },
    async changedSince(issuerId, shard, since) {
      const mine = [...certs.values()].filter((c) => c.issuerId === issuerId && (shard === null || c.crlShard === shard));
      return {
        revoked: mine.filter((c) => c.status === 'revoked' && c.revokedAt! > since).map(entry),
        released: mine.filter((c) => c.status === 'valid' && c.holdReleasedAt && c.holdReleasedAt > since).map((c) => c.serialHex),
      };
    },
    async statusChangedSince(since, limit) {
      return [...certs.values()]
        .flatMap((c) => [c.revokedAt, c.holdReleasedAt].filter((d): d is Date => !!d && d > since).map((at) => ({ issuerId: c.issuerId, serialHex: c.serialHex, at })))
        .slice(0, limit);
    },
  };
  return {
    repo: repo as CertificateRepository,
    /** Adds a valid certificate; returns its shard. */
    add(issuerId: string, serialHex: string, notAfter: Date): number {
      const crlShard = crlShardOf(serialHex, shards);
      certs.set(key(issuerId, serialHex), { issuerId, serialHex, crlShard, notAfter, status: 'valid', revokedAt: null, reason: 0, invalidityDate: null, holdReleasedAt: null });
      return crlShard;
    },
    revoke(issuerId: string, serialHex: string, at: Date, reason: number, invalidityDate: Date | null = null): void {
      Object.assign(certs.get(key(issuerId, serialHex))!, { status: 'revoked', revokedAt: at, reason, invalidityDate });
    },
    release(issuerId: string, serialHex: string, at: Date): void {
      Object.assign(certs.get(key(issuerId, serialHex))!, { status: 'valid', holdReleasedAt: at });
    },
  };
}

// ---------------------------------------------------------------- set-up

const { privateKey } = generateKeyPairSync('ed25519');
/** The CA's signer stand-in: it lints each TBS against what the publisher expects of its scope, then signs. */
const caSigner = () =>
  lintingSigner({
    subjectDer: encodeName({ O: 'Trellis', CN: 'Publisher Test CA' }),
    keyIdentifier: Buffer.alloc(20, 7),
    signatureAlgorithm: seq(oid(OID.ed25519)),
    sign: (tbs) => sign(null, tbs, privateKey),
  });
const goodSigner: CrlSigner = caSigner();
const urls = caUrls('http://pki.test:8080');
const shards = 4;
const start = new Date('2026-05-01T00:00:00Z');
const inAYear = new Date('2027-05-01T00:00:00Z');

/** Serials of a CRL and its extension OIDs, read back with the DER reader. */
function readCrl(der: Buffer) {
  const tbs = children(children(readOne(der, Tag.SEQUENCE))[0]!);
  const list = tbs.find((t, i) => i > 4 && t.tag === Tag.SEQUENCE);
  const exts = children(children(tbs.find((t) => t.tag === 0xa0)!)[0]!).map((e) => readOid(children(e)[0]!));
  const entries = list
    ? children(list).map((e) => {
        const c = children(e);
        const reasonExt = c[2] && children(c[2]).find((x) => readOid(children(x)[0]!) === OID.reasonCode);
        return { serialHex: value(c[0]!).toString('hex'), reason: reasonExt ? value(readOne(value(children(reasonExt)[1]!)))[0] : 0 };
      })
    : [];
  return { entries, exts };
}

function setup(o: { delaySeconds?: number; signer?: CrlSigner; heldEntries?: number; heldBytes?: number } = {}) {
  const clock = fixedClock(start);
  const crls = memoryCrls();
  const certs = memoryCertificates(shards);
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const audit = {
    record: async (type: string, _actor: string, data: Record<string, unknown>) => {
      events.push({ type, data });
      return {};
    },
  } as unknown as AuditLog;
  const logs: Record<string, unknown>[] = [];
  const make = (extra: { heldBytes?: number } = {}) => {
    const p = new CrlPublisher({
      crls, certificates: certs.repo, audit, clock, urls, validitySeconds: 86_400, delaySeconds: o.delaySeconds ?? 60, log: (e) => logs.push(e),
      ...(o.heldEntries !== undefined ? { heldEntries: o.heldEntries } : {}),
      ...(o.heldBytes !== undefined ? { heldBytes: o.heldBytes } : {}),
      ...extra,
    });
    p.addIssuer({ id: 'ca', shards, signer: o.signer ?? goodSigner });
    return p;
  };
  return { clock, crls, certs, events, logs, publisher: make(), another: (extra: { heldBytes?: number } = {}) => make(extra) };
}

/** A serial in shard `n`. */
function serialIn(n: number, i = 0): string {
  for (let k = i * 1000; ; k++) {
    const s = `7a${k.toString(16).padStart(6, '0')}0102030405060708`;
    if (crlShardOf(s, shards) === n) return s;
  }
}

const numbers = (p: CrlPublisher) => Object.fromEntries(p.held().map((c) => [c.scope, c.crlNumber]));

describe('CrlPublisher', () => {
  test('the first pass publishes every scope: one CRL per shard, the full CRL and its delta', async () => {
    const { publisher, certs, crls, events } = setup();
    const s = serialIn(2);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, start, 1);
    await publisher.tick();
    expect(publisher.held().map((c) => c.scope).sort()).toEqual(['full', 'full-delta', 'shard-0', 'shard-1', 'shard-2', 'shard-3']);
    expect(new Set(crls.rows.map((r) => r.crlNumber)).size).toBe(6);
    expect(readCrl(publisher.get('ca', 'shard-2')!.der!).entries).toEqual([{ serialHex: s, reason: 1 }]);
    expect(readCrl(publisher.get('ca', 'shard-1')!.der!).entries).toEqual([]);
    expect(readCrl(publisher.get('ca', 'full')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
    expect(events.filter((e) => e.type === 'crl.published')).toHaveLength(6);
  });

  test('extensions per scope: shards name their URL in a critical IDP; full has none and points at its delta; the delta names its base', async () => {
    const { publisher } = setup();
    await publisher.tick();
    expect(readCrl(publisher.get('ca', 'shard-1')!.der!).exts).toEqual([OID.authorityKeyIdentifier, OID.cRLNumber, OID.issuingDistributionPoint]);
    expect(readCrl(publisher.get('ca', 'full')!.der!).exts).toEqual([OID.authorityKeyIdentifier, OID.cRLNumber, OID.freshestCRL]);
    expect(readCrl(publisher.get('ca', 'full-delta')!.der!).exts).toEqual([OID.authorityKeyIdentifier, OID.cRLNumber, OID.deltaCRLIndicator]);
    expect(publisher.get('ca', 'full-delta')!.baseCrlNumber).toBe(publisher.get('ca', 'full')!.crlNumber);
    expect(publisher.get('ca', 'shard-1')!.der!.includes(Buffer.from('http://pki.test:8080/crl/ca/1.crl'))).toBe(true);
  });

  test('a revocation told on this node: the next pass regenerates its shard and the delta, nothing else', async () => {
    const { publisher, certs, clock } = setup();
    await publisher.tick();
    const before = numbers(publisher);
    const s = serialIn(3);
    certs.add('ca', s, inAYear);
    clock.advance(1000);
    certs.revoke('ca', s, clock.now(), 4);
    publisher.statusChanged('ca', s, 3);
    await publisher.tick();
    const after = numbers(publisher);
    expect(Object.keys(after).filter((k) => after[k] !== before[k]).sort()).toEqual(['full-delta', 'shard-3']);
    expect(after['shard-3']).toBeGreaterThan(before['full-delta']!);
    expect(readCrl(publisher.get('ca', 'shard-3')!.der!).entries).toEqual([{ serialHex: s, reason: 4 }]);
    expect(readCrl(publisher.get('ca', 'full-delta')!.der!).entries).toEqual([{ serialHex: s, reason: 4 }]);
  });

  test('many revocations before a pass make one CRL per shard touched', async () => {
    const { publisher, certs, clock, crls } = setup();
    await publisher.tick();
    const rowsBefore = crls.rows.length;
    clock.advance(1000);
    for (let i = 0; i < 50; i++) {
      const s = serialIn(i % 2, i);
      certs.add('ca', s, inAYear);
      certs.revoke('ca', s, clock.now(), 1);
      publisher.statusChanged('ca', s, i % 2);
    }
    await Promise.all([publisher.tick(), publisher.tick(), publisher.tick()]);
    expect(crls.rows.slice(rowsBefore).map((r) => r.scope).sort()).toEqual(['full-delta', 'shard-0', 'shard-1']);
    expect(readCrl(publisher.get('ca', 'shard-0')!.der!).entries).toHaveLength(25);
  });

  test('a revocation made on another node is found by polling the database', async () => {
    const { publisher, certs, clock } = setup();
    await publisher.tick();
    const before = numbers(publisher);
    const s = serialIn(0);
    certs.add('ca', s, inAYear);
    clock.advance(2000);
    certs.revoke('ca', s, clock.now(), 1);
    await publisher.tick();
    expect(numbers(publisher)['shard-0']).toBeGreaterThan(before['full-delta']!);
    expect(numbers(publisher)['shard-1']).toBe(before['shard-1']);
    expect(readCrl(publisher.get('ca', 'shard-0')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
  });

  test('every scope is regenerated at half its validity, not before', async () => {
    const { publisher, clock } = setup();
    await publisher.tick();
    const first = numbers(publisher);
    clock.advance(43_199_000);
    await publisher.tick();
    expect(numbers(publisher)).toEqual(first);
    clock.advance(1000);
    await publisher.tick();
    const second = numbers(publisher);
    for (const scope of Object.keys(first)) expect(second[scope]).toBeGreaterThan(first[scope]!);
  });

  test('the delta lists revocations since its base and removeFromCRL for lifted holds; the base is rebuilt when the delta grows large', async () => {
    const { publisher, certs, clock } = setup();
    const held = serialIn(1);
    certs.add('ca', held, inAYear);
    certs.revoke('ca', held, start, 6);
    await publisher.tick();
    expect(readCrl(publisher.get('ca', 'full')!.der!).entries).toEqual([{ serialHex: held, reason: 6 }]);
    clock.advance(600_000);
    certs.release('ca', held, clock.now());
    publisher.statusChanged('ca', held, 1);
    await publisher.tick();
    expect(readCrl(publisher.get('ca', 'full-delta')!.der!).entries).toEqual([{ serialHex: held, reason: 8 }]);
    expect(readCrl(publisher.get('ca', 'shard-1')!.der!).entries).toEqual([]);
    const base = publisher.get('ca', 'full')!.crlNumber;
    clock.advance(1000);
    for (let i = 0; i < 1001; i++) {
      const s = serialIn(i % shards, i + 10);
      certs.add('ca', s, inAYear);
      certs.revoke('ca', s, clock.now(), 1);
    }
    await publisher.tick(); // the delta takes them all
    expect(publisher.get('ca', 'full-delta')!.entries).toBe(1002);
    await publisher.tick(); // too big: a new full CRL, and an empty delta on it
    expect(publisher.get('ca', 'full')!.crlNumber).toBeGreaterThan(base);
    expect(publisher.get('ca', 'full')!.entries).toBe(1001);
    expect(publisher.get('ca', 'full-delta')!.baseCrlNumber).toBe(publisher.get('ca', 'full')!.crlNumber);
  });

  test('expired certificates leave the CRLs (RFC 5280 §3.3)', async () => {
    const { publisher, certs } = setup();
    const s = serialIn(2);
    certs.add('ca', s, new Date(start.getTime() - 1000));
    certs.revoke('ca', s, new Date(start.getTime() - 5000), 1);
    await publisher.tick();
    expect(publisher.get('ca', 'shard-2')!.entries).toBe(0);
  });

  test('a failed generation keeps the last good CRL served, is logged and audited, backs off, then recovers', async () => {
    let broken = false;
    const signer: CrlSigner = { ...goodSigner, sign: async (tbs, expect) => (broken ? Promise.reject(new Error('HSM unreachable')) : goodSigner.sign(tbs, expect)) };
    const { publisher, clock, events, logs, certs } = setup({ signer });
    await publisher.tick();
    const good = publisher.get('ca', 'shard-2')!;
    broken = true;
    const s = serialIn(2);
    certs.add('ca', s, inAYear);
    clock.advance(1000);
    certs.revoke('ca', s, clock.now(), 1);
    publisher.statusChanged('ca', s, 2);
    await expect(publisher.tick()).resolves.toBeUndefined();
    expect(publisher.get('ca', 'shard-2')).toBe(good);
    expect(events.filter((e) => e.type === 'crl.generation_failed').map((e) => e.data.scope)).toEqual(['shard-2', 'full-delta']);
    expect(logs.some((l) => l.level === 'error' && l.error === 'HSM unreachable')).toBe(true);
    // Within the backoff nothing is retried; afterwards the still-dirty shard is.
    clock.advance(500);
    await publisher.tick();
    expect(events.filter((e) => e.type === 'crl.generation_failed')).toHaveLength(2);
    broken = false;
    clock.advance(5000);
    await publisher.tick();
    expect(publisher.get('ca', 'shard-2')!.crlNumber).toBeGreaterThan(good.crlNumber);
    expect(readCrl(publisher.get('ca', 'shard-2')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
  });

  test('a failed database insert is not served either (the CRL only counts once stored)', async () => {
    const { publisher, crls } = setup();
    await publisher.tick();
    const good = publisher.get('ca', 'shard-0')!;
    crls.failInserts = true;
    await expect(publisher.generate('ca', 'shard-0')).rejects.toThrow(/database unavailable/);
    expect(publisher.get('ca', 'shard-0')).toBe(good);
  });

  test('two nodes on one database: numbers never collide and both serve the highest', async () => {
    const { publisher: a, another, crls, clock } = setup();
    const b = another();
    await a.tick();
    clock.advance(1000);
    await b.generate('ca', 'shard-0');
    await a.tick();
    expect(a.get('ca', 'shard-0')!.crlNumber).toBe(b.get('ca', 'shard-0')!.crlNumber);
    await Promise.all([a.generate('ca', 'shard-1'), b.generate('ca', 'shard-1'), a.generate('ca', 'full'), b.generate('ca', 'full')]);
    await Promise.all([a.tick(), b.tick()]);
    const numbersSeen = crls.rows.map((r) => r.crlNumber);
    expect(new Set(numbersSeen).size).toBe(numbersSeen.length);
    for (const scope of ['shard-1', 'full']) {
      const highest = crls.rows.filter((r) => r.scope === scope).reduce((m, r) => (r.crlNumber > m ? r.crlNumber : m), 0n);
      expect(a.get('ca', scope)!.crlNumber).toBe(highest);
      expect(b.get('ca', scope)!.crlNumber).toBe(highest);
    }
  });

  test('a CA without its key here (an offline root) is served, never generated', async () => {
    const { publisher, crls } = setup();
    publisher.addIssuer({ id: 'root', shards: 1, signer: null });
    await expect(publisher.generate('root', 'shard-0')).rejects.toThrow(PkiError);
    const signer = new CrlPublisher({ crls, certificates: memoryCertificates(1).repo, audit: { record: async () => ({}) } as unknown as AuditLog, clock: fixedClock(start), urls, validitySeconds: 86_400, delaySeconds: 60 });
    signer.addIssuer({ id: 'root', shards: 1, signer: goodSigner, onlyCaCerts: true, deltas: false });
    await signer.generate('root', 'shard-0');
    await publisher.tick();
    expect(publisher.get('root', 'shard-0')).toBeDefined();
    expect(publisher.get('root', 'full')).toBeUndefined();
    expect(crls.rows.filter((r) => r.caId === 'root')).toHaveLength(1);
  });

  test('rejects: unknown CA, a shard beyond the CA, an unknown scope, a delta for a CA without deltas', async () => {
    const { publisher } = setup();
    publisher.addIssuer({ id: 'root', shards: 1, signer: goodSigner, deltas: false });
    await expect(publisher.generate('nope', 'full')).rejects.toMatchObject({ type: 'notFound' });
    await expect(publisher.generate('ca', 'shard-4')).rejects.toMatchObject({ type: 'malformed' });
    await expect(publisher.generate('ca', 'delta')).rejects.toMatchObject({ type: 'malformed' });
    await expect(publisher.generate('root', 'full-delta')).rejects.toMatchObject({ type: 'malformed' });
    await expect(publisher.generate('ca', 'full-delta')).rejects.toMatchObject({ type: 'notFound' }); // no base yet
    expect(scopesOf({ id: 'root', shards: 1, signer: null, deltas: false })).toEqual(['shard-0', 'full']);
  });

  test('old CRLs are pruned, the newest few of each scope kept', async () => {
    const { publisher, crls, clock } = setup();
    for (let i = 0; i < 6; i++) {
      await publisher.generate('ca', 'shard-0');
      clock.advance(1000);
    }
    clock.advance(11 * 60_000);
    await publisher.tick();
    expect(crls.rows.filter((r) => r.scope === 'shard-0').length).toBeLessThanOrEqual(3);
  });
});

describe('CrlPublisher: every CRL is linted before it is signed', () => {
  test('a store that returns one serial twice: the CA refuses to sign it, the failure is logged but not audited again here, the last good CRL still served', async () => {
    const counting = caSigner();
    const { publisher, certs, clock, events, crls, logs } = setup({ signer: counting });
    const s = serialIn(1);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, start, 1);
    await publisher.tick();
    const good = publisher.get('ca', 'full')!;
    const signedBefore = counting.signed.length;
    const rowsBefore = crls.rows.length;
    // A store fault: every page of the full CRL comes twice.
    const read = certs.repo.revokedEntries.bind(certs.repo);
    certs.repo.revokedEntries = async function* (issuerId, shard, opts) {
      for await (const page of read(issuerId, shard, opts)) yield [...page, ...page];
    };
    clock.advance(13 * 3600_000); // past half-life: every scope is regenerated, read whole from the store
    await publisher.tick();
    const failed = logs.filter((l) => l.level === 'error' && l.msg === 'CRL generation failed; serving the last good CRL');
    expect(failed.map((l) => l.scope)).toEqual(['shard-1', 'full']);
    expect(String(failed[0]!.error)).toMatch(/^CRL lint failed \(CRL number \d+\): e_crl_serial_duplicate \(serial [0-9a-f]+ appears twice\)/);
    // Not audited twice: the CA audits crl.lint_failed, and the lint failure is the generation failure.
    expect(events.filter((e) => e.type === 'crl.generation_failed' || e.type === 'crl.lint_failed')).toEqual([]);
    // The scopes without the fault were signed; the two that failed were not, and keep their last good CRL.
    expect(crls.rows.slice(rowsBefore).map((r) => r.scope).sort()).toEqual(['full-delta', 'shard-0', 'shard-2', 'shard-3']);
    expect(counting.signed.length - signedBefore).toBe(4);
    expect(publisher.get('ca', 'full')).toBe(good);
  });
});

describe('CrlPublisher: shards regenerated from their previous CRL', () => {
  const fromOf = (logs: Record<string, unknown>[], scope: string) => logs.filter((l) => l.msg === 'CRL published' && l.scope === scope).map((l) => l.from);

  test('a dirty shard starts from its previous CRL and reads only the changes; the same entries as a complete read', async () => {
    const { publisher, certs, clock, logs } = setup();
    const old = [serialIn(2, 1), serialIn(2, 2), serialIn(2, 3)];
    for (const s of old) {
      certs.add('ca', s, inAYear);
      certs.revoke('ca', s, start, 6);
    }
    await publisher.tick();
    expect(fromOf(logs, 'shard-2')).toEqual(['store']);
    clock.advance(60_000);
    const s = serialIn(2, 4);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, clock.now(), 1);
    certs.revoke('ca', old[0]!, clock.now(), 1); // a hold made final
    certs.release('ca', old[1]!, clock.now()); // a hold lifted
    for (const x of [s, old[0]!, old[1]!]) publisher.statusChanged('ca', x, 2);
    let read = false;
    const revokedEntries = certs.repo.revokedEntries;
    certs.repo.revokedEntries = (...args) => ((read = true), revokedEntries(...args));
    await publisher.tick();
    expect(read).toBe(false);
    expect(fromOf(logs, 'shard-2')).toEqual(['store', 'previous']);
    const expected = [{ serialHex: old[0]!, reason: 1 }, { serialHex: old[2]!, reason: 6 }, { serialHex: s, reason: 1 }].sort((a, b) => a.serialHex.localeCompare(b.serialHex));
    expect(readCrl(publisher.get('ca', 'shard-2')!.der!).entries).toEqual(expected);
    // A complete read of the same shard lists the same.
    certs.repo.revokedEntries = revokedEntries;
    const complete = await publisher.generate('ca', 'shard-2');
    expect(readCrl(complete.der).entries).toEqual(expected);
  });

  test('a revocation stamped before the previous CRL but committed after it is still picked up (the overlap window)', async () => {
    const { publisher, certs, clock } = setup();
    await publisher.tick();
    const previous = publisher.get('ca', 'shard-1')!;
    clock.advance(30_000);
    const s = serialIn(1, 5);
    certs.add('ca', s, inAYear);
    // Stamped 2 minutes before the previous shard CRL's thisUpdate, visible only now.
    certs.revoke('ca', s, new Date(previous.thisUpdate.getTime() - 120_000), 1);
    publisher.statusChanged('ca', s, 1);
    await publisher.tick();
    expect(readCrl(publisher.get('ca', 'shard-1')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
  });

  test('at half-life a shard is read whole from the store again, which drops certificates that expired', async () => {
    const { publisher, certs, clock, logs } = setup();
    const soon = serialIn(3, 1);
    certs.add('ca', soon, new Date(start.getTime() + 3_600_000));
    certs.revoke('ca', soon, start, 1);
    await publisher.tick();
    clock.advance(7_200_000); // expired, but the shard's CRL is not due yet
    const s = serialIn(3, 2);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, clock.now(), 1);
    publisher.statusChanged('ca', s, 3);
    await publisher.tick();
    expect(readCrl(publisher.get('ca', 'shard-3')!.der!).entries.map((e) => e.serialHex).sort()).toEqual([soon, s].sort());
    clock.advance(43_200_000);
    await publisher.tick();
    expect(fromOf(logs, 'shard-3')).toEqual(['store', 'previous', 'store']);
    expect(readCrl(publisher.get('ca', 'shard-3')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
  });

  test('a previous CRL that cannot be walked: logged, and the shard is read whole instead', async () => {
    const { publisher, certs, clock, logs } = setup();
    await publisher.tick();
    const held = publisher.get('ca', 'shard-0')!;
    held.der = Buffer.from('300a3008020101170353', 'hex'); // not a CRL any more
    clock.advance(1000);
    const s = serialIn(0, 1);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, clock.now(), 1);
    publisher.statusChanged('ca', s, 0);
    await publisher.tick();
    expect(logs.some((l) => l.level === 'warn' && l.msg === 'previous CRL not reusable; reading the whole shard')).toBe(true);
    expect(fromOf(logs, 'shard-0').at(-1)).toBe('store');
    expect(readCrl(publisher.get('ca', 'shard-0')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
  });
});

describe('CrlPublisher: one publisher per database (lease)', () => {
  /** Publishers on one database, each with its own lease holder id and log. */
  function cluster(n: number, leaseSeconds = 30) {
    const clock = fixedClock(start);
    const crls = memoryCrls();
    const certs = memoryCertificates(shards);
    const audit = { record: async () => ({}) } as unknown as AuditLog;
    const nodes = Array.from({ length: n }, (_, i) => {
      const logs: Record<string, unknown>[] = [];
      const p = new CrlPublisher({ crls, certificates: certs.repo, audit, clock, urls, validitySeconds: 86_400, delaySeconds: 60, log: (e) => logs.push(e), lease: { holder: i + 1, seconds: leaseSeconds } });
      p.addIssuer({ id: 'ca', shards, signer: goodSigner });
      return { p, logs, made: () => logs.filter((l) => l.msg === 'CRL published').map((l) => l.scope as string) };
    });
    return { clock, crls, certs, nodes };
  }

  /** Two nodes that published once (a holds the lease), then a certificate of shard 2 revoked in the database 2 s later; nobody told yet. */
  async function revokedOnB() {
    const { nodes, certs, clock, crls } = cluster(2);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await a.p.tick();
    await b.p.tick();
    const rows = crls.rows.length;
    clock.advance(2000);
    const s = serialIn(2, 7);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, clock.now(), 1);
    return { a, b, s, rows, crls, clock };
  }

  test('the lease holder publishes; the others make nothing and serve what it stored', async () => {
    const { nodes, crls } = cluster(3);
    for (const n of nodes) await n.p.tick();
    expect(nodes[0]!.made().sort()).toEqual(['full', 'full-delta', 'shard-0', 'shard-1', 'shard-2', 'shard-3']);
    expect(nodes[1]!.made()).toEqual([]);
    expect(nodes[2]!.made()).toEqual([]);
    expect(crls.rows).toHaveLength(6);
    for (const n of nodes.slice(1)) expect(numbers(n.p)).toEqual(numbers(nodes[0]!.p));
    expect(nodes.map((n) => n.p.isPublisher('ca'))).toEqual([true, false, false]);
  });

  test('a revocation made on another node is published once, by the holder, and served by every node', async () => {
    const { a, b, s, rows, crls, clock } = await revokedOnB();
    b.p.statusChanged('ca', s, 2); // revoked through node b's API
    await b.p.tick(); // b does not publish it: a will
    clock.advance(1000);
    await a.p.tick();
    clock.advance(1000);
    await b.p.tick();
    expect(crls.rows.slice(rows).map((r) => r.scope).sort()).toEqual(['full-delta', 'shard-2']);
    // b holds a's CRL as metadata and reads its DER from the store when asked for it (src/crl/held.ts).
    expect(b.p.get('ca', 'shard-2')!.der).toBeNull();
    expect(readCrl((await b.p.derOf(b.p.get('ca', 'shard-2')!))!).entries.map((e) => e.serialHex)).toEqual([s]);
    expect(b.p.get('ca', 'shard-2')!.der).not.toBeNull();
    // Long after: b never publishes it itself (a's CRL was made after the change).
    clock.advance(120_000);
    await a.p.tick();
    await b.p.tick();
    expect(b.made()).toEqual([]);
  });

  test('a node told of its change only after the holder published it, a second later, does not publish it again', async () => {
    const { a, b, s, rows, crls, clock } = await revokedOnB(); // committed through node b's API
    await a.p.tick(); // the holder polls it and publishes it at once
    clock.advance(1000); // b's audit write was slow: b is told in the next second
    b.p.statusChanged('ca', s, 2);
    await b.p.tick();
    clock.advance(120_000); // twice delaySeconds
    await a.p.tick();
    await b.p.tick();
    expect(crls.rows.slice(rows).map((r) => r.scope).sort()).toEqual(['full-delta', 'shard-2']);
    expect(b.made()).toEqual([]);
    expect(readCrl((await b.p.derOf(b.p.get('ca', 'shard-2')!))!).entries.map((e) => e.serialHex)).toEqual([s]);
  });

  test('the holder told of its own change after its poll published it, a second later, does not publish it again', async () => {
    const { a, s, rows, crls, clock } = await revokedOnB(); // revoked through a's API: committed, a not told yet (its answer waits for the disk)
    const revokedAt = clock.now();
    await a.p.tick(); // a's poll sees it committed and publishes it
    clock.advance(1000);
    a.p.statusChanged('ca', s, 2, revokedAt);
    await a.p.tick();
    clock.advance(1000);
    await a.p.tick();
    expect(crls.rows.slice(rows).map((r) => r.scope).sort()).toEqual(['full-delta', 'shard-2']);
    expect(readCrl(a.p.get('ca', 'shard-2')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
    // Another change of the same certificate later on is still told and published.
    clock.advance(1000);
    const releasedAt = clock.now();
    a.p.statusChanged('ca', s, 2, releasedAt);
    await a.p.tick();
    expect(crls.rows.slice(rows).map((r) => r.scope).sort()).toEqual(['full-delta', 'full-delta', 'shard-2', 'shard-2']);
  });

  test('the holder stops cleanly: another node takes the lease at its next pass and catches up', async () => {
    const { nodes, certs, clock } = cluster(2);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await a.p.tick();
    await b.p.tick();
    clock.advance(1000);
    const s = serialIn(1, 8);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, clock.now(), 1); // by the CLI: nobody was told
    await a.p.stop(); // before its next pass
    clock.advance(1000);
    await b.p.tick();
    expect(b.p.isPublisher('ca')).toBe(true);
    expect(b.logs.some((l) => l.msg === 'CRL publisher lease taken')).toBe(true);
    expect(readCrl(b.p.get('ca', 'shard-1')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
    // Only the shard whose CRL lacks a change in the database, and the delta.
    expect(b.made().sort()).toEqual(['full-delta', 'shard-1']);
  });

  test('the holder dies: its own changes are published by a node after delaySeconds; the lease passes on when it expires', async () => {
    const { nodes, certs, clock } = cluster(2, 300);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await a.p.tick();
    await b.p.tick();
    // a is gone (no stop, no more passes); its lease runs for 300 s.
    clock.advance(1000);
    const s = serialIn(3, 9);
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, clock.now(), 1);
    b.p.statusChanged('ca', s, 3);
    clock.advance(10_000);
    await b.p.tick();
    expect(b.made()).toEqual([]); // the holder may still publish it
    clock.advance(50_000); // 60 s after the change: the promise of delaySeconds is due
    await b.p.tick();
    expect(readCrl(b.p.get('ca', 'shard-3')!.der!).entries.map((e) => e.serialHex)).toEqual([s]);
    expect(b.made().sort()).toEqual(['full-delta', 'shard-3']);
    expect(b.p.isPublisher('ca')).toBe(false);
    clock.advance(240_000); // a's lease has expired: b takes it, and catches up on the shards whose CRL may lack a change
    await b.p.tick();
    expect(b.p.isPublisher('ca')).toBe(true);
    // shard-3's change is within 5 min (the overlap) before its CRL; the other shards have none.
    expect(b.made().filter((x) => x.startsWith('shard-')).sort()).toEqual(['shard-3', 'shard-3']);
  });

  test('a holder that keeps the lease but fails to renew CRLs: another node steps in at three quarters of their life', async () => {
    const { nodes, clock } = cluster(2);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await a.p.tick();
    await b.p.tick();
    // a renews its lease every pass but its CRLs are not renewed (its signer is broken, say).
    const renewLease = async () => a.p['scheduler']['holdLease']('ca', clock.now().getTime());
    clock.advance(43_200_000 + 1000); // past half-life: a's job
    await renewLease();
    await b.p.tick();
    expect(b.made()).toEqual([]);
    clock.advance(21_600_000); // three quarters
    await renewLease();
    await b.p.tick();
    expect(b.made().sort()).toEqual(['full', 'full-delta', 'shard-0', 'shard-1', 'shard-2', 'shard-3']);
    expect(b.p.isPublisher('ca')).toBe(false);
  });
});

describe('scopes and URLs', () => {
  test.each([
    ['0.crl', 'shard-0'],
    ['15.crl', 'shard-15'],
    ['4095.crl', 'shard-4095'],
    ['full.crl', 'full'],
    ['full-delta.crl', 'full-delta'],
  ])('%s ↔ %s', (file, scope) => {
    expect(scopeOfFile(file)).toBe(scope);
    expect(fileOfScope(scope)).toBe(file);
    expect(parseScope(scope)).not.toBeNull();
  });

  test.each(['4096.crl', '01.crl', '-1.crl', 'full.pem', 'delta.crl', '3-delta.crl', '.crl'])('no scope: %s', (file) => {
    expect(scopeOfFile(file)).toBeNull();
  });

  test('URLs: shards exactly as written into certificates; full and delta beside them', () => {
    expect(crlUrl(urls, 'issuing-1', 'shard-7')).toBe(urls.crl('issuing-1', 7));
    expect(crlUrl(urls, 'issuing-1', 'full')).toBe('http://pki.test:8080/crl/issuing-1/full.crl');
    expect(crlUrl(urls, 'issuing-1', 'full-delta')).toBe('http://pki.test:8080/crl/issuing-1/full-delta.crl');
  });
});

describe('CRLs held without their DER (more entries than heldEntries)', () => {
  const anHourBefore = new Date(start.getTime() - 3_600_000);
  const revoke = (certs: ReturnType<typeof setup>['certs'], s: string, reason: number, at = anHourBefore) => {
    certs.add('ca', s, inAYear);
    certs.revoke('ca', s, at, reason);
  };
  test('a large CRL made here is held as metadata; derOf reads its DER from the store, once for callers close together', async () => {
    const { publisher, certs, crls } = setup({ heldEntries: 2 });
    for (const s of [serialIn(0), serialIn(1), serialIn(2)]) revoke(certs, s, 1);
    await publisher.tick();
    const full = publisher.get('ca', 'full')!;
    expect([full.entries, full.der]).toEqual([3, null]);
    const stored = crls.rows.find((r) => r.scope === 'full' && r.crlNumber === full.crlNumber)!;
    expect(full.derBytes).toBe(stored.der.length);
    // Small CRLs keep their DER.
    expect(publisher.get('ca', 'shard-0')!.der).toEqual(crls.rows.find((r) => r.scope === 'shard-0')!.der);
    const reads = vi.spyOn(crls, 'loadMany');
    const [a, b] = await Promise.all([publisher.derOf(full), publisher.derOf(full)]);
    expect(a).toEqual(stored.der);
    expect(b).toBe(a);
    expect(await publisher.derOf(full)).toBe(a);
    expect(reads).toHaveBeenCalledTimes(1);
    expect(readCrl(a!).entries.map((e) => e.serialHex).sort()).toEqual([serialIn(0), serialIn(1), serialIn(2)].sort());
  });

  test('another process loads a large CRL as metadata only, serves it through derOf, and bases deltas on it', async () => {
    const { publisher, certs, clock, another } = setup({ heldEntries: 2 });
    for (const s of [serialIn(0), serialIn(1), serialIn(2)]) revoke(certs, s, 1);
    await publisher.tick();
    const other = another();
    await other.refresh();
    const full = other.get('ca', 'full')!;
    expect([full.crlNumber, full.der, full.derBytes]).toEqual([publisher.get('ca', 'full')!.crlNumber, null, undefined]);
    expect(await other.derOf(full)).toEqual(await publisher.derOf(publisher.get('ca', 'full')!));
    // A delta of it: the base is the stored full CRL's number.
    clock.advance(1000);
    revoke(certs, serialIn(3), 4, clock.now());
    const delta = await other.generate('ca', 'full-delta');
    expect(delta.baseCrlNumber).toBe(full.crlNumber);
    expect(readCrl(delta.der).entries).toEqual([{ serialHex: serialIn(3), reason: 4 }]);
  });

  test('another process loads metadata only (no DER read); the DER it serves stays within heldBytes, least recently served dropped first', async () => {
    const { publisher, crls, another } = setup();
    await publisher.tick();
    // Shard CRLs without entries differ only in the shard number of their IDP URL: one size.
    const size = crls.rows.find((r) => r.scope === 'shard-0')!.der.length;
    const other = another();
    const reads = vi.spyOn(crls, 'loadMany');
    await other.refresh();
    expect(reads).not.toHaveBeenCalled();
    expect(other.held().map((c) => c.der)).toEqual(other.held().map(() => null));
    // Readiness and metrics read the metadata: every scope is there.
    expect(other.held().map((c) => c.scope).sort()).toEqual(['full', 'full-delta', 'shard-0', 'shard-1', 'shard-2', 'shard-3']);
    const held = another({ heldBytes: 2 * size + size / 2 });
    await held.refresh();
    const serve = async (scope: string) => (await held.derOf(held.get('ca', scope)!))!;
    for (const scope of ['shard-0', 'shard-1', 'shard-0', 'shard-2']) expect(await serve(scope)).toEqual(crls.rows.find((r) => r.scope === scope)!.der);
    // shard-1 was the least recently served when shard-2 came in.
    expect(['shard-0', 'shard-1', 'shard-2'].map((scope) => held.get('ca', scope)!.der !== null)).toEqual([true, false, true]);
    const before = reads.mock.calls.length;
    await serve('shard-0');
    expect(reads.mock.calls.length).toBe(before);
    await serve('shard-1');
    expect(reads.mock.calls.length).toBe(before + 1);
    expect(['shard-0', 'shard-1', 'shard-2'].map((scope) => held.get('ca', scope)!.der !== null)).toEqual([true, true, false]);
  });

  test('derOf is null once the store no longer has that number (superseded and pruned), and a newer one is read', async () => {
    const { publisher, certs, crls, another } = setup({ heldEntries: 0 });
    revoke(certs, serialIn(1), 1);
    await publisher.tick();
    const other = another();
    await other.refresh();
    const old = other.get('ca', 'full')!;
    await publisher.generate('ca', 'full');
    crls.rows.splice(crls.rows.findIndex((r) => r.scope === 'full' && r.crlNumber === old.crlNumber), 1);
    expect(await other.derOf(old)).toBeNull();
    await other.refresh();
    const now = other.get('ca', 'full')!;
    expect(now.crlNumber).toBeGreaterThan(old.crlNumber);
    expect(await other.derOf(now)).toEqual(crls.rows.find((r) => r.scope === 'full' && r.crlNumber === now.crlNumber)!.der);
  });

  test('an incremental shard CRL starts from a previous CRL held without its DER', async () => {
    const { publisher, certs, clock } = setup({ heldEntries: 1 });
    const [a, b, c] = [serialIn(2, 0), serialIn(2, 1), serialIn(2, 2)];
    revoke(certs, a!, 1);
    revoke(certs, b!, 1);
    await publisher.tick();
    expect(publisher.get('ca', 'shard-2')!.der).toBeNull();
    clock.advance(1000);
    revoke(certs, c!, 4, clock.now());
    const next = await publisher.generate('ca', 'shard-2', { incremental: true });
    expect(readCrl(next.der).entries.sort((x, y) => x.serialHex.localeCompare(y.serialHex))).toEqual(
      [{ serialHex: a, reason: 1 }, { serialHex: b, reason: 1 }, { serialHex: c, reason: 4 }].sort((x, y) => x.serialHex.localeCompare(y.serialHex)),
    );
    const whole = await publisher.generate('ca', 'shard-2');
    expect(readCrl(whole.der).entries.length).toBe(3);
  });
});

describe('crlHandler', () => {
  const rec: HeldCrl = {
    caId: 'issuing-1', scope: 'shard-3', crlNumber: 17n, baseCrlNumber: null,
    thisUpdate: new Date('2026-05-01T00:00:00Z'), nextUpdate: new Date('2026-05-02T00:00:00Z'), entries: 0, der: Buffer.from('3003020101', 'hex'),
  };
  // The full CRL is held without its DER (a large one): the handler asks derOf for it.
  const large: HeldCrl = { ...rec, scope: 'full', crlNumber: 18n, entries: 200_000, der: null };
  const largeDer = Buffer.from('300403020102', 'hex');
  let derOf: (crl: HeldCrl) => Promise<Buffer | null> = async (crl) => (crl === large ? largeDer : crl.der);
  const asked: HeldCrl[] = [];
  const source = {
    get: (caId: string, scope: string) => (caId === rec.caId ? [rec, large].find((c) => c.scope === scope) : undefined),
    derOf: (crl: HeldCrl) => {
      asked.push(crl);
      return derOf(crl);
    },
  };
  const logged: Record<string, unknown>[] = [];
  const handle = crlHandler(source, () => new Date('2026-05-01T12:00:00Z'), (e) => logged.push(e));
  function call(method: string, url: string, headers: Record<string, string> = {}) {
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    const res = {
      status: 0, headers: {} as Record<string, unknown>, body: undefined as unknown, headersSent: false, destroyed: false,
      writeHead(s: number, h: Record<string, unknown>) { this.status = s; this.headers = h; this.headersSent = true; return this; },
      end(b?: unknown) { this.body = b; ended(); },
    };
    const took = handle({ method, url, headers, requestId: 'crl-req' } as unknown as IncomingMessage, res as unknown as ServerResponse);
    return Object.assign(res, { took, done });
  }

  test('200 with DER and caching headers until nextUpdate', () => {
    const r = call('GET', '/crl/issuing-1/3.crl');
    expect(r.took).toBe(true);
    expect(r.status).toBe(200);
    expect(r.body).toBe(rec.der);
    expect(r.headers).toMatchObject({
      'content-type': 'application/pkix-crl', 'content-length': 5, 'cache-control': 'public, max-age=43200, no-transform',
      expires: 'Sat, 02 May 2026 00:00:00 GMT', 'last-modified': 'Fri, 01 May 2026 00:00:00 GMT', etag: '"17"',
    });
  });

  test('HEAD has the headers and no body; a matching If-None-Match gets 304', () => {
    const head = call('HEAD', '/crl/issuing-1/3.crl');
    expect([head.status, head.body]).toEqual([200, undefined]);
    expect(call('GET', '/crl/issuing-1/3.crl', { 'if-none-match': '"16", "17"' }).status).toBe(304);
  });

  test('a CRL held without its DER: 200 with the same headers once derOf reads it; 304 without reading it', async () => {
    asked.length = 0;
    const r = call('GET', '/crl/issuing-1/full.crl');
    expect(r.took).toBe(true);
    await r.done;
    expect(r.status).toBe(200);
    expect(r.body).toBe(largeDer);
    expect(r.headers).toMatchObject({ 'content-type': 'application/pkix-crl', 'content-length': 6, etag: '"18"', 'last-modified': 'Fri, 01 May 2026 00:00:00 GMT' });
    const head = call('HEAD', '/crl/issuing-1/full.crl');
    await head.done;
    expect([head.status, head.body, head.headers['content-length']]).toEqual([200, undefined, 6]);
    expect(asked).toEqual([large, large]);
    const cached = call('GET', '/crl/issuing-1/full.crl', { 'if-none-match': '"18"' });
    expect(cached.status).toBe(304);
    expect(asked).toHaveLength(2);
  });

  test('a CRL held without its DER that cannot be read: 503 problem+json, Retry-After, not cached', async () => {
    try {
      for (const fails of [async () => null, async () => Promise.reject(new Error('database down'))]) {
        derOf = fails;
        const r = call('GET', '/crl/issuing-1/full.crl');
        await r.done;
        expect([r.status, r.headers['content-type'], r.headers['cache-control'], r.headers['retry-after']]).toEqual([503, 'application/problem+json', 'no-store', '1']);
        expect(JSON.parse(r.body as string)).toMatchObject({ status: 503 });
        expect(logged.at(-1)).toMatchObject({ level: 'warn', msg: 'CRL not served: its DER could not be read', reqId: 'crl-req' });
      }
    } finally {
      derOf = async (crl) => (crl === large ? largeDer : crl.der);
    }
  });

  test('404 problem+json for an unknown CA or scope; other paths and methods are not taken', () => {
    for (const url of ['/crl/issuing-1/4.crl', '/crl/nope/3.crl', '/crl/issuing-1/x.crl', '/crl/../3.crl']) {
      const r = call('GET', url);
      expect([r.took, r.status, r.headers['content-type']]).toEqual([true, 404, 'application/problem+json']);
      expect(JSON.parse(r.body as string)).toMatchObject({ status: 404 });
    }
    expect(call('GET', '/ocsp/abc').took).toBe(false);
    expect(call('POST', '/crl/issuing-1/3.crl').took).toBe(false);
  });
});

describe('publishCrlFiles', () => {
  let dir: string | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync('/tmp/trellis-crl-files-');
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('writes DER and PEM of every CRL in the URL layout, regenerating first when asked', async () => {
    const { publisher } = setup();
    const written = await publishCrlFiles(publisher, dir!, { regenerate: true });
    expect(written.map((w) => w.derPath.slice(dir!.length)).sort()).toEqual(['/ca/0.crl', '/ca/1.crl', '/ca/2.crl', '/ca/3.crl', '/ca/full-delta.crl', '/ca/full.crl']);
    for (const w of written) {
      expect(fs.readFileSync(w.derPath)).toEqual(publisher.get('ca', w.scope)!.der);
      const pem = fs.readFileSync(w.pemPath, 'utf8');
      expect(pem).toMatch(/^-----BEGIN X509 CRL-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END X509 CRL-----\n$/);
      expect(Buffer.from(pem.replace(/-----[^-]+-----|\n/g, ''), 'base64')).toEqual(publisher.get('ca', w.scope)!.der);
    }
    expect(fs.readdirSync(`${dir}/ca`).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('a process holding CRLs as metadata writes the same files, their DER read a page per query', async () => {
    const { publisher, crls, another } = setup();
    await publisher.tick();
    const other = another();
    const reads = vi.spyOn(crls, 'loadMany');
    const written = await publishCrlFiles(other, dir!);
    expect(reads).toHaveBeenCalledTimes(1);
    expect(written).toHaveLength(6);
    for (const w of written) expect(fs.readFileSync(w.derPath)).toEqual(crls.rows.find((r) => r.scope === w.scope && r.crlNumber === w.crlNumber)!.der);
  });
});
