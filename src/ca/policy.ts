/**
 * Profile policy shared by the registration authority and, again, by the CA
 * core (which trusts no caller): key type and size, subject attributes, SANs.
 */
import { BlockList, isIP } from 'node:net';
import { PkiError } from '../errors/pki-error.js';
import type { GeneralName } from '../pki/general-name.js';
import { encodeName, type NameValues } from '../pki/name.js';
import { constrainedNames, findNameConstraintViolation, sanNames, type ConstrainingCa } from '../pki/name-constraints.js';
import { keyLabel, type PublicKeyInfo } from '../pki/public-key.js';
import { subjectKeyLabel, type Profile, type SubjectKey } from '../profiles/types.js';

/**
 * CA/B BR §6.1.6: RSA public exponent odd and in [2^16+1, 2^256-1]; §6.1.5:
 * modulus at least 2048 bits whatever a profile says. Curves and sizes come
 * from the profile. Keys equal to a CA key are refused (key reuse across
 * hierarchy levels breaks revocation and is a classic mis-issuance).
 */
export function checkKeyPolicy(profile: Profile, key: PublicKeyInfo, spkiDer: Buffer, caSpkis: readonly Buffer[]): void {
  const refuse = (why: string) => new PkiError('badPublicKey', `${keyLabel(key)} key refused by profile "${profile.name}": ${why}`);
  switch (key.kind) {
    case 'rsa': {
      const rsa = profile.keys.rsa;
      if (key.bits < 2048) throw refuse('RSA keys must be at least 2048 bits');
      if (!rsa) throw refuse('RSA keys are not allowed');
      if (key.bits < rsa.minBits || key.bits > rsa.maxBits) throw refuse(`RSA size must be ${rsa.minBits}..${rsa.maxBits} bits`);
      const e = key.publicExponent;
      if (e % 2n === 0n || e < 65537n || e >= 1n << 256n) throw refuse(`public exponent ${e} is not an odd value in [65537, 2^256)`);
      break;
    }
    case 'ec': {
      const curves = profile.keys.ecdsa ?? [];
      if (!(curves as string[]).includes(key.curve)) throw refuse(curves.length ? `allowed curves: ${curves.join(', ')}` : 'ECDSA keys are not allowed');
      break;
    }
    case 'ed25519':
      if (!profile.keys.ed25519) throw refuse('Ed25519 keys are not allowed');
      break;
    case 'other':
      throw refuse('unsupported key type');
  }
  if (caSpkis.some((s) => s.equals(spkiDer))) throw new PkiError('badPublicKey', 'the request uses the public key of a CA');
}

/**
 * The subject as issued must use only fixed and allowed attributes and include
 * the required ones; an attribute the profile declares by OID must match its
 * pattern (Matter's VID: four upper-case hex digits).
 */
export function checkSubjectPolicy(profile: Profile, subject: NameValues): void {
  for (const [attr, v] of Object.entries(subject) as [SubjectKey, string][]) {
    const fixed = profile.subject.fixed[attr];
    if (fixed !== undefined ? v !== fixed : !profile.subject.allowed.includes(attr)) {
      throw new PkiError('badCSR', `subject attribute ${subjectKeyLabel(profile, attr)} is not allowed by profile "${profile.name}"`);
    }
    const def = profile.subject.attributes?.find((a) => a.oid === attr);
    if (def && !re(def.pattern).test(v)) {
      throw new PkiError('badCSR', `subject ${subjectKeyLabel(profile, attr)} "${v}" does not match ${def.pattern} (profile "${profile.name}")`);
    }
  }
  for (const attr of profile.subject.required) {
    if (!subject[attr]) throw new PkiError('badCSR', `profile "${profile.name}" requires subject ${subjectKeyLabel(profile, attr)}`);
  }
}

