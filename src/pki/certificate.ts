/** X.509 v3 certificates (RFC 5280 §4.1) parsed into a flat, lint-friendly view. */
import { createHash } from 'node:crypto';
import { children, expectTag, readBitString, readOid, readOne, readSmallInt, readTime, readUnsigned, Tag, whole, type Tlv } from './der.js';
import { parseExtensions, type RawExtension } from './csr.js';
import { parseName, formatName, type NameEntry } from './name.js';
import { derFromPemOrDer, pemBlocks } from './pem.js';
import { PkiError } from '../errors/pki-error.js';

/** AlgorithmIdentifier with its raw encoding (lints compare the inner and outer ones byte for byte). */
export interface AlgorithmId {
  oid: string;
  der: Buffer;
}

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

const algorithm = (t: Tlv | undefined): AlgorithmId => {
  const a = expectTag(t, Tag.SEQUENCE, 'AlgorithmIdentifier');
  return { oid: readOid(children(a)[0]!), der: whole(a) };
};

/** Parses a DER certificate; malformed input is a `malformed` PkiError. */
export function parseCertificate(der: Buffer): ParsedCertificate {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  const [tbsT, algT, sigT, ...extra] = children(readOne(der, Tag.SEQUENCE));
  if (!tbsT || !algT || !sigT || extra.length) throw new PkiError('malformed', 'malformed DER: Certificate must have 3 fields');
  const f = children(expectTag(tbsT, Tag.SEQUENCE, 'TBSCertificate'));
  let i = 0;
  let version = 0;
  if (f[0]?.tag === 0xa0) version = readSmallInt(children(f[i++]!)[0]!);
  const serialT = expectTag(f[i++], Tag.INTEGER, 'serialNumber');
  const serial = readUnsigned(serialT);
  const tbsSignature = algorithm(f[i++]);
  const issuerT = f[i++]!;
  const [nb, na] = children(expectTag(f[i++], Tag.SEQUENCE, 'Validity')) as [Tlv, Tlv];
  const subjectT = f[i++]!;
  const spkiT = expectTag(f[i++], Tag.SEQUENCE, 'SubjectPublicKeyInfo');
  const spk = readBitString(children(spkiT)[1]!);
  let extensions: RawExtension[] = [];
  for (; i < f.length; i++) if (f[i]!.tag === 0xa3) extensions = parseExtensions(children(f[i]!)[0]!);
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
    signatureAlgorithm: algorithm(algT),
    signature: readBitString(sigT!).bytes,
  };
}

/** Reads one certificate from PEM or DER. */
export const readCertificate = (input: Buffer | string): ParsedCertificate => parseCertificate(derFromPemOrDer(input, ['CERTIFICATE'], 'certificate'));

/** All certificates in a PEM bundle, in order. */
export const readCertificateChain = (pem: string): ParsedCertificate[] => pemBlocks(pem).filter((b) => b.label === 'CERTIFICATE').map((b) => parseCertificate(b.der));

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** "AB:CD:…" SHA-256 fingerprint as openssl prints it. */
export const fingerprint = (der: Uint8Array): string => sha256Hex(der).toUpperCase().match(/../g)!.join(':');

export const subjectString = (c: ParsedCertificate): string => formatName(c.subject);

/** Finds an extension by OID. */
export const findExtension = (c: { extensions: RawExtension[] }, oid: string): RawExtension | undefined => c.extensions.find((e) => e.oid === oid);
