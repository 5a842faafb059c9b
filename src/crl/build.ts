/**
 * Streaming CRL encoder (RFC 5280 §5). Revoked entries are encoded page by
 * page into DER buffers as they come from the store, the TBS is assembled once
 * and signed once: a million entries never exist as objects at the same time.
 */
import { ctx, generalizedTime, int, seq, seqOf, tlv, Tag, time, uintFromBytes } from '../pki/der.js';
import { authorityKeyIdentifierExtension, distributionPointName, extension as ext } from '../pki/extensions.js';
import { OID } from '../pki/oids.js';
import type { RevokedEntry } from '../ca/ports.js';

/** Who signs the CRL: the CA's name, key identifier and signature. */
export interface CrlSigner {
  subjectDer: Buffer;
  keyIdentifier: Buffer;
  signatureAlgorithm: Buffer;
  sign(tbs: Buffer): Promise<Buffer>;
}

export interface CrlOptions {
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Critical issuingDistributionPoint naming this URL (shards and their deltas). */
  distributionPointUrl?: string;
  /** Complete CRLs: freshestCRL pointing at their delta. */
  freshestUrl?: string;
  /** Delta CRLs: the complete CRL number they build on (deltaCRLIndicator). */
  baseCrlNumber?: bigint;
  /** Delta CRLs: serials whose hold was lifted (removeFromCRL entries, RFC 5280 §5.3.1). */
  released?: { serialHex: string; at: Date }[];
}

const reasonCache = new Map<number, Buffer>();
// reasonCode ::= { CRLReason } (ENUMERATED), non-critical; omitted for unspecified (RFC 5280 §5.3.1 SHOULD).
function reasonExtension(code: number): Buffer {
  let e = reasonCache.get(code);
  if (!e) reasonCache.set(code, (e = ext(OID.reasonCode, false, tlv(Tag.ENUMERATED, Buffer.from([code])))));
  return e;
}

// revokedCertificates SEQUENCE OF SEQUENCE { userCertificate CertificateSerialNumber,
//   revocationDate Time, crlEntryExtensions Extensions OPTIONAL }
export function encodeEntry(serialHex: string, date: Date, reason: number, invalidityDate: Date | null): Buffer {
  const exts: Buffer[] = [];
  if (reason !== 0) exts.push(reasonExtension(reason));
  if (invalidityDate) exts.push(ext(OID.invalidityDate, false, generalizedTime(invalidityDate)));
  const serial = uintFromBytes(Buffer.from(serialHex, 'hex'));
  return exts.length ? seq(serial, time(date), seq(...exts)) : seq(serial, time(date));
}

/** Encodes one page of entries (appending to `out`); returns the count. */
export function encodeEntries(page: readonly RevokedEntry[], out: Buffer[]): number {
  for (const e of page) out.push(encodeEntry(e.serialHex, e.revokedAt, e.reason, e.invalidityDate));
  return page.length;
}

/**
 * Builds and signs a CRL from already-encoded entries.
 * TBSCertList ::= SEQUENCE { version Version OPTIONAL (v2), signature AlgorithmIdentifier, issuer Name,
 *   thisUpdate Time, nextUpdate Time OPTIONAL, revokedCertificates … OPTIONAL, crlExtensions [0] EXPLICIT Extensions OPTIONAL }
 */
export async function signCrl(signer: CrlSigner, entries: Buffer[], o: CrlOptions): Promise<Buffer> {
  const released = (o.released ?? []).map((r) => encodeEntry(r.serialHex, r.at, 8, null));
  const all = released.length ? entries.concat(released) : entries;
  const crlExts: Buffer[] = [authorityKeyIdentifierExtension(signer.keyIdentifier), ext(OID.cRLNumber, false, int(o.crlNumber))];
  if (o.baseCrlNumber !== undefined) crlExts.push(ext(OID.deltaCRLIndicator, true, int(o.baseCrlNumber)));
  // IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, … } — critical (§5.2.5).
  if (o.distributionPointUrl) crlExts.push(ext(OID.issuingDistributionPoint, true, seq(distributionPointName(o.distributionPointUrl))));
  // FreshestCRL ::= CRLDistributionPoints (§5.2.6), non-critical.
  if (o.freshestUrl) crlExts.push(ext(OID.freshestCRL, false, seq(seq(distributionPointName(o.freshestUrl)))));
  const parts = [int(1), signer.signatureAlgorithm, signer.subjectDer, time(o.thisUpdate), time(o.nextUpdate)];
  if (all.length) parts.push(seqOf(all));
  parts.push(ctx(0, true, seq(...crlExts)));
  const tbs = seq(...parts);
  const signature = await signer.sign(tbs);
  // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
  return seq(tbs, signer.signatureAlgorithm, tlv(Tag.BIT_STRING, Buffer.from([0]), signature));
}

