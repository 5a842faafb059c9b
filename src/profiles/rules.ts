/**
 * Cross-field rules for a profile file: the checks a per-field schema cannot
 * express. Each reports at the field an operator should change, with the rule
 * it comes from, so a bad profile stops startup with a fix in the message.
 */
import { isPrintableString } from '../pki/der.js';
import { durationUnits, formatDuration } from './duration.js';
import { neverEnrollable } from './enrollment.js';
import type { ProfileFile } from './schema.js';
import { maxOidAttributeLength } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { subjectAttributes, type SubjectAttribute } from './types.js';

/** Reports one problem at a field path inside the profile file. */
export type ReportIssue = (path: (string | number)[], message: string) => void;

// Beyond a century no relying party, key or algorithm is still around to care.
const maxValiditySeconds = 100 * durationUnits.y;
// CA/B BR §7.1.2 (certificate profiles): notBefore within 48 hours of signing.
const maxBackdateSeconds = 48 * durationUnits.h;

/** X.520 upper bounds (RFC 5280 Appendix A), as `pki/name.ts` enforces when encoding. */
const upperBound: Record<SubjectAttribute, number> = { C: 2, ST: 128, L: 128, O: 64, OU: 64, CN: 64, serialNumber: 64 };

/** OIDs Trellis knows by a short name: a profile names them by that name, never declares them. */
const knownOids = new Map<string, string>([...subjectAttributes.map((a) => [OID[a], a] as [string, string]), [OID.emailAddress, 'emailAddress']]);

/** Runs every cross-field rule on a file that passed the per-field schema. */
export function checkProfileRules(f: ProfileFile, report: ReportIssue): void {
  checkValidity(f, report);
  checkKeys(f, report);
  checkCaShape(f, report);
  checkSubject(f, report);
  checkSan(f, report);
  checkDeviceId(f, report);
  checkEnrollment(f, report);
}

function checkValidity({ validity: v }: ProfileFile, report: ReportIssue): void {
  const backdate = v.backdate ?? 0;
  if (v.default === 0) report(['validity', 'default'], 'must be longer than 0s');
  if (v.max === 0) report(['validity', 'max'], 'must be longer than 0s');
  if (v.default > v.max) report(['validity', 'default'], `default (${formatDuration(v.default)}) is longer than max (${formatDuration(v.max)})`);
  if (v.max > maxValiditySeconds) report(['validity', 'max'], `${formatDuration(v.max)} is longer than 100y`);
  if (backdate > maxBackdateSeconds) report(['validity', 'backdate'], `${formatDuration(backdate)} is more than 48h (CA/B BR §7.1.2: notBefore within 48 hours of signing)`);
  // The CA counts the lifetime from the backdated notBefore, so a backdate as
  // long as the validity would issue certificates that are already expired.
  if (v.default > 0 && backdate >= v.default) report(['validity', 'backdate'], `${formatDuration(backdate)} must be shorter than the default validity (${formatDuration(v.default)})`);
}

function checkKeys({ keys }: ProfileFile, report: ReportIssue): void {
  if (!keys.rsa && !keys.ecdsa?.length && !keys.ed25519) report(['keys'], 'allows no key type: list rsa, ecdsa or ed25519');
  if (keys.rsa && keys.rsa.minBits > keys.rsa.maxBits) report(['keys', 'rsa', 'minBits'], `minBits (${keys.rsa.minBits}) is above maxBits (${keys.rsa.maxBits})`);
}

