/**
 * Incremental regeneration of a complete CRL: the previous CRL of the scope,
 * minus the certificates whose status changed since, plus those of them that
 * are revoked now. After one revocation this copies the previous entries as
 * DER (a memcpy per run of unchanged entries) instead of reading the whole
 * shard from the store again: at a million revoked certificates in 16 shards
 * a shard is ~62,500 rows, about 200 ms to read from SQLite, while the copy
 * and the walk over the previous DER take a few milliseconds.
 *
 * Correctness (docs/crl.md, "Incremental shard CRLs"): the previous CRL held
 * every certificate revoked when its number was drawn. Every status change
 * since then has a change time (revokedAt or holdReleasedAt) after the
 * previous thisUpdate minus the overlap the caller gives (commit lag, clock
 * skew), so it is in `changes`; for those certificates the store's current
 * state replaces whatever the previous CRL said. Entries of certificates that
 * expired since are kept (RFC 5280 §3.3 allows it; only their removal has a
 * rule) until the next complete read from the store, at half-life.
 */
import type { RevokedEntry } from '../ca/ports.js';
import { PkiError } from '../errors/pki-error.js';
import { children, readOne, Tag } from '../pki/der.js';
import type { EntryPage } from './build.js';

/**
 * The contents of the revokedCertificates SEQUENCE of a CRL (empty when the
 * CRL lists none), a view into `crlDer`.
 *
 *   CertificateList ::= SEQUENCE { tbsCertList TBSCertList, … }
 *   TBSCertList ::= SEQUENCE { version, signature, issuer, thisUpdate,
 *     nextUpdate OPTIONAL, revokedCertificates SEQUENCE OF … OPTIONAL, crlExtensions [0] OPTIONAL }
 */
export function revokedListOf(crlDer: Buffer): Buffer {
  const outer = readOne(crlDer, Tag.SEQUENCE);
  const tbs = children(outer)[0];
  if (!tbs || tbs.tag !== Tag.SEQUENCE) throw new PkiError('malformed', 'CRL without a TBSCertList');
  const fields = children(tbs);
  // version INTEGER, AlgorithmIdentifier, Name, thisUpdate; then nextUpdate when it is a Time.
  let i = 4;
  if (fields[i] && (fields[i]!.tag === Tag.UTCTime || fields[i]!.tag === Tag.GeneralizedTime)) i++;
  const list = fields[i];
  return list && list.tag === Tag.SEQUENCE ? list.buf.subarray(list.start, list.end) : Buffer.alloc(0);
}

/** Magnitude octets of a serial (no sign octet, no leading zeros), as a latin1 string key. */
function serialKeyOfHex(serialHex: string): string {
  const b = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.toString('latin1', i);
}

const malformedEntry = (at: number) => new PkiError('malformed', `previous CRL: malformed revokedCertificates entry at offset ${at}`);

/** Compares magnitudes numerically: `a` as octets, `[s, e)` of `list`. */
function compareMagnitude(a: Buffer, list: Buffer, s: number, e: number): number {
  if (a.length !== e - s) return a.length - (e - s);
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - list[s + i]!;
    if (d) return d;
  }
  return 0;
}

/**
 * The entries of the new CRL as pages for `buildCrl`: runs of unchanged
 * previous entries as DER views, the changed certificates that are revoked now
 * as entries, in serial order when the previous list was (as the store reads
 * it). `previousList` is {@link revokedListOf} the previous CRL; `changes` is
 * what the store says changed since (revoked now, hold lifted).
 */
export function mergeEntries(previousList: Buffer, changes: { revoked: readonly RevokedEntry[]; released: readonly string[] }): EntryPage[] {
  const changed = new Set<string>();
  for (const s of changes.released) changed.add(serialKeyOfHex(s));
  const added = changes.revoked.map((e) => {
    const key = serialKeyOfHex(e.serialHex);
    changed.add(key);
    return { key, magnitude: Buffer.from(key, 'latin1'), entry: e };
  });
  added.sort((a, b) => a.magnitude.length - b.magnitude.length || Buffer.compare(a.magnitude, b.magnitude));

  // A first-octet filter rejects almost every unchanged entry in two reads;
  // the rest is checked against a Set of latin1 keys.
  const firstOctets = new Uint8Array(256);
  for (const k of changed) firstOctets[k.charCodeAt(0)] = 1;

  const pages: EntryPage[] = [];
  let runStart = 0;
  let runCount = 0;
  let next = 0;
  const flushRun = (end: number) => {
    if (end > runStart) pages.push({ der: previousList.subarray(runStart, end), count: runCount });
    runCount = 0;
  };
  // The walk reads only what it needs (the entry's length and its serial),
  // inline: it runs over every entry of the shard, and is usually cold code.
  const list = previousList;
  const n = list.length;
  for (let p = 0; p < n; ) {
    // SEQUENCE { userCertificate INTEGER, revocationDate Time, crlEntryExtensions OPTIONAL }
    if (list[p] !== Tag.SEQUENCE || p + 2 > n) throw malformedEntry(p);
    let len = list[p + 1]!;
    let c = p + 2;
    if (len & 0x80) {
      const k = len & 0x7f;
      if (k < 1 || k > 3 || c + k > n) throw malformedEntry(p);
      len = 0;
      for (let i = 0; i < k; i++) len = len * 256 + list[c++]!;
    }
    const entryEnd = c + len;
    // A serial is at most 20 octets plus a sign octet (RFC 5280 §4.1.2.2): short-form length.
    const serialLen = list[c + 1]!;
    if (entryEnd > n || list[c] !== Tag.INTEGER || serialLen === 0 || serialLen > 0x7f || c + 2 + serialLen > entryEnd) throw malformedEntry(p);
    let s = c + 2;
    const e = s + serialLen;
    while (s < e - 1 && list[s] === 0) s++;
    if (next < added.length && compareMagnitude(added[next]!.magnitude, list, s, e) < 0) {
      flushRun(p);
      runStart = p;
      const batch: RevokedEntry[] = [];
      while (next < added.length && compareMagnitude(added[next]!.magnitude, list, s, e) < 0) batch.push(added[next++]!.entry);
      pages.push(batch);
    }
    if (firstOctets[list[s]!] === 1 && changed.has(list.toString('latin1', s, e))) {
      flushRun(p);
      runStart = entryEnd;
    } else {
      runCount++;
    }
    p = entryEnd;
  }
  flushRun(n);
  if (next < added.length) pages.push(added.slice(next).map((a) => a.entry));
  return pages;
}
