/**
 * ACME identifiers (RFC 8555 §7.1.4, §9.7.7): `dns` names and, per RFC 8738,
 * `ip` addresses. Which of them a directory accepts, and which names or
 * ranges, comes from the profile's SAN rules through the same policy check
 * the CA runs on every certificate.
 */
import { checkSanPolicy } from '../../ca/policy.js';
import { PkiError } from '../../errors/pki-error.js';
import { addressLikeName, type GeneralName } from '../../pki/general-name.js';
import { bytesToIp, ipToBytes } from '../../pki/ip.js';
import type { Profile } from '../../profiles/types.js';
import type { Identifier } from './ports.js';

/**
 * RFC 8555 §7.1.3: the identifier types a profile can be ordered with. A
 * profile that carries a device id is ordered by `permanent-identifier`
 * alone (draft-ietf-acme-device-attest), the device id.
 */
export function identifierTypesOf(profile: Profile): Identifier['type'][] {
  if (profile.deviceId) return ['permanent-identifier'];
  return [...(profile.san.dns ? (['dns'] as const) : []), ...(profile.san.ip ? (['ip'] as const) : [])];
}

/** The longest device id accepted as a permanent-identifier. */
const maxDeviceIdLength = 128;

const key = (i: Identifier) => `${i.type}:${i.value}`;

/**
 * Canonical form: DNS lower case without a trailing dot; IPs in RFC 5952 text.
 * Refused in every directory (rejectedIdentifier): DNS names that URL parsers
 * read as IPv4 addresses (`127.1`, `0x7f.1`) and the unspecified address.
 */
export function normaliseIdentifier(raw: unknown): Identifier {
  const r = raw as { type?: unknown; value?: unknown } | null;
  if (!r || typeof r !== 'object' || typeof r.type !== 'string' || typeof r.value !== 'string') throw new PkiError('malformed', 'an identifier is an object {type, value} of strings');
  const extra = Object.keys(r).filter((k) => k !== 'type' && k !== 'value');
  if (extra.length) throw new PkiError('malformed', `unknown identifier member "${extra[0]}"`);
  if (r.type === 'dns') {
    const value = r.value.toLowerCase().replace(/\.$/, '');
    // RFC 8738 §3: addresses are ordered as "ip", never as DNS names.
    if (ipToBytes(value)) throw new PkiError('rejectedIdentifier', `"${r.value}" is an IP address: order it as type "ip"`);
    const why = addressLikeName({ type: 'dns', value });
    if (why) throw new PkiError('rejectedIdentifier', why);
    return { type: 'dns', value };
  }
  if (r.type === 'ip') {
    const bytes = ipToBytes(r.value);
    if (!bytes) throw new PkiError('malformed', `"${r.value}" is not an IP address`);
    const value = bytesToIp(bytes)!;
    const why = addressLikeName({ type: 'ip', value });
    if (why) throw new PkiError('rejectedIdentifier', why);
    return { type: 'ip', value };
  }
  if (r.type === 'permanent-identifier') {
    if (r.value.length === 0 || r.value.length > maxDeviceIdLength) throw new PkiError('malformed', `a permanent-identifier is 1 to ${maxDeviceIdLength} characters`);
    return { type: 'permanent-identifier', value: r.value };
  }
  throw new PkiError('unsupportedIdentifier', `identifier type "${r.type}" is not supported (dns, ip, permanent-identifier)`);
}

/**
 * Parses and checks the identifiers of a new order: at least one, no
 * duplicates, every type accepted by the profile, every name and address
 * allowed by its SAN rules. Returns them sorted (type, then value).
 */
export function orderIdentifiers(raw: unknown, profile: Profile): Identifier[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new PkiError('malformed', '"identifiers" must be a non-empty array');
  if (raw.length > profile.san.maxNames) throw new PkiError('rejectedIdentifier', `${raw.length} identifiers exceed the limit of ${profile.san.maxNames} (profile "${profile.name}")`);
  const types = identifierTypesOf(profile);
  const seen = new Map<string, Identifier>();
  const subproblems: NonNullable<ConstructorParameters<typeof PkiError>[2]>['subproblems'] = [];
  for (const item of raw) {
    let id: Identifier;
    try {
      id = normaliseIdentifier(item);
    } catch (err) {
      // Structure errors fail the request; policy refusals are reported per identifier.
      if (!(err instanceof PkiError) || err.type === 'malformed') throw err;
      const r = item as { type?: unknown; value?: unknown };
      subproblems.push({ type: err.type, detail: err.message, identifier: { type: String(r.type), value: String(r.value) } });
      continue;
    }
    if (!types.includes(id.type)) {
      subproblems.push({ type: 'unsupportedIdentifier', detail: `profile "${profile.name}" does not accept ${id.type} identifiers`, identifier: id });
      continue;
    }
    if (id.type === 'dns' && id.value.startsWith('*.')) {
      // RFC 8555 §8.3 and RFC 8737 §3: neither http-01 nor tls-alpn-01 may prove control of a wildcard; only dns-01 could.
      subproblems.push({ type: 'rejectedIdentifier', detail: `wildcard "${id.value}" needs a dns-01 challenge, which this server does not offer`, identifier: id });
      continue;
    }
    if (id.type === 'permanent-identifier') {
      // The device profile's pattern; whether the device is registered is the orders' check (it needs the registry).
      if (raw.length > 1) {
        subproblems.push({ type: 'rejectedIdentifier', detail: 'an order names one device', identifier: id });
      } else if (!new RegExp(`^(?:${profile.deviceId!.pattern})$`).test(id.value)) {
        subproblems.push({ type: 'rejectedIdentifier', detail: `"${id.value.slice(0, 64)}" does not match the device id pattern of profile "${profile.name}"`, identifier: id });
      } else {
        seen.set(key(id), id);
      }
      continue;
    }
    try {
      checkSanPolicy(profile, [id as GeneralName]);
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      subproblems.push({ type: err.type, detail: err.message, identifier: id });
      continue;
    }
    seen.set(key(id), id);
  }
  if (subproblems.length === 1 && raw.length === 1) throw new PkiError(subproblems[0]!.type, subproblems[0]!.detail, { subproblems });
  if (subproblems.length) {
    const allUnsupported = subproblems.every((s) => s.type === 'unsupportedIdentifier');
    throw new PkiError(allUnsupported ? 'unsupportedIdentifier' : 'rejectedIdentifier', `${subproblems.length} of ${raw.length} identifiers refused`, { subproblems });
  }
  return [...seen.values()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The identifiers a certificate request names: its DNS and IP SANs (after the CN was folded in). */
export function identifiersOfSans(sans: readonly GeneralName[]): { identifiers: Identifier[]; other: GeneralName[] } {
  const identifiers: Identifier[] = [];
  const other: GeneralName[] = [];
  for (const s of sans) {
    if (s.type === 'dns' || s.type === 'ip') identifiers.push({ type: s.type, value: s.type === 'ip' ? bytesToIp(ipToBytes(s.value)!)! : s.value });
    else other.push(s);
  }
  return { identifiers, other };
}

/** True when both lists hold the same identifiers (order and duplicates ignored). */
export function sameIdentifiers(a: readonly Identifier[], b: readonly Identifier[]): boolean {
  const sa = new Set(a.map(key));
  const sb = new Set(b.map(key));
  return sa.size === sb.size && [...sa].every((k) => sb.has(k));
}