/** Basic constraints, key usage, signer, name constraints, URLs and nocheck agree on what the certificate is. */
function checkCaShape(f: ProfileFile, report: ReportIssue): void {
  const ca = f.basicConstraints.ca;
  const ku = f.keyUsage;
  const eku = f.extendedKeyUsage ?? [];

  // RFC 5280 §4.2.1.3 / §4.2.1.9: keyCertSign if and only if cA; pathLen only with cA.
  if (ca && !ku.includes('keyCertSign')) report(['keyUsage'], 'a CA profile needs keyCertSign (RFC 5280 §4.2.1.3)');
  ku.forEach((u, i) => {
    if (!ca && (u === 'keyCertSign' || u === 'cRLSign')) report(['keyUsage', i], `${u} is for CA profiles only (basicConstraints.ca: true)`);
    if ((u === 'encipherOnly' || u === 'decipherOnly') && !ku.includes('keyAgreement')) report(['keyUsage', i], `${u} needs keyAgreement (RFC 5280 §4.2.1.3)`);
  });
  if (!ca && f.basicConstraints.pathLen !== undefined) report(['basicConstraints', 'pathLen'], 'pathLen needs basicConstraints.ca: true (RFC 5280 §4.2.1.9)');
  if (!ca && f.nameConstraints) report(['nameConstraints'], 'name constraints belong in CA profiles only (RFC 5280 §4.2.1.10)');
  if (f.nameConstraints && !f.nameConstraints.permitted && !f.nameConstraints.excluded) {
    report(['nameConstraints'], 'needs permitted or excluded names (RFC 5280 §4.2.1.10)');
  }
  for (const side of ['permitted', 'excluded'] as const) {
    const set = f.nameConstraints?.[side];
    if (set && !set.dns && !set.ip && !set.email && !set.uri) report(['nameConstraints', side], 'lists no names: add dns, ip, email or uri, or remove it');
  }

  // Who signs: the CA core maps signer to an issuer role (ca/authority.ts).
  if (f.signer === 'self' && !ca) report(['signer'], 'a self-signed profile is a root CA: set basicConstraints.ca: true');
  if (f.signer === 'issuing' && ca) report(['signer'], 'the issuing CA signs end-entity certificates only (its pathLen is 0); a CA profile is signed by root or self');
  // CA/B BR §6.1.7: a root key signs only CA certificates, OCSP responder certificates and
  // certificates for infrastructure purposes ("internal CA operational device certificates"):
  // the audit signer, which signs data but can serve no TLS, mail or code (no EKU, no SAN).
  const infrastructure = eku.length === 0 && f.san.maxNames === 0 && ku.every((u) => u === 'digitalSignature' || u === 'nonRepudiation');
  if (f.signer === 'root' && !ca && !eku.includes('OCSPSigning') && !infrastructure) {
    report(['signer'], 'the root signs CA, OCSP responder and infrastructure certificates only (CA/B BR §6.1.7; infrastructure: no extendedKeyUsage, no SANs, keyUsage digitalSignature/nonRepudiation); use signer: issuing');
  }
  if (f.signer === 'self') {
    for (const k of ['ocsp', 'caIssuers', 'crl'] as const) {
      if (f.urls[k]) report(['urls', k], 'a self-signed root has no issuer to point at: relying parties trust it directly, so no AIA or CRL distribution point');
    }
  }

  // RFC 6960 §4.2.2.2: a delegated responder signs responses, so it needs
  // digitalSignature; §4.2.2.2.1: nocheck is for that certificate alone.
  if (eku.includes('OCSPSigning') && !ku.includes('digitalSignature')) report(['keyUsage'], 'an OCSPSigning certificate signs responses: add digitalSignature (RFC 6960 §4.2.2.2)');
  if (f.ocspNoCheck && !eku.includes('OCSPSigning')) report(['ocspNoCheck'], 'ocsp-nocheck is for OCSP responder certificates (extendedKeyUsage OCSPSigning, RFC 6960 §4.2.2.2.1)');
  if (f.ocspNoCheck && f.urls.ocsp) report(['urls', 'ocsp'], 'with ocspNoCheck clients never ask about this certificate, so it carries no OCSP URL');
}

function checkSubject({ subject }: ProfileFile, report: ReportIssue): void {
  const declared = checkDeclaredAttributes(subject.attributes ?? [], report);
  const known = (name: string) => (subjectAttributes as readonly string[]).includes(name) || declared.has(name);
  const unknown = (name: string) => `unknown attribute ${name}: use ${subjectAttributes.join(', ')} or a name declared in subject.attributes`;
  const fixed = subject.fixed ?? {};
  for (const [attr, value] of Object.entries(fixed)) {
    if (!known(attr)) {
      report(['subject', 'fixed', attr], unknown(attr));
      continue;
    }
    if (subject.allowed.includes(attr)) report(['subject', 'fixed', attr], `${attr} is both fixed and allowed: the CA sets a fixed attribute, so remove it from allowed`);
    const def = declared.get(attr);
    const bound = def ? maxOidAttributeLength : upperBound[attr as SubjectAttribute];
    if (value.length === 0 || value.length > bound) report(['subject', 'fixed', attr], `must be 1..${bound} characters${def ? '' : ' (RFC 5280 Appendix A)'}`);
    else if (def && !new RegExp(def.pattern).test(value)) report(['subject', 'fixed', attr], `"${value}" does not match the pattern of ${attr} (${def.pattern})`);
    else if (attr === 'C' && !/^[A-Z]{2}$/.test(value)) report(['subject', 'fixed', attr], 'must be an ISO 3166 two-letter upper-case country code (RFC 5280 Appendix A)');
    else if (attr === 'serialNumber' && !isPrintableString(value)) report(['subject', 'fixed', attr], 'must use PrintableString characters only (RFC 5280 Appendix A)');
  }
  subject.allowed.forEach((attr, i) => {
    if (!known(attr)) report(['subject', 'allowed', i], unknown(attr));
  });
  (subject.required ?? []).forEach((attr, i) => {
    if (!known(attr)) report(['subject', 'required', i], unknown(attr));
    else if (!subject.allowed.includes(attr)) report(['subject', 'required', i], `${attr} is required but not in subject.allowed`);
  });
  (subject.attributes ?? []).forEach((a, i) => {
    if (declared.get(a.name) === a && !(a.name in fixed) && !subject.allowed.includes(a.name)) {
      report(['subject', 'attributes', i, 'name'], `${a.name} is declared but neither fixed nor allowed: add it to subject.allowed (or fixed), or remove it`);
    }
  });
}