const label = '(?!-)[a-z0-9-]{1,63}(?<!-)';
const hostName = new RegExp(`^${label}(\\.${label})*$`);
const compiled = new Map<string, RegExp>();
const re = (p: string) => {
  let r = compiled.get(p);
  if (!r) compiled.set(p, (r = new RegExp(p)));
  return r;
};
const lists = new WeakMap<object, BlockList>();
function cidrList(ip: { cidrs: string[] }): BlockList {
  let list = lists.get(ip);
  if (!list) {
    list = new BlockList();
    for (const c of ip.cidrs) {
      const [a, bits] = c.split('/');
      list.addSubnet(a!, Number(bits), isIP(a!) === 6 ? 'ipv6' : 'ipv4');
    }
    lists.set(ip, list);
  }
  return list;
}

/**
 * SANs must be of types the profile lists, match its patterns, and number at
 * most `maxNames`; DNS names are lower-case LDH (RFC 1034 §3.5), a wildcard
 * only as the whole leftmost label (CA/B BR §7.1.2.7.12) and only when allowed.
 */
export function checkSanPolicy(profile: Profile, sans: readonly GeneralName[]): void {
  const rule = profile.san;
  const reject = (why: string) => new PkiError('rejectedIdentifier', `${why} (profile "${profile.name}")`);
  if (rule.required && sans.length === 0) throw reject('at least one subject alternative name is required');
  if (sans.length > rule.maxNames) throw reject(`${sans.length} subject alternative names exceed the limit of ${rule.maxNames}`);
  for (const san of sans) {
    switch (san.type) {
      case 'dns': {
        if (!rule.dns) throw reject(`DNS names are not allowed: "${san.value}"`);
        const wildcard = san.value.startsWith('*.');
        const base = wildcard ? san.value.slice(2) : san.value;
        if (san.value.length > 253 || !hostName.test(base)) throw reject(`"${san.value}" is not a valid lower-case DNS name`);
        if (wildcard && !rule.dns.allowWildcard) throw reject(`wildcard names are not allowed: "${san.value}"`);
        if (!rule.dns.patterns.some((p) => re(p).test(san.value))) throw reject(`DNS name "${san.value}" does not match the profile's patterns`);
        break;
      }
      case 'ip': {
        if (!rule.ip) throw reject(`IP addresses are not allowed: "${san.value}"`);
        const family = isIP(san.value) === 6 ? 'ipv6' : 'ipv4';
        if (!cidrList(rule.ip).check(san.value, family)) throw reject(`IP address ${san.value} is outside the profile's ranges`);
        break;
      }
      case 'uri': {
        if (!rule.uri) throw reject(`URIs are not allowed: "${san.value}"`);
        if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(san.value)) throw reject(`"${san.value}" is not an absolute URI`);
        if (!rule.uri.patterns.some((p) => re(p).test(san.value))) throw reject(`URI "${san.value}" does not match the profile's patterns`);
        break;
      }
      case 'email': {
        if (!rule.email) throw reject(`email addresses are not allowed: "${san.value}"`);
        if (!/^[^\s@]+@[^\s@]+$/.test(san.value)) throw reject(`"${san.value}" is not an email address`);
        if (!rule.email.patterns.some((p) => re(p).test(san.value))) throw reject(`email "${san.value}" does not match the profile's patterns`);
        break;
      }
      case 'other':
        throw reject(`SAN type ${san.value} is not allowed`);
    }
  }
}

/**
 * RFC 5280 §4.2.1.10: the subject and SANs of what a CA signs must satisfy
 * the name constraints of that CA's certificate and of every CA above it
 * (`chain`: issuing CA first, root included; only those that carry the
 * extension), or every relying party rejects the certificate. Names outside
 * are `rejectedIdentifier` (RFC 8555 §6.7: "the server will not issue
 * certificates for the identifier"), like a name outside the profile's
 * patterns; a subject DN outside a directoryName constraint is `badCSR`, as
 * the profile's subject checks are. Both answer 400 with the name and the
 * constraint.
 */
export function checkNameConstraints(chain: readonly ConstrainingCa[], req: { profile: Profile; subject: NameValues; sans: readonly GeneralName[] }): void {
  if (chain.length === 0) return;
  const names = constrainedNames(encodeName(req.subject), sanNames(req.sans), !req.profile.basicConstraints.ca);
  const v = findNameConstraintViolation(names, chain);
  if (v) throw new PkiError(v.name.type === 'dirName' ? 'badCSR' : 'rejectedIdentifier', v.detail);
}
