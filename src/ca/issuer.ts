/**
 * A CA that can sign, as the rest of Trellis sees it: its record, certificate
 * and the URLs it publishes, but not its key. The key of an unlocked CA is
 * held here, beside the Issuer object, and only src/ca reaches it (keyOf):
 * every signature goes through the CertificateAuthority, which checks the
 * key's state first (test/architecture.test.ts keeps it so).
 */
import { hash } from 'node:crypto';
import type { KeyAlgorithm, SigningKey } from '../keys/signing-key.js';
import { parseCertificate, findExtension, type ParsedCertificate } from '../pki/certificate.js';
import { decodeSubjectKeyIdentifier } from '../pki/extensions.js';
import { OID } from '../pki/oids.js';
import { PkiError } from '../errors/pki-error.js';
import { signatureAlgorithmDer } from './algorithms.js';
import type { CaRecord } from './ports.js';

/** Where relying parties find a CA's certificate, CRLs and OCSP responder (built from the base URL). */
export interface CaUrls {
  ocsp(): string;
  caIssuers(caId: string): string;
  crl(caId: string, shard: number): string;
}

/** URL layout served by `trellis serve`: /ocsp, /ca/{id}.cer, /crl/{id}/{shard}.crl. */
export function caUrls(baseUrl: string): CaUrls {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    ocsp: () => `${base}/ocsp`,
    caIssuers: (caId) => `${base}/ca/${caId}.cer`,
    crl: (caId, shard) => `${base}/crl/${caId}/${shard}.crl`,
  };
}

/** A loaded CA ready to sign. */
export interface Issuer {
  id: string;
  role: 'root' | 'issuing';
  /** Parent CA id (null for a root). */
  parentId: string | null;
  cert: ParsedCertificate;
  /** The key's algorithm and its id in its keystore (neither is secret). */
  algorithm: KeyAlgorithm;
  keyId: string;
  /** AlgorithmIdentifier of everything this CA signs. */
  signatureAlgorithm: Buffer;
  /** Key identifier that goes into AKI of what it signs. */
  keyIdentifier: Buffer;
  /** CRL shards for certificates it issues (1 for roots). */
  crlShards: number;
  /** PEM-ready chain above the issued certificate: this CA, then its parents up to (not including) the root. */
  chainDer: Buffer[];
}

// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING contents.
export const keyIdentifierOf = (subjectPublicKey: Buffer): Buffer => hash('sha1', subjectPublicKey, 'buffer');

/** Unlocked keys, by the Issuer object built around them. */
const keys = new WeakMap<Issuer, SigningKey>();

/** The unlocked key of `issuer`: for the CA's own signing code only. */
export function keyOf(issuer: Issuer): SigningKey {
  const key = keys.get(issuer);
  if (!key) throw new PkiError('serverInternal', `CA "${issuer.id}" is not unlocked`);
  return key;
}

/** Builds an Issuer from a CA record and its unlocked key; refuses a key that does not match the certificate. */
export function issuerFrom(record: CaRecord, key: SigningKey, opts: { crlShards: number; parentChainDer?: Buffer[] }): Issuer {
  const cert = parseCertificate(record.certDer);
  if (!cert.spkiDer.equals(key.spkiDer)) throw new PkiError('keyIntegrity', `key ${key.keyId} does not match the certificate of CA "${record.id}"`);
  const ski = findExtension(cert, OID.subjectKeyIdentifier);
  const issuer: Issuer = {
    id: record.id,
    role: record.role,
    parentId: record.parentId,
    cert,
    algorithm: key.algorithm,
    keyId: key.keyId,
    signatureAlgorithm: signatureAlgorithmDer(key.algorithm),
    keyIdentifier: ski ? decodeSubjectKeyIdentifier(ski.valueDer) : keyIdentifierOf(cert.subjectPublicKey),
    crlShards: record.role === 'root' ? 1 : opts.crlShards,
    chainDer: record.role === 'root' ? [] : [record.certDer, ...(opts.parentChainDer ?? [])],
  };
  keys.set(issuer, key);
  return issuer;
}

/** True when `issuer` was built around an unlocked key (issuerFrom). */
export const hasKey = (issuer: Issuer): boolean => keys.has(issuer);

/**
 * The key of a delegated OCSP responder (RFC 6960 §4.2.2.2) with its
 * certificate and the SHA-1 key hash that names it (ResponderID byKey).
 */
export function responderKeyOf(certDer: Buffer, key: SigningKey): { keyHash: Buffer; signatureAlgorithm: Buffer; certDer: Buffer; key: SigningKey } {
  const cert = parseCertificate(certDer);
  if (!cert.spkiDer.equals(key.spkiDer)) throw new PkiError('keyIntegrity', `key ${key.keyId} does not match the OCSP responder certificate`);
  return { keyHash: keyIdentifierOf(cert.subjectPublicKey), signatureAlgorithm: signatureAlgorithmDer(key.algorithm), certDer, key };
}
