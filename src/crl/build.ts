/**
 * Streaming CRL encoder (RFC 5280 §5). Revoked entries are written as DER
 * straight into one buffer per page while the pages come from the store; the
 * TBSCertList is laid out once, in the buffer that becomes the CertificateList,
 * and signed once. A million entries never exist as objects at the same time:
 * peak memory is about twice the CRL's DER size plus one page of entries.
 */
import { setImmediate } from 'node:timers/promises';
import type { RevokedEntry } from '../ca/ports.js';
import { PkiError } from '../errors/pki-error.js';
import type { CrlExpectations } from '../lint/crl.js';
import { ctx, generalizedTime, int, seq, tlv, Tag, time } from '../pki/der.js';
import { authorityKeyIdentifierExtension, distributionPointName, extension } from '../pki/extensions.js';
import { crlReasons } from '../pki/crl-reason.js';
import { OID } from '../pki/oids.js';

/** Who signs a CRL: the CA's name, key identifier, signature algorithm and a sign that goes through the CA (CertificateAuthority.crlSigner). */
export interface CrlSigner {
  /** DER Name of the CA (the CRL's issuer field, byte for byte as in the CA certificate). */
  subjectDer: Buffer;
  /** Goes into the CRL's authorityKeyIdentifier (RFC 5280 §5.2.1: MUST be present). */
  keyIdentifier: Buffer;
  /** DER AlgorithmIdentifier, used in the TBS and in the outer CertificateList. */
  signatureAlgorithm: Buffer;
  /**
   * Lints the TBS against `expect` (src/lint/crl.ts) and signs it only when
   * the lint finds no error; ECDSA signatures as DER `ECDSA-Sig-Value`. A
   * finding is a `lintFailed` error, audited by the CA (`crl.lint_failed`),
   * and nothing is signed.
   */
  sign(tbs: Buffer, expect: CrlExpectations): Promise<Buffer>;
}

/** Everything in a CRL except its entries. */
export interface CrlContent {
  /** cRLNumber (RFC 5280 §5.2.3), drawn from the database sequence. */
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /**
   * The URL certificates of this scope carry in their CRL distribution point:
   * written as the critical issuingDistributionPoint's fullName (§5.2.5).
   * Omitted for a CRL that covers every certificate of the CA.
   */
  distributionPointUrl?: string;
  /** IDP onlyContainsCACerts: the root's CRL of CA certificates (ARL). */
  onlyCaCerts?: boolean;
  /** Complete CRLs: freshestCRL naming their delta CRL (§5.2.6). */
  freshestUrl?: string;
  /** Delta CRLs: the number of the complete CRL they build on (deltaCRLIndicator, §5.2.4). */
  baseCrlNumber?: bigint;
}

/** A hold lifted since the base CRL: a removeFromCRL entry in a delta CRL (§5.3.1). */
export interface RemovedEntry {
  serialHex: string;
  removedAt: Date;
}

/**
 * revokedCertificates elements already in DER (a run of unchanged entries
 * copied from the previous CRL of the scope), and how many there are.
 */
export interface EncodedEntries {
  der: Buffer;
  count: number;
}

/** One page of a CRL's entries: entries to encode, or entries already encoded. */
export type EntryPage = readonly RevokedEntry[] | EncodedEntries;

/** A built CRL. */
export interface BuiltCrl {
  der: Buffer;
  /** Number of revokedCertificates entries (removeFromCRL entries included). */
  entries: number;
}

// ---------------------------------------------------------------- entries

// Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }
// reasonCode ::= { CRLReason } (ENUMERATED). RFC 5280 §5.3.1: omitted rather than
// written as unspecified (0). One ready-made encoding per code.
const reasonExtensions = new Map<number, Buffer>(
  Object.values(crlReasons)
    .filter((code) => code !== crlReasons.unspecified)
    .map((code) => [code, extension(OID.reasonCode, false, tlv(Tag.ENUMERATED, Buffer.from([code])))]),
);

// invalidityDate ::= GeneralizedTime (§5.3.2). Everything before the
// GeneralizedTime (17 octets) is the same for every entry, so it is copied
// from one encoding made by the generic writer.
const invalidityPrefix = (() => {
  const sample = extension(OID.invalidityDate, false, generalizedTime(new Date(0)));
  return sample.subarray(0, sample.length - 17);
})();

