/** X.509 v3 certificates (RFC 5280 §4.1) parsed into a flat, lint-friendly view. */
import { hash } from 'node:crypto';
import { children, expectTag, readBitString, readOne, readSmallInt, readTime, readUnsigned, Tag, whole, type Tlv } from './der.js';
import { readAlgorithmIdentifier, type AlgorithmId } from './algorithm-identifier.js';
import { parseExtensions, type RawExtension } from './csr.js';
import { parseName, formatName, type NameEntry } from './name.js';
import { derFromPemOrDer, pemBlocks } from './pem.js';
import { PkiError } from '../errors/pki-error.js';

export type { AlgorithmId };

export interface ParsedCertificate {
  der: Buffer;
  tbsDer: Buffer;
  /** 0 = v1, 2 = v3. */
  version: number;
  serial: Buffer;
  serialHex: string;
  /** Raw INTEGER contents (sign octet included) for encoding lints. */
  serialContent: Buffer;
  tbsSignature: AlgorithmId;
  issuerDer: Buffer;
  issuer: NameEntry[];
  notBefore: Date;
  notAfter: Date;
  notBeforeTag: number;
  notAfterTag: number;
  subjectDer: Buffer;
  subject: NameEntry[];
  spkiDer: Buffer;
  /** The subjectPublicKey BIT STRING contents (for SKI). */
  subjectPublicKey: Buffer;
  extensions: RawExtension[];
  signatureAlgorithm: AlgorithmId;
  signature: Buffer;
}

const malformed = (what: string) => new PkiError('malformed', `malformed DER: ${what}`);

/** The one element inside an EXPLICIT tag. */
function explicit(t: Tlv, what: string): Tlv {
  const inner = children(t);
  if (inner.length !== 1) throw malformed(`${what} must hold exactly one element`);
  return inner[0]!;
}

/** Parses a DER certificate; malformed input is a `malformed` PkiError. */
export function parseCertificate(der: Buffer): ParsedCertificate {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  const [tbsT, algT, sigT, ...extra] = children(readOne(der, Tag.SEQUENCE));
  if (!tbsT || !algT || !sigT || extra.length) throw malformed('Certificate must have 3 fields');
  // TBSCertificate ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, serialNumber, signature AlgorithmIdentifier,
  //   issuer Name, validity Validity, subject Name, subjectPublicKeyInfo, issuerUniqueID [1] IMPLICIT OPTIONAL,
  //   subjectUniqueID [2] IMPLICIT OPTIONAL, extensions [3] EXPLICIT Extensions OPTIONAL }
  const f = children(expectTag(tbsT, Tag.SEQUENCE, 'TBSCertificate'));
  let i = 0;
  let version = 0;
  if (f[0]?.tag === 0xa0) version = readSmallInt(explicit(f[i++]!, 'version'));
  if (version > 2) throw malformed(`unknown certificate version ${version}`);
  const serialT = expectTag(f[i++], Tag.INTEGER, 'serialNumber');
  const serial = readUnsigned(serialT);
  const tbsSignature = readAlgorithmIdentifier(f[i++]);
  const issuerT = expectTag(f[i++], Tag.SEQUENCE, 'issuer');
  // Validity ::= SEQUENCE { notBefore Time, notAfter Time }
  const validity = children(expectTag(f[i++], Tag.SEQUENCE, 'Validity'));
  if (validity.length !== 2) throw malformed('Validity must have 2 fields');
  const [nb, na] = validity as [Tlv, Tlv];
  const subjectT = expectTag(f[i++], Tag.SEQUENCE, 'subject');
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  const spkiT = expectTag(f[i++], Tag.SEQUENCE, 'SubjectPublicKeyInfo');
  const spkiFields = children(spkiT);
  if (spkiFields.length !== 2) throw malformed('SubjectPublicKeyInfo must have 2 fields');
  readAlgorithmIdentifier(spkiFields[0]);
  const spk = readBitString(spkiFields[1]!);
  if (f[i]?.tag === 0x81) i++; // issuerUniqueID
  if (f[i]?.tag === 0x82) i++; // subjectUniqueID
  let extensions: RawExtension[] = [];
  if (f[i]?.tag === 0xa3) extensions = parseExtensions(explicit(f[i++]!, 'extensions'));
  if (i !== f.length) throw malformed(`unexpected field 0x${f[i]!.tag.toString(16)} in TBSCertificate`);
  return {
    der,
    tbsDer: whole(tbsT),
    version,
    serial,
    serialHex: serial.toString('hex'),
    serialContent: serialT.buf.subarray(serialT.start, serialT.end),
    tbsSignature,
    issuerDer: whole(issuerT),
    issuer: parseName(issuerT),
    notBefore: readTime(nb),
    notAfter: readTime(na),
    notBeforeTag: nb.tag,
    notAfterTag: na.tag,
    subjectDer: whole(subjectT),
    subject: parseName(subjectT),
    spkiDer: whole(spkiT),
    subjectPublicKey: spk.bytes,
    extensions,
    signatureAlgorithm: readAlgorithmIdentifier(algT),
    signature: readBitString(sigT!).bytes,
  };
}

/** Reads one certificate from PEM or DER. */
export const readCertificate = (input: Buffer | string): ParsedCertificate => parseCertificate(derFromPemOrDer(input, ['CERTIFICATE'], 'certificate'));

/** All certificates in a PEM bundle, in order. */
export const readCertificateChain = (pem: string): ParsedCertificate[] => pemBlocks(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => parseCertificate(b.der));

export const sha256Hex = (b: Uint8Array): string => hash('sha256', b, 'hex');

/** "AB:CD:…" SHA-256 fingerprint as openssl prints it. */
export const fingerprint = (der: Uint8Array): string => sha256Hex(der).toUpperCase().match(/../g)!.join(':');

export const subjectString = (c: ParsedCertificate): string => formatName(c.subject);

/** Finds an extension by OID. */
export const findExtension = (c: { extensions: RawExtension[] }, oid: string): RawExtension | undefined => c.extensions.find((e) => e.oid === oid);
