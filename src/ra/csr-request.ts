/**
 * Turns a verified CSR into an issuance request under a profile: which subject
 * attributes the request may set, the device identity, the SANs. Everything a
 * client sends is checked here; the CA checks the result again.
 */
import { checkKeyPolicy, checkSanPolicy, checkSubjectPolicy } from '../ca/policy.js';
import type { IssueRequest } from '../ca/prepare.js';
import type { RequestedVia } from '../ca/ports.js';
import { PkiError } from '../errors/pki-error.js';
import type { ParsedCsr } from '../pki/csr.js';
import { addressLikeName, type GeneralName } from '../pki/general-name.js';
import { isIP } from 'node:net';
import type { Profile, SubjectKey } from '../profiles/types.js';
import { subjectAttributes, subjectKeyLabel } from '../profiles/types.js';

export interface RequestMeta {
  validitySeconds?: number;
  requestedVia: RequestedVia;
  requestedBy: string | null;
}

const hostLike = /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/;

/** Normalises SANs: DNS names to lower case (RFC 4343: case-insensitive), duplicates dropped. */
function normaliseSans(sans: readonly GeneralName[]): GeneralName[] {
  const seen = new Set<string>();
  const out: GeneralName[] = [];
  for (const s of sans) {
    const n = s.type === 'dns' ? { type: s.type, value: s.value.toLowerCase() } : s;
    const key = `${n.type}:${n.value}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(n);
    }
  }
  return out;
}

/**
 * The shortest lifetime a request may ask for under `profile`. The CA sets
 * notBefore = now - backdate (whole seconds) and notAfter = notBefore +
 * lifetime - 1 s (both ends count, CA/B BR §6.3.2). The lint
 * e_validity_invalid needs notAfter after notBefore (2 s at least), and a
 * certificate should not be expired when it is handed out: notAfter >= now
 * holds for every instant of the issuing second only from backdate + 2 s.
 */
export const minValiditySeconds = (profile: Profile): number => profile.validity.backdateSeconds + 2;

/** Builds the request; throws badCSR / badPublicKey / rejectedIdentifier / malformed (validity) with the reason. */
export function requestFromCsr(csr: ParsedCsr, profile: Profile, meta: RequestMeta, caSpkis: readonly Buffer[]): IssueRequest {
  if (meta.validitySeconds !== undefined) {
    const min = minValiditySeconds(profile);
    if (!(meta.validitySeconds >= min)) {
      throw new PkiError(
        'malformed',
        `requested validity of ${meta.validitySeconds} seconds is too short: profile "${profile.name}" needs at least ${min} seconds (notBefore is backdated ${profile.validity.backdateSeconds} s and the lifetime counts from there)`,
      );
    }
  }
  if (csr.requestsCa && !profile.basicConstraints.ca) throw new PkiError('badCSR', 'CSR requests a CA certificate (basicConstraints cA=TRUE)');

  // Standard attributes by short name; others (parsed as dotted OIDs) only when the profile declares them.
  const requested: Partial<Record<SubjectKey, string>> = {};
  for (const e of csr.subject) {
    const declared = profile.subject.attributes?.some((a) => a.oid === e.type) ?? false;
    if (!(subjectAttributes as readonly string[]).includes(e.type) && !declared) throw new PkiError('badCSR', `subject attribute ${e.type} is not supported`);
    const attr = e.type as SubjectKey;
    if (requested[attr] !== undefined) throw new PkiError('badCSR', `subject attribute ${subjectKeyLabel(profile, attr)} appears more than once`);
    requested[attr] = e.value;
  }

  let sans = normaliseSans(csr.sans);
  const subject: Partial<Record<SubjectKey, string>> = {};
  for (const [attr, v] of Object.entries(requested) as [SubjectKey, string][]) {
    if (profile.subject.fixed[attr] !== undefined) continue; // the profile decides these
    if (!profile.subject.allowed.includes(attr)) throw new PkiError('badCSR', `subject attribute ${subjectKeyLabel(profile, attr)} is not allowed by profile "${profile.name}"`);
    subject[attr] = v;
  }

  if (profile.deviceId) {
    const d = profile.deviceId;
    const id = d.from.map((a) => requested[a]).find((v) => v !== undefined);
    if (id === undefined) throw new PkiError('badCSR', `device id missing: set subject ${d.from.join(' or ')}`);
    if (!new RegExp(d.pattern).test(id)) throw new PkiError('badCSR', `device id "${id}" does not match ${d.pattern}`);
    subject.serialNumber = id;
    const uri = d.uriTemplate.replace('{id}', encodeURIComponent(id));
    sans = normaliseSans([...sans, { type: 'uri', value: uri }]);
  }

  // CA/B BR §7.1.4.3: a common name must repeat one of the SANs; add it when the profile allows that SAN type.
  const cn = subject.CN;
  if (cn !== undefined && !profile.deviceId) {
    const lower = cn.toLowerCase();
    if (isIP(cn) && profile.san.ip && !sans.some((s) => s.type === 'ip' && s.value === cn)) sans.push({ type: 'ip', value: cn });
    else if (!isIP(cn) && profile.san.dns && hostLike.test(lower) && !sans.some((s) => s.type === 'dns' && s.value === lower)) sans.unshift({ type: 'dns', value: lower });
  }

  for (const [attr, v] of Object.entries(profile.subject.fixed) as [SubjectKey, string][]) subject[attr] = v;

  // In every profile: no DNS name that URL parsers read as an IPv4 address, no unspecified IP (the CA lints both again).
  for (const san of sans) {
    const why = addressLikeName(san);
    if (why) throw new PkiError('badCSR', why);
  }

  checkKeyPolicy(profile, csr.key, csr.spkiDer, caSpkis);
  checkSubjectPolicy(profile, subject);
  checkSanPolicy(profile, sans);
  return {
    profile,
    subject,
    sans,
    spkiDer: csr.spkiDer,
    keyInfo: csr.key,
    ...(meta.validitySeconds !== undefined ? { validitySeconds: meta.validitySeconds } : {}),
    requestedVia: meta.requestedVia,
    requestedBy: meta.requestedBy,
  };
}