/** Upper bound of one entry's encoding apart from its serial's value octets. */
const entryOverhead = 4 + 3 + 17 + 4 + 12 + invalidityPrefix.length + 17;

/** Writes DER length octets at `off`; returns the new offset. */
function writeLength(buf: Buffer, off: number, len: number): number {
  if (len < 0x80) {
    buf[off] = len;
    return off + 1;
  }
  const n = len < 0x100 ? 1 : len < 0x10000 ? 2 : len < 0x1000000 ? 3 : 4;
  buf[off++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) buf[off++] = (len / 2 ** (8 * i)) & 0xff;
  return off;
}

const lengthSize = (len: number): number => (len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : len < 0x1000000 ? 4 : 5);

function write2(buf: Buffer, off: number, n: number): void {
  buf[off] = 0x30 + ((n / 10) | 0);
  buf[off + 1] = 0x30 + (n % 10);
}

/**
 * Time (RFC 5280 §4.1.2.5 / §5.1.2.4: UTCTime through 2049, GeneralizedTime
 * from 2050; seconds, Z) or always GeneralizedTime (invalidityDate), written in
 * place; the same rule as `der.time`.
 */
function writeTime(buf: Buffer, off: number, d: Date, generalized: boolean, what: string): number {
  const y = d.getUTCFullYear();
  if (!Number.isFinite(y) || y < 0 || y > 9999) throw new PkiError('malformed', `CRL ${what} is not a valid date`);
  const utc = !generalized && y >= 1950 && y < 2050;
  buf[off++] = utc ? Tag.UTCTime : Tag.GeneralizedTime;
  buf[off++] = utc ? 13 : 15;
  if (!utc) {
    write2(buf, off, (y / 100) | 0);
    off += 2;
  }
  write2(buf, off, y % 100);
  write2(buf, off + 2, d.getUTCMonth() + 1);
  write2(buf, off + 4, d.getUTCDate());
  write2(buf, off + 6, d.getUTCHours());
  write2(buf, off + 8, d.getUTCMinutes());
  write2(buf, off + 10, d.getUTCSeconds());
  buf[off + 12] = 0x5a; // 'Z'
  return off + 13;
}

/**
 * Encodes revokedCertificates entries page by page. Entries go straight into
 * a target buffer while they fit (when the caller knows roughly how big the
 * CRL will be), otherwise into one Buffer per page.
 *
 *   revokedCertificates SEQUENCE OF SEQUENCE {
 *     userCertificate    CertificateSerialNumber,
 *     revocationDate     Time,
 *     crlEntryExtensions Extensions OPTIONAL }
 */
export class EntryEncoder {
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private readonly chunks: Buffer[] = [];
  /** Entries encoded so far. */
  count = 0;
  /** Bytes encoded so far (the revokedCertificates contents). */
  length = 0;
  /** Bytes written into the target, from `targetStart`. */
  inTarget = 0;

  constructor(
    private readonly target: Buffer | null = null,
    private readonly targetStart = 0,
    private readonly targetEnd = 0,
  ) {}

  /** Encodes one page of revoked entries. */
  addRevoked(page: readonly RevokedEntry[]): void {
    let off = 0;
    for (const e of page) {
      off = this.ensure(off, e.serialHex.length);
      if (e.reason === crlReasons.removeFromCRL) throw new PkiError('malformed', `serial ${e.serialHex}: removeFromCRL is not a revocation reason`);
      const reasonExt = e.reason === crlReasons.unspecified ? undefined : reasonExtensions.get(e.reason);
      if (e.reason !== crlReasons.unspecified && !reasonExt) throw new PkiError('malformed', `serial ${e.serialHex}: CRLReason ${e.reason} is not defined by RFC 5280`);
      off = this.writeEntry(off, e.serialHex, e.revokedAt, reasonExt, e.invalidityDate);
    }
    this.flush(off, page.length);
  }

