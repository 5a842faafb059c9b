/**
 * Judges the certificate a tls-alpn-01 responder presented (RFC 8737 §3, and
 * RFC 8738 §6 for IP identifiers). Only the end-entity certificate matters;
 * its signature, issuer and validity are not part of the challenge.
 */
import { createHash } from 'node:crypto';
import { isPkiError } from '../errors/pki-error.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { readOne, Tag, value } from '../pki/der.js';
import { decodeSubjectAltName } from '../pki/extensions.js';
import type { GeneralName } from '../pki/general-name.js';
import { OID } from '../pki/oids.js';
import { ValidationFailure } from './failure.js';
import type { ValidationTarget } from './request.js';

/** id-pe-acmeIdentifier OBJECT IDENTIFIER ::= { id-pe 31 } (RFC 8737 §3, §6.1). */
export const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';

const wrong = (detail: string) => new ValidationFailure('incorrectResponse', detail);

/**
 * Runs a DER decoder over bytes the peer chose. Whatever it throws (a
 * `malformed` PkiError, or a TypeError on a truncated structure the decoder
 * did not foresee) is the peer's bad answer, not a fault of the validator.
 */
function decode<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const why = isPkiError(err) ? err.message : `${err instanceof Error ? err.name : 'error'} in the decoder`;
    throw new ValidationFailure('incorrectResponse', `${what} does not decode: ${why}`, { cause: err });
  }
}

const describeName = (g: GeneralName) => (g.type === 'other' ? g.value : `${g.type === 'dns' ? 'dNSName' : g.type === 'ip' ? 'iPAddress' : g.type} ${g.value}`);

/**
 * Checks `certDer` against the identifier and key authorization; throws an
 * `incorrectResponse` ValidationFailure naming the first thing that is wrong.
 * `from` says where the certificate came from, for the detail.
 */
export function checkAcmeTlsCertificate(certDer: Buffer, target: ValidationTarget, keyAuthorization: string, from: string): void {
  const cert: ParsedCertificate = decode(`the certificate from ${from}`, () => parseCertificate(certDer));
  const only = (oid: string, name: string) => {
    const found = cert.extensions.filter((e) => e.oid === oid);
    // RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular extension."
    if (found.length > 1) throw wrong(`the certificate from ${from} has ${found.length} ${name} extensions`);
    return found[0];
  };

  // "a subjectAltName extension containing the dNSName being validated and no
  // other entries" (RFC 8737 §3); for an IP identifier, the iPAddress (RFC 8738 §6).
  const sanExt = only(OID.subjectAltName, 'subjectAltName');
  if (!sanExt) throw wrong(`the certificate from ${from} has no subjectAltName extension`);
  const sans = decode(`the subjectAltName of the certificate from ${from}`, () => decodeSubjectAltName(sanExt.valueDer));
  const want: GeneralName = target.type === 'dns' ? { type: 'dns', value: target.name } : { type: 'ip', value: target.address };
  const matches = (g: GeneralName) => g.type === want.type && (g.type === 'dns' ? g.value.toLowerCase() === want.value : g.value === want.value);
  if (sans.length !== 1 || !matches(sans[0]!)) {
    throw wrong(`the certificate from ${from} must have exactly one subjectAltName, ${describeName(want)}; it has ${sans.map(describeName).join(', ') || 'none'}`);
  }

  // "a critical acmeIdentifier extension containing the expected SHA-256
  // digest" (RFC 8737 §3). Authorization ::= OCTET STRING (SIZE (32)), and the
  // extnValue is its DER encoding.
  const acmeExt = only(ACME_IDENTIFIER_OID, 'acmeIdentifier');
  if (!acmeExt) throw wrong(`the certificate from ${from} has no acmeIdentifier extension (${ACME_IDENTIFIER_OID})`);
  if (!acmeExt.critical) throw wrong(`the acmeIdentifier extension of the certificate from ${from} is not critical (RFC 8737 §3 requires it)`);
  const digest = decode(`the acmeIdentifier extension of the certificate from ${from}`, () => value(readOne(acmeExt.valueDer, Tag.OCTET_STRING)));
  if (digest.length !== 32) throw wrong(`the acmeIdentifier of the certificate from ${from} holds ${digest.length} octets, not a 32-octet SHA-256 digest`);
  const expected = createHash('sha256').update(keyAuthorization, 'ascii').digest();
  if (!digest.equals(expected)) {
    throw wrong(`the acmeIdentifier of the certificate from ${from} is ${digest.toString('hex')}, not SHA-256 of the key authorization (${expected.toString('hex')})`);
  }
}
