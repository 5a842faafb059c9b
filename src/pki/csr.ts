/** PKCS#10 certification requests (RFC 2986), parsed strictly and verified with node:crypto. */
import type { KeyObject } from 'node:crypto';
import { readAlgorithmIdentifier } from './algorithm-identifier.js';
import { checkDer, children, expectTag, readBitString, readBoolean, readOid, readOne, readSmallInt, Tag, value, whole, type Tlv } from './der.js';
import { parseGeneralNames, type GeneralName } from './general-name.js';
import { parseName, type NameEntry } from './name.js';
import { OID } from './oids.js';
import { derFromPemOrDer } from './pem.js';
import { loadSpki, type PublicKeyInfo } from './public-key.js';
import { verifySignature } from './signature.js';
import { PkiError } from '../errors/pki-error.js';

/** An extension as carried in a CSR or certificate. */
export interface RawExtension {
  oid: string;
  critical: boolean;
  /** Contents of the extnValue OCTET STRING. */
  valueDer: Buffer;
}

/** A CSR whose signature verified. */
export interface ParsedCsr {
  der: Buffer;
  subject: NameEntry[];
  spkiDer: Buffer;
  publicKey: KeyObject;
  key: PublicKeyInfo;
  sans: GeneralName[];
  /** True when the CSR asks for basicConstraints cA=TRUE. */
  requestsCa: boolean;
  extensions: RawExtension[];
}

/** Parses Extensions ::= SEQUENCE OF Extension (RFC 5280 §4.1). */
export function parseExtensions(t: Tlv): RawExtension[] {
  return children(expectTag(t, Tag.SEQUENCE, 'Extensions')).map((e) => {
    const parts = children(expectTag(e, Tag.SEQUENCE, 'Extension'));
    const oid = readOid(parts[0]!);
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === Tag.BOOLEAN) critical = readBoolean(parts[i++]!);
    const v = expectTag(parts[i], Tag.OCTET_STRING, 'extnValue');
    if (parts.length !== i + 1) throw new PkiError('malformed', 'malformed DER: Extension has extra fields');
    return { oid, critical, valueDer: value(v) };
  });
}

/**
 * True when a BasicConstraints extension value says cA=TRUE.
 * BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }:
 * any other field is `malformed`.
 */
export function basicConstraintsIsCa(valueDer: Buffer): boolean {
  const bc = children(readOne(valueDer, Tag.SEQUENCE));
  let i = 0;
  const ca = bc[0]?.tag === Tag.BOOLEAN ? readBoolean(bc[i++]!) : false;
  if (bc[i]?.tag === Tag.INTEGER) readSmallInt(bc[i++]!);
  if (i !== bc.length) throw new PkiError('malformed', 'malformed DER: basicConstraints has an unexpected field');
  return ca;
}

const bad = (detail: string, cause?: unknown) => new PkiError('badCSR', detail, cause === undefined ? undefined : { cause });

/**
 * Parses and verifies a CSR given as PEM ("CERTIFICATE REQUEST" or "NEW
 * CERTIFICATE REQUEST") or DER. Every structural problem is `badCSR`, a key
 * that cannot be loaded is `badPublicKey`.
 */
export function parseCsr(input: Buffer | string): ParsedCsr {
  let der: Buffer;
  try {
    der = derFromPemOrDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR');
  } catch (err) {
    throw bad((err as Error).message, err);
  }
  try {
    return parseCsrDer(der);
  } catch (err) {
    if (err instanceof PkiError && err.type !== 'malformed') throw err;
    throw bad(`CSR is not valid DER: ${(err as Error).message}`, err);
  }
}

function parseCsrDer(der: Buffer): ParsedCsr {
  // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
  const top = children(readOne(der, Tag.SEQUENCE));
  if (top.length !== 3) throw bad('CSR must have 3 top-level fields');
  const [infoT, algT, sigT] = top as [Tlv, Tlv, Tlv];
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name,
  //   subjectPKInfo SubjectPublicKeyInfo, attributes [0] Attributes }
  const info = children(expectTag(infoT, Tag.SEQUENCE, 'CertificationRequestInfo'));
  if (info.length < 3 || info.length > 4) throw bad('CertificationRequestInfo has the wrong number of fields');
  if (readSmallInt(info[0]!) !== 0) throw bad('CSR version must be v1 (0)');
  const subject = parseName(info[1]!);
  const spkiDer = whole(expectTag(info[2], Tag.SEQUENCE, 'SubjectPublicKeyInfo'));
  const algOid = readAlgorithmIdentifier(algT).oid;
  const sig = readBitString(sigT);
  if (sig.unused !== 0) throw bad('signature BIT STRING has unused bits');

  const { publicKey, info: key } = loadSpki(spkiDer);
  if (!verifySignature(algOid, publicKey, whole(infoT), sig.bytes, 'CSR')) throw bad('CSR signature does not verify');

  let extensions: RawExtension[] = [];
  const attrs = info[3];
  if (attrs) {
    if (attrs.tag !== 0xa0) throw bad('CSR attributes must be [0] IMPLICIT');
    // Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF AttributeValue }
    for (const attr of children(attrs)) {
      const parts = children(expectTag(attr, Tag.SEQUENCE, 'Attribute'));
      if (parts.length !== 2) throw bad('a CSR attribute must have a type and a SET of values');
      const type = readOid(parts[0]!);
      const valuesT = expectTag(parts[1], Tag.SET, 'Attribute values');
      // Attributes we do not read (challengePassword etc.) carry nothing we issue from, but must still be DER.
      checkDer(valuesT);
      if (type !== OID.extensionRequest) continue;
      const values = children(valuesT);
      if (values.length !== 1) throw bad('extensionRequest must have exactly one value');
      extensions = parseExtensions(values[0]!);
    }
  }
  const seen = new Set<string>();
  let sans: GeneralName[] = [];
  let requestsCa = false;
  for (const e of extensions) {
    if (seen.has(e.oid)) throw bad(`CSR requests extension ${e.oid} twice`);
    seen.add(e.oid);
    if (e.oid === OID.subjectAltName) sans = parseGeneralNames(readOne(e.valueDer, Tag.SEQUENCE));
    if (e.oid === OID.basicConstraints) requestsCa = basicConstraintsIsCa(e.valueDer);
  }
  return { der, subject, spkiDer, publicKey, key, sans, requestsCa, extensions };
}