  /** Takes entries that are already DER (trusted: they come from a CRL this CA signed). */
  addEncoded(page: EncodedEntries): void {
    if (page.der.length === 0) return;
    const at = this.targetStart + this.inTarget;
    if (this.target && this.chunks.length === 0 && at + page.der.length <= this.targetEnd) {
      page.der.copy(this.target, at);
      this.inTarget += page.der.length;
    } else {
      this.chunks.push(page.der);
    }
    this.count += page.count;
    this.length += page.der.length;
  }

  /** Encodes removeFromCRL entries (delta CRLs only: holds lifted since the base CRL). */
  addRemoved(removed: readonly RemovedEntry[]): void {
    let off = 0;
    for (const r of removed) {
      off = this.ensure(off, r.serialHex.length);
      off = this.writeEntry(off, r.serialHex, r.removedAt, reasonExtensions.get(crlReasons.removeFromCRL), null);
    }
    this.flush(off, removed.length);
  }

  /** True when some entries did not fit in the target. */
  get overflowed(): boolean {
    return this.chunks.length > 0;
  }

  /** The pages that did not fit in the target; the encoder forgets them. */
  take(): Buffer[] {
    return this.chunks.splice(0);
  }

  private ensure(off: number, serialChars: number): number {
    const need = off + entryOverhead + ((serialChars + 1) >> 1) + 2;
    if (need > this.scratch.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, this.scratch.length * 2));
      this.scratch.copy(bigger, 0, 0, off);
      this.scratch = bigger;
    }
    return off;
  }

  private writeEntry(start: number, serialHex: string, at: Date, reasonExt: Buffer | undefined, invalidity: Date | null): number {
    const buf = this.scratch;
    // CertificateSerialNumber ::= INTEGER, positive (§4.1.2.2): minimal octets,
    // a leading 0x00 when the high bit is set.
    let hex = serialHex.length % 2 ? `0${serialHex}` : serialHex;
    let skip = 0;
    while (skip + 2 < hex.length && hex.charCodeAt(skip) === 0x30 && hex.charCodeAt(skip + 1) === 0x30) skip += 2;
    if (skip) hex = hex.slice(skip);
    const valueOctets = hex.length >> 1;
    if (valueOctets === 0) throw new PkiError('malformed', 'empty serial number in a revoked entry');
    const signOctet = hex.charCodeAt(0) >= 0x38 ? 1 : 0; // first hex digit 8-f
    const intLen = valueOctets + signOctet;
    const timeLen = 2 + (at.getUTCFullYear() >= 1950 && at.getUTCFullYear() < 2050 ? 13 : 15);
    const extsContent = (reasonExt?.length ?? 0) + (invalidity ? invalidityPrefix.length + 17 : 0);
    const content = 1 + lengthSize(intLen) + intLen + timeLen + (extsContent ? 1 + lengthSize(extsContent) + extsContent : 0);

    let off = start;
    buf[off++] = Tag.SEQUENCE;
    off = writeLength(buf, off, content);
    buf[off++] = Tag.INTEGER;
    off = writeLength(buf, off, intLen);
    if (signOctet) buf[off++] = 0;
    if (buf.write(hex, off, valueOctets, 'hex') !== valueOctets) throw new PkiError('malformed', `serial "${serialHex}" is not hexadecimal`);
    off += valueOctets;
    off = writeTime(buf, off, at, false, `revocationDate of ${serialHex}`);
    if (extsContent) {
      buf[off++] = Tag.SEQUENCE;
      off = writeLength(buf, off, extsContent);
      if (reasonExt) off += reasonExt.copy(buf, off);
      if (invalidity) {
        off += invalidityPrefix.copy(buf, off);
        off = writeTime(buf, off, invalidity, true, `invalidityDate of ${serialHex}`);
      }
    }
    return off;
  }

  private flush(bytes: number, entries: number): void {
    if (bytes === 0) return;
    const at = this.targetStart + this.inTarget;
    if (this.target && this.chunks.length === 0 && at + bytes <= this.targetEnd) {
      this.scratch.copy(this.target, at, 0, bytes);
      this.inTarget += bytes;
    } else {
      this.chunks.push(Buffer.from(this.scratch.subarray(0, bytes)));
    }
    this.count += entries;
    this.length += bytes;
  }
}

// ---------------------------------------------------------------- CRL