/** Names and OIDs of `subject.attributes`: new, each once; returns the good ones by name. */
function checkDeclaredAttributes(defs: NonNullable<ProfileFile['subject']['attributes']>, report: ReportIssue): Map<string, (typeof defs)[number]> {
  const byName = new Map<string, (typeof defs)[number]>();
  const oids = new Set<string>();
  defs.forEach((a, i) => {
    const clash = subjectAttributes.find((s) => s.toLowerCase() === a.name.toLowerCase());
    const shortName = knownOids.get(a.oid);
    if (clash) report(['subject', 'attributes', i, 'name'], `${a.name} is the standard attribute ${clash}: choose another name`);
    else if ([...byName.keys()].some((n) => n.toLowerCase() === a.name.toLowerCase())) report(['subject', 'attributes', i, 'name'], `${a.name} is declared more than once`);
    if (shortName) report(['subject', 'attributes', i, 'oid'], `${a.oid} is ${shortName}: ${shortName === 'emailAddress' ? 'email addresses belong in the SAN (RFC 5280 §4.2.1.6)' : `use ${shortName} in allowed or fixed instead`}`);
    else if (oids.has(a.oid)) report(['subject', 'attributes', i, 'oid'], `${a.oid} is declared more than once`);
    oids.add(a.oid);
    if (!clash && !shortName && !byName.has(a.name)) byName.set(a.name, a);
  });
  return byName;
}

function checkSan({ san }: ProfileFile, report: ReportIssue): void {
  const anyType = Boolean(san.dns || san.ip || san.uri || san.email);
  if (san.required && !anyType) report(['san', 'required'], 'SANs are required but no SAN type is allowed: add dns, ip, uri or email');
  if (anyType && san.maxNames === 0) report(['san', 'maxNames'], 'is 0, yet SAN types are allowed');
}

/** The RA takes the id from the CSR subject, writes it to serialNumber and adds a URI SAN (ra/csr-request.ts). */
function checkDeviceId(f: ProfileFile, report: ReportIssue): void {
  const d = f.deviceId;
  if (!d) return;
  if (f.basicConstraints.ca) report(['deviceId'], 'device identities belong in end-entity profiles');
  const placeholders = d.uriTemplate.split('{id}').length - 1;
  if (placeholders !== 1) report(['deviceId', 'uriTemplate'], 'must contain {id} exactly once');
  else if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(d.uriTemplate)) report(['deviceId', 'uriTemplate'], 'must be an absolute URI, e.g. urn:dev:example:{id}');
  if (!f.san.uri) report(['san', 'uri'], 'deviceId adds a URI SAN, so san.uri must allow it');
  if (!f.subject.allowed.includes('serialNumber')) report(['subject', 'allowed'], 'deviceId writes the subject serialNumber, so allowed must include serialNumber');
  d.from.forEach((attr, i) => {
    if (!f.subject.allowed.includes(attr)) report(['deviceId', 'from', i], `${attr} must be in subject.allowed for the CSR to carry it`);
  });
}

/** CA and OCSP-signer profiles open no enrollment channel, ever (profiles/enrollment.ts says why). */
function checkEnrollment(f: ProfileFile, report: ReportIssue): void {
  const never = neverEnrollable(f);
  if (never && f.enrollment && f.enrollment.length > 0) report(['enrollment'], `${never.what} is never enrollable: ${never.why}; remove enrollment`);
}