/** crlExtensions in the order they are written. */
function crlExtensions(signer: CrlSigner, c: CrlContent): Buffer {
  const exts: Buffer[] = [
    // §5.2.1 authorityKeyIdentifier (keyIdentifier method), §5.2.3 cRLNumber: both MUST.
    authorityKeyIdentifierExtension(signer.keyIdentifier),
    extension(OID.cRLNumber, false, int(c.crlNumber)),
  ];
  // §5.2.4 deltaCRLIndicator ::= BaseCRLNumber, critical.
  if (c.baseCrlNumber !== undefined) exts.push(extension(OID.deltaCRLIndicator, true, int(c.baseCrlNumber)));
  // §5.2.5 IssuingDistributionPoint ::= SEQUENCE {
  //   distributionPoint [0] DistributionPointName OPTIONAL, onlyContainsUserCerts [1] BOOLEAN DEFAULT FALSE,
  //   onlyContainsCACerts [2] BOOLEAN DEFAULT FALSE, … }, critical. Never an empty SEQUENCE.
  if (c.distributionPointUrl || c.onlyCaCerts) {
    const idp: Buffer[] = [];
    if (c.distributionPointUrl) idp.push(distributionPointName(c.distributionPointUrl));
    if (c.onlyCaCerts) idp.push(ctx(2, false, Buffer.from([0xff])));
    exts.push(extension(OID.issuingDistributionPoint, true, seq(...idp)));
  }
  // §5.2.6 FreshestCRL ::= CRLDistributionPoints, non-critical.
  if (c.freshestUrl) exts.push(extension(OID.freshestCRL, false, seq(seq(distributionPointName(c.freshestUrl)))));
  return ctx(0, true, seq(...exts));
}

const isEncoded = (page: EntryPage): page is EncodedEntries => !Array.isArray(page);

/**
 * The longest a CRL may live unless the caller says less: twelve months, the
 * most CA/B Forum BR §4.9.7 allows for any CRL (the root's ARL uses 365 days).
 */
export const maxCrlValiditySeconds = 366 * 86_400;

/**
 * What the lint expects of a CRL built from `content` by `signer`, unless
 * the caller (the generator, which knows the scope) says more.
 */
export function expectationsOf(signer: CrlSigner, content: CrlContent, over: Partial<CrlExpectations> = {}): CrlExpectations {
  return {
    issuerDer: signer.subjectDer,
    signatureAlgorithm: signer.signatureAlgorithm,
    keyIdentifier: signer.keyIdentifier,
    crlNumber: content.crlNumber,
    ...(content.baseCrlNumber !== undefined ? { baseCrlNumber: content.baseCrlNumber } : {}),
    idp: content.distributionPointUrl || content.onlyCaCerts ? { url: content.distributionPointUrl ?? null, onlyCaCerts: !!content.onlyCaCerts } : null,
    freshestUrl: content.freshestUrl ?? null,
    maxValiditySeconds: maxCrlValiditySeconds,
    ...over,
  };
}

/** Room for the signature after the TBS (RSA-4096 is 512 octets; ECDSA P-384 at most 104). */
const signatureRoom = 1024;

function header(buf: Buffer, off: number, tag: number, len: number): number {
  buf[off] = tag;
  return writeLength(buf, off + 1, len);
}

/**
 * Builds and signs one CRL from entries streamed in pages (ordered or not;
 * entries to encode, or runs already in DER from a previous CRL of the same
 * scope), plus removeFromCRL entries for a delta CRL.
 *
 * `sizeHint` (octets, e.g. the previous CRL of the scope plus some room) lets
 * the entries be written in place in the buffer that becomes the CRL: peak
 * memory is then about one CRL instead of two. A wrong hint costs a copy.
 *
 * The signer lints the TBS before it signs it, against
 * `expectationsOf(signer, content, opts.expect)`: a finding is its
 * `lintFailed` error, and nothing is signed.
 *
 *   CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
 *   TBSCertList ::= SEQUENCE { version Version OPTIONAL -- v2 --, signature AlgorithmIdentifier, issuer Name,
 *     thisUpdate Time, nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF … OPTIONAL,
 *     crlExtensions [0] EXPLICIT Extensions OPTIONAL }
 */
export async function buildCrl(
  signer: CrlSigner,
  content: CrlContent,
  revoked: AsyncIterable<EntryPage> | Iterable<EntryPage>,
  removed: readonly RemovedEntry[] = [],
  opts: { sizeHint?: number; expect?: Partial<CrlExpectations> } = {},
): Promise<BuiltCrl> {
  if (content.nextUpdate <= content.thisUpdate) throw new PkiError('invalidConfig', 'CRL nextUpdate must be after thisUpdate');
  if (removed.length && content.baseCrlNumber === undefined) throw new PkiError('malformed', 'removeFromCRL entries belong in delta CRLs only');
  // §5.1.2.1 version v2 (INTEGER 1) because the CRL has extensions.
  const prefix = Buffer.concat([int(1), signer.signatureAlgorithm, signer.subjectDer, time(content.thisUpdate), time(content.nextUpdate)]);
  const extensions = crlExtensions(signer, content);
  const alg = signer.signatureAlgorithm;

  // Layout of the buffer that becomes the CertificateList: the entries start
  // at `entriesAt`; the headers (at most 6 octets each) and the prefix are
  // written right-aligned before them once the entries' length is known; the
  // extensions, algorithm and signature follow them.
  const entriesAt = 6 + 6 + prefix.length + 6;
  const tail = extensions.length + alg.length + 6 + signatureRoom;
  const hint = Math.max(0, Math.floor(opts.sizeHint ?? 0));
  let out = hint > 0 ? Buffer.allocUnsafe(entriesAt + hint + tail) : null;
  const encoder = new EntryEncoder(out, entriesAt, out ? out.length - tail : 0);
  for await (const page of revoked) {
    if (isEncoded(page)) {
      encoder.addEncoded(page);
      continue;
    }
    encoder.addRevoked(page);
    // Let the event loop run between pages: the store reads synchronously
    // (better-sqlite3), and a server keeps answering OCSP and CRL requests
    // while a large CRL is built.
    await setImmediate();
  }
  encoder.addRemoved(removed);
  if (!out || encoder.overflowed) {
    // No hint, or too small a one: one buffer of the exact size, the entries moved in.
    const exact = Buffer.allocUnsafe(entriesAt + encoder.length + tail);
    let off = entriesAt;
    if (out) off += out.copy(exact, off, entriesAt, entriesAt + encoder.inTarget);
    const chunks = encoder.take();
    for (let i = 0; i < chunks.length; i++) {
      off += chunks[i]!.copy(exact, off);
      chunks[i] = Buffer.alloc(0); // let the page go as soon as it is copied
    }
    out = exact;
  }

  let end = entriesAt + encoder.length;
  end += extensions.copy(out, end);
  let start = entriesAt;
  // §5.1.2.6: when there are no revoked certificates, the list is absent (not empty).
  if (encoder.count) {
    start -= 1 + lengthSize(encoder.length);
    header(out, start, Tag.SEQUENCE, encoder.length);
  }
  start -= prefix.length;
  prefix.copy(out, start);
  const tbsContent = end - start;
  start -= 1 + lengthSize(tbsContent);
  header(out, start, Tag.SEQUENCE, tbsContent);
  const tbs = out.subarray(start, end);

  // The bytes linted are the bytes signed: the signer lints the TBS just written, then signs it.
  const signature = await signer.sign(tbs, expectationsOf(signer, content, opts.expect));
  if (signature.length > signatureRoom) {
    // A signature bigger than the room left (RSA over 8192 bits): one more copy.
    return { der: seq(tbs, alg, tlv(Tag.BIT_STRING, Buffer.from([0]), signature)), entries: encoder.count };
  }
  end += alg.copy(out, end);
  end = header(out, end, Tag.BIT_STRING, 1 + signature.length);
  out[end++] = 0; // no unused bits
  end += signature.copy(out, end);
  const outerContent = end - start;
  start -= 1 + lengthSize(outerContent);
  header(out, start, Tag.SEQUENCE, outerContent);
  const der = out.subarray(start, end);
  // A hint far above the result would keep the excess alive as long as the CRL.
  return { der: der.length < out.length * 0.75 ? Buffer.from(der) : der, entries: encoder.count };
}
